"""A failing run is reported — in its progress line, its log, the table's notes, the
JSON and the exit status — while the other runs finish; rerun with other settings is
refused for a finished run."""

from __future__ import annotations

import json

import pytest

import uprm
from uprm.testing import ColourExpert, isolated_plugins

from .conftest import grid, invoke, toy_host


class _ColourOnly:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [ColourExpert]


def test_a_run_whose_expert_is_missing_fails_and_the_others_finish(files, tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "grid.json"  # the grid names the pose expert, which is not installed here
    path.write_text(json.dumps(grid(files, out, experts=["coarse", "colour", "pose"], stage1=None,
                                    variants=["full", "wo_pose", "wo_ptr"])))
    with isolated_plugins(plugins={"colour": _ColourOnly}, load_entry_points=False):
        dry = invoke("ablate", "--config", path, "--dry-run")
        assert "warning: pose not installed (see `uprm experts`): runs with them will fail" in dry.output
        result = invoke("ablate", "--config", path, ok=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("[1/3] full/seed0 ... FAILED at train after") and "experts ['pose'] are not installed"
               in line for line in lines), result.output
    assert any(line.startswith("[2/3] wo_pose/seed0 ... done in") for line in lines)
    assert any(line.startswith("[3/3] wo_ptr/seed0 ... FAILED at train") for line in lines)
    assert "2 run(s) failed:" in result.output and f"(log: {out / 'full' / 'seed0' / 'log.txt'})" in result.output
    assert "Traceback" in (out / "full" / "seed0" / "log.txt").read_text()
    saved = json.loads((out / "ablation.json").read_text())
    assert [r["variant"] for r in saved["rows"]] == ["wo_pose"]
    assert [(f["variant"], f["stage"]) for f in saved["failures"]] == [("full", "train"), ("wo_ptr", "train")]
    table = (out / "ablation.md").read_text()
    assert "| w/o HPE (pose) | 0 |" in table and "- full/seed0 failed at train: ConfigError: experts ['pose']" in table
    assert (out / "wo_pose" / "seed0" / "eval" / "report.json").is_file()

    # the plugin installed, the same command again: only the failed runs run
    with toy_host():
        result = invoke("ablate", "--config", path)
    assert "[1/3] full/seed0 ... done in" in result.output
    assert "[2/3] wo_pose/seed0 ... finished before" in result.output
    assert "[3/3] wo_ptr/seed0 ... done in" in result.output


def test_a_failed_stage1_run_fails_its_run_and_the_rest_go_on(files, tmp_path):
    broken = tmp_path / "stage1.json"
    broken.write_text(json.dumps([{"id": "x", "video": "missing.mp4", "task": "pose",
                                   "conversations": [{"from": "human", "value": "<video>\nq"},
                                                     {"from": "gpt", "value": "a"}]}]))
    config = grid({**files, "stage1": broken}, tmp_path / "out", variants=["full", "wo_pretune"])
    with toy_host():
        result = uprm.ablation.ablate(config, quiet=True)
    assert [(r["variant"], r["status"], r["stage"]) for r in result["runs"]] == [
        ("full", "failed", "pretune"), ("wo_pretune", "ran", None)]
    assert "missing.mp4" in result["failures"][0]["error"]


def test_a_finished_run_is_not_mixed_with_other_training_settings(files, tmp_path):
    config = grid(files, tmp_path / "out", variants=["full"], stage1=None)
    with toy_host():
        assert [r["status"] for r in uprm.ablation.ablate(config, quiet=True)["runs"]] == ["ran"]
        config["training"] = {**config["training"], "max_steps": 4}
        result = uprm.ablation.ablate(config, quiet=True)
        assert result["failures"][0]["stage"] == "settings"
        assert "was made with other settings (train differ)" in result["failures"][0]["error"]
        config["training"]["max_steps"] = 3  # back: the evaluation settings alone redo the evaluation only
        config["evaluation"] = {**config["evaluation"], "thresholds": [0.5]}
        result = uprm.ablation.ablate(config, quiet=True)
    assert result["runs"][0]["status"] == "ran" and result["failures"] == []
    assert [c["key"] for c in result["columns"]][:4] == ["fnr", "f2", "map_0.5", "map_average"]


@pytest.mark.parametrize("name", ["ablate"])
def test_the_command_is_listed(name):
    assert name in invoke("--help").output
    assert "w/o PTR (basic router)" in invoke(name, "--help").output
