"""Training settings: YAML files, flags over the file, clear errors, --help, schedule."""

from __future__ import annotations

import itertools
from dataclasses import fields

import pytest

from uprm.training import PAPER_LR, TINY_LR, ConfigError, TrainConfig, make_config
from uprm.training.config import expert_options
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
        ("max-steps: ten\n", r"run.yaml: field 'max_steps' must be an integer or null, got 'ten'"),
        ("lr: [1]\n", r"run.yaml: field 'lr' must be a number or null"),
        ("tiny: 'yes'\n", r"run.yaml: field 'tiny' must be true or false"),
        ("data: 3\n", r"run.yaml: field 'data' must be a list of strings"),
        ("learning_rate: 1e-4\n", r"run.yaml: unknown setting\(s\) \['learning_rate'\]"),
        ("- data\n", r"run.yaml: a training config is a mapping of settings, got list"),
        ("lr: [1\n", r"run.yaml: not valid YAML"),
    ],
)
def test_bad_config_files_name_the_file_and_field(tmp_path, text, message):
    run = tmp_path / "run.yaml"
    run.write_text(text)
    with pytest.raises(ConfigError, match=message):
        make_config(run)


def test_validation_names_the_problem(tmp_path):
    data = tmp_path / "train.json"
    data.write_text("[]")
    base = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), tiny=True)
    base.validate()
    for change, message in [
        ({"data": [str(tmp_path / "missing.json")]}, r"missing.json: no such instruction file"),
        ({"tiny": False}, r"no model: give --backbone"),
        ({"backbone": "/models/llava"}, r"either --tiny or --backbone"),
        ({"warmup_ratio": 1.5}, r"warmup_ratio must be in \[0, 1\)"),
        ({"router": "moe"}, r"router must be one of tradeoff, basic"),
        ({"out": None}, r"no run directory"),
        ({"batch_size": 0}, r"batch_size must be at least 1; got 0"),
        ({"eval_every": 10}, r"--eval-every needs validation data: give --val FILE"),
        ({"weight_decay": -0.1}, r"weight_decay must not be negative"),
    ]:
        with pytest.raises(ConfigError, match=message):
            base.updated(change).validate()
    assert base.resolved().lr == TINY_LR
    assert TrainConfig(data=["x"], out="o", backbone="b").resolved().lr == PAPER_LR


def test_the_cli_reports_bad_input_without_a_traceback(tmp_path):
    result = invoke("train", "--tiny", "--data", tmp_path / "nope.json", "--out", tmp_path / "run", ok=False)
    assert result.exit_code != 0 and "nope.json: no such instruction file" in result.output
    bad = tmp_path / "run.yaml"
    bad.write_text("batch-size: eight\n")
    result = invoke("train", "--config", bad, ok=False)
    assert result.exit_code != 0 and "field 'batch_size' must be an integer" in result.output


def test_help_explains_every_setting_with_its_default():
    text = " ".join(invoke("train", "--help").output.split())
    for f in fields(TrainConfig):
        if f.name == "progress":
            assert "--quiet" in text
            continue
        assert "--" + f.name.replace("_", "-") in text, f.name
    for snippet in ("[default: 2e-05; 0.001 with --tiny]", "[default: 0.03]", "[default: 16]", "[default: 32]",
                    "[default: 0.05]", "[default: 8]", "[default: 1.0]", "--config"):
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
    with pytest.raises(ConfigError, match=r"'pose-max=4' is not NAME.KEY=VALUE"):
        TrainConfig(data=["x"], out="o", tiny=True, expert_option=["pose-max=4"])._check_combinations()
    assert make_config(None, expert_option="pose.classes=[1,2]").expert_option == ["pose.classes=[1,2]"]
