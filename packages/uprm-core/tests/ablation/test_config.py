"""The grid file is checked key by key: every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from uprm.ablation import VARIANTS, AblationError, load_config

from .conftest import invoke


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    for name in ("train.json", "test.json", "stage1.json"):
        (tmp_path / name).write_text("[]")
    return {"train": str(tmp_path / "train.json"), "test": str(tmp_path / "test.json"),
            "stage1": str(tmp_path / "stage1.json"), "out": str(tmp_path / "out")}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_a_grid_file_read_with_defaults_and_flags_on_top(tmp_path, data):
    path = _write(tmp_path, f"""
train: {data['train']}
test: [{data['test']}]
stage1: {{data: {data['stage1']}, max-steps: 5}}
training: {{tiny: true, max-steps: 30, lr: 1.0e-3}}
evaluation: {{dataset: cuva, sbert: false}}
seeds: 3
""")
    cfg = load_config(path, out=data["out"], variants="wo_ptr,full", seeds=None)
    assert cfg.train == [data["train"]] and cfg.test == [data["test"]] and cfg.out == data["out"]
    assert cfg.stage1 is not None and cfg.stage1.data == [data["stage1"]] and cfg.stage1.settings == {"max_steps": 5}
    assert cfg.training == {"tiny": True, "max_steps": 30, "lr": 1e-3}
    assert cfg.evaluation == {"dataset": "cuva", "sbert": False}
    assert cfg.seeds == [3]  # one integer is one seed; seeds=None leaves the file's
    assert cfg.variants == ["full", "wo_ptr"]  # the table's order, whatever the order given
    assert load_config(path, out="x", seeds="0,1").seeds == [0, 1]  # a flag's "0,1"
    assert load_config(path, out="x").variants == list(VARIANTS)  # default: all eight
    assert (cfg.bootstrap, cfg.bootstrap_seed, cfg.permutations) == (1000, 0, None)  # intervals by default
    flags = load_config(path, out="x", bootstrap=0, bootstrap_seed=7, permutations=200)
    assert (flags.bootstrap, flags.bootstrap_seed, flags.permutations) == (0, 7, 200)


@pytest.mark.parametrize(("changes", "message"), [
    ({"colour": 1}, "colour: unknown setting (known settings: bootstrap, bootstrap_seed, cache, evaluation, expert_options,"),
    ({"train": None}, "train: Field required"),
    ({"out": None}, "out: missing: give `out:` in the grid or --out DIR"),
    ({"train": "nowhere.json"}, "train: nowhere.json: no such file"),
    ({"test": 3}, "test: Input should be a valid list (got 3)"),
    ({"seeds": [0, "1"]}, "seeds[1]: Input should be a valid integer (got '1')"),
    ({"seeds": [1, 1]}, "seeds: a value is repeated ([1, 1])"),
    ({"seeds": True}, "seeds: Input should be a valid list (got True)"),
    ({"variants": ["full", "wo_hpe"]}, "variants[1]: Input should be 'full', 'wo_pose', 'wo_relation',"),
    ({"threads": 0}, "threads: Input should be greater than or equal to 1 (got 0)"),
    ({"bootstrap": -1}, "bootstrap: Input should be greater than or equal to 0 (got -1)"),
    ({"permutations": 0}, "permutations: Input should be greater than or equal to 1 (got 0)"),
    ({"expert_options": {"pose": 1}}, "expert_options.pose: Input should be a valid dictionary (got 1)"),
    ({"training": {"tiny": True, "max_steps": "many"}},
     "training: max_steps: Input should be a valid integer (got 'many')"),
    ({"training": {"tiny": True, "warp": 9}}, "training: warp: unknown setting (known settings: backbone,"),
    ({"training": {"tiny": True, "router": "basic"}}, "training: router: set by the ablation for each run, from the "
                                                      "variants (wo_ptr: basic)"),
    ({"training": {"tiny": True, "seed": 1}}, "training: seed: set by the ablation for each run, from `seeds`"),
    ({"training": {"max_steps": 3}}, "training: no model: give --backbone PATH"),
    ({"training": {"tiny": True, "lr": -1.0}}, "training: lr: Input should be greater than 0 (got -1.0)"),
    ({"training": [1]}, "training: expected a mapping of settings, got list"),
    ({"stage1": {"max_steps": 3}}, "stage1: data: missing"),
    ({"stage1": {"data": "gone.json"}}, "stage1: gone.json: no such file"),
    ({"stage1": {"data": "STAGE1", "init": "x"}}, "stage1: init: set by the ablation for each run"),
    ({"stage1": {"data": "STAGE1", "batch_size": 0}}, "stage1: batch_size: Input should be greater than or equal to 1"),
    ({"evaluation": {"dataset": "kinetics"}}, "evaluation: dataset: expected one of ['cuva', 'ucf']"),
    ({"evaluation": {"sbert": "no"}}, "evaluation: sbert: Input should be a valid boolean (got 'no')"),
    ({"evaluation": {"thresholds": [0.5, 2]}}, "evaluation: thresholds: expected distinct numbers in [0, 1]"),
    ({"evaluation": {"judge": True}}, "evaluation: judge: unknown setting (known settings: batch_size, bootstrap, bootstrap_seed, dataset,"),
    ({"evaluation": {"ground_truth": "gt.json"}}, "evaluation: ground_truth: gt.json: no such file"),
])
def test_bad_grids_name_the_file_and_the_key(tmp_path, data, changes, message):
    grid = {"train": data["train"], "test": data["test"], "out": data["out"], "training": {"tiny": True}}
    for key, value in changes.items():
        if isinstance(value, dict) and value.get("data") == "STAGE1":
            value = {**value, "data": data["stage1"]}
        if value is None:
            grid.pop(key, None)
        else:
            grid[key] = value
    path = _write(tmp_path, __import__("yaml").safe_dump(grid))
    with pytest.raises(AblationError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)), info.value
    assert message in str(info.value), info.value


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(AblationError, match=r"missing\.yaml: no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(AblationError, match=r"grid\.yaml, line 2: not valid YAML"):
        load_config(_write(tmp_path, "train: [a, b\n"))
    with pytest.raises(AblationError, match=r"grid\.yaml: expected a mapping of settings, got list"):
        load_config(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(AblationError, match=r"grid\.yaml, line 3: 'seeds' is given twice \(first on line 1\)"):
        load_config(_write(tmp_path, "seeds: 1\nthreads: 1\nseeds: 2\n"))


def test_the_command_line_reports_a_bad_grid_with_status_1(tmp_path, data):
    path = _write(tmp_path, f"train: {data['train']}\ntest: {data['test']}\ntraining: {{tiny: true}}\n")
    result = invoke("ablate", "--config", path, ok=False)
    assert result.exit_code == 1
    assert f"Error: {path}: out: missing: give `out:` in the grid or --out DIR" in result.output
    result = invoke("ablate", "--config", path, "--out", tmp_path / "o", "--seeds", "0,x", ok=False)
    assert result.exit_code == 1 and "seeds: expected an integer or a list of integers (e.g. 0,1), got '0,x'" in result.output
