"""Training settings: YAML files, flags over the file, clear errors, --help, schedule."""

from __future__ import annotations

import itertools

import pytest

from uprm.training import PAPER_LR, TINY_LR, ConfigError, TrainConfig, make_config
from uprm.training.config import expert_options, load_config_file
from uprm.training.trainer import lr_factor

from .conftest import invoke


def test_a_yaml_file_with_flags_on_top(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("stage: pretune\ndata: [a.json, b.json]\nmax-steps: 30\nlr: 1.0e-4\nbatch_size: 16\n")
    cfg = make_config(run, lr=5e-4, out="runs/x")
    assert (cfg.stage, cfg.data, cfg.max_steps, cfg.lr, cfg.batch_size, cfg.out) == (
        "pretune", ["a.json", "b.json"], 30, 5e-4, 16, "runs/x")
    assert make_config(None, experts="coarse,pose").experts == ["coarse", "pose"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-steps: ten\n", r"run.yaml, line 1: max_steps: Input should be a valid integer \(got 'ten'\)"),
        ("stage: pretune\nlr: [1]\n", r"run.yaml, line 2: lr: Input should be a valid number"),
        ("tiny: 'yes'\n", r"run.yaml, line 1: tiny: Input should be a valid boolean \(got 'yes'\)"),
        ("data: 3\n", r"run.yaml, line 1: data: Input should be a valid list \(got 3\)"),
        ("learning_rate: 1e-4\n", r"run.yaml, line 1: learning_rate: unknown setting \(known settings: .*\blr\b"),
        ("- data\n", r"run.yaml: expected a mapping of settings, got list"),
        ("lr: [1\n", r"run.yaml, line 2: not valid YAML"),
        ("lr: 0.1\nseed: 1\nlr: 0.2\n", r"run.yaml, line 3: 'lr' is given twice \(first on line 1\)"),
        ("lr: .nan\n", r"run.yaml, line 1: lr: Input should be a finite number"),
    ],
)
def test_bad_config_files_name_the_file_and_field(tmp_path, text, message):
    run = tmp_path / "run.yaml"
    run.write_text(text)
    with pytest.raises(ConfigError, match=message):
        make_config(run)


def test_a_run_file_error_names_the_file_the_line_and_the_field(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("# stage 2 on the synthetic world\nstage: deepsvu\ndata: [a.json]\nbatch-size: eight\nlr: 1.0e-4\n")
    with pytest.raises(ConfigError) as info:
        make_config(run)
    assert str(info.value) == f"{run}, line 4: batch_size: Input should be a valid integer (got 'eight')"
    run.write_text("stage: deepsvu\nmax-steps: 30\nlr: 1.0e-4\n")
    assert load_config_file(run) == {"stage": "deepsvu", "max_steps": 30, "lr": 1e-4}  # what the file gives, only
    with pytest.raises(ConfigError) as info:
        make_config(run, lr="fast")  # a bad argument is not the file's line 3
    assert str(info.value) == "lr: Input should be a valid number (got 'fast')"


def test_validation_names_the_problem(tmp_path):
    data = tmp_path / "train.json"
    data.write_text("[]")
    base = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), tiny=True)
    base.validate()
    for change, message in [
        ({"data": [str(tmp_path / "missing.json")]}, r"missing.json: no such instruction file"),
        ({"tiny": False}, r"no model: give --backbone"),
        ({"backbone": "/models/llava"}, r"either --tiny or --backbone"),
        ({"warmup_ratio": 1.5}, r"warmup_ratio: Input should be less than 1 \(got 1.5\)"),
        ({"router": "moe"}, r"router: Input should be 'tradeoff' or 'basic' \(got 'moe'\)"),
        ({"out": None}, r"no run directory"),
        ({"batch_size": 0}, r"batch_size: Input should be greater than or equal to 1 \(got 0\)"),
        ({"eval_every": 10}, r"--eval-every needs validation data: give --val FILE"),
        ({"weight_decay": -0.1}, r"weight_decay: Input should be greater than or equal to 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            base.replace(**change).validate()
    assert base.resolved().lr == TINY_LR
    assert TrainConfig(data=["x"], out="o", backbone="b").resolved().lr == PAPER_LR


def test_the_cli_reports_bad_input_without_a_traceback(tmp_path):
    result = invoke("train", "--tiny", "--data", tmp_path / "nope.json", "--out", tmp_path / "run", ok=False)
    assert result.exit_code != 0 and "nope.json: no such instruction file" in result.output
    bad = tmp_path / "run.yaml"
    bad.write_text("batch-size: eight\n")
    result = invoke("train", "--config", bad, ok=False)
    assert result.exit_code != 0 and "run.yaml, line 1: batch_size: Input should be a valid integer" in result.output


def test_help_explains_every_setting_with_its_default():
    text = " ".join(invoke("train", "--help").output.split())
    for name in TrainConfig.model_fields:
        if name == "progress":
            assert "--quiet" in text
            continue
        assert "--" + name.replace("_", "-") in text, name
    for snippet in ("[default: 2e-05; 0.001 with --tiny]", "[default: 0.03]", "[default: 16]", "[default: 32]",
                    "[default: 0.05]", "[default: 8]", "[default: 1.0]", "--config", "--freeze-projector"):
        assert snippet in text, snippet


def test_warm_up_then_cosine():
    factors = [lr_factor(s, total=100, warmup=3, kind="cosine") for s in range(100)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert factors[3] == pytest.approx(1.0) and factors[51] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in itertools.pairwise(factors[2:])) and factors[-1] < 0.01
    assert lr_factor(50, 100, 0, "linear") == pytest.approx(0.5)
    assert lr_factor(99, 100, 3, "constant") == 1.0


def test_expert_options_as_uprm_extract_takes_them():
    assert expert_options(["pose.max_people=4", "background.variant=vit_b", "pose.weights=/m/y.pt"]) == {
        "pose": {"max_people": 4, "weights": "/m/y.pt"}, "background": {"variant": "vit_b"}}
    with pytest.raises(ConfigError, match=r"expert_option: expert option 'pose-max=4' is not NAME.KEY=VALUE"):
        TrainConfig(data=["x"], out="o", tiny=True, expert_option=["pose-max=4"])
    assert make_config(None, expert_option="pose.classes=[1,2]").expert_option == ["pose.classes=[1,2]"]
