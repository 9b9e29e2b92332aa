"""A real tiny ablation: three variants (full, w/o pose, the residual form) x two seeds,
each through stage 1, training and evaluation of a few steps; then reruns — nothing is
redone, a deleted report is redone alone, a training run cut short resumes."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from uprm.ablation import ablate

from .conftest import grid, toy_host

VARIANTS = ["full", "wo_pose", "residual"]
SEEDS = [0, 1]
METRICS = ["fnr", "f2", "map_0.1", "map_0.2", "map_0.3", "map_average", "sbert", "rouge_l", "bleu4"]


@pytest.fixture(scope="module")
def ablation(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation-run") / "out"
    config = grid(files, out, variants=VARIANTS, seeds=SEEDS)
    with toy_host():
        result = ablate(config, quiet=True)
    return config, out, result


def _rerun(config):
    with toy_host():
        return ablate(config, quiet=True)


def _report_value(report: dict, key: str):
    if key.startswith("map_"):
        return (report["map"] or {}).get(key[4:])
    return report[key]


def _mtimes(folder: Path) -> dict[str, int]:
    """Every file's modification time, but the run logs' (a rerun appends a line)."""
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != "log.txt"}


def test_every_run_leaves_its_folders_and_the_table_its_files(ablation):
    _, out, result = ablation
    assert [(r["variant"], r["seed"], r["status"]) for r in result["runs"]] == [
        (v, s, "ran") for v in VARIANTS for s in SEEDS]
    assert result["failures"] == [] and {s["variant"] for s in result["skipped"]} == set()
    for variant in VARIANTS:
        for seed in SEEDS:
            run = out / variant / f"seed{seed}"
            for name in ("run.json", "log.txt", "pretune/model.safetensors", "pretune/summary.json",
                         "train/model.safetensors", "train/log.jsonl", "eval/report.json", "eval/predictions.json"):
                assert (run / name).is_file(), run / name
            assert (run / "start").is_dir() == (variant == "residual")
            assert len((run / "train" / "log.jsonl").read_text().splitlines()) == 3
    for name in ("ablation.md", "ablation.csv", "ablation.json", "convergence.png"):
        assert (out / name).is_file()
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["files"]["figure"] == str(out / "convergence.png")
    assert (out / "caches" / "residual").is_dir()  # residual's features differ in their key only


def test_the_table_is_the_mean_and_std_of_the_runs_reports(ablation):
    _, out, result = ablation
    saved = json.loads((out / "ablation.json").read_text())
    table = (out / "ablation.md").read_text()
    rows_csv = {r["variant"]: r for r in csv.DictReader((out / "ablation.csv").open())}
    assert [c["key"] for c in saved["columns"]] == [*METRICS, "final_loss"]
    assert "| Variant | Seeds | FNRs↓ | F2 | mAP@0.1 | mAP@0.2 | mAP@0.3 | Average | SB | Rouge | BLEU |" in table
    for row in saved["rows"]:
        variant = row["variant"]
        assert row["seeds"] == SEEDS
        reports = [json.loads((out / variant / f"seed{s}" / "eval" / "report.json").read_text()) for s in SEEDS]
        losses = [json.loads((out / variant / f"seed{s}" / "train" / "summary.json").read_text())["final_loss"]
                  for s in SEEDS]
        cells = []
        for key in [*METRICS, "final_loss"]:
            values = losses if key == "final_loss" else [_report_value(r, key) for r in reports]
            stats = row["metrics"][key]
            assert stats["values"] == values
            defined = [v for v in values if v is not None]
            if not defined:  # e.g. SB with sbert off
                assert stats["mean"] is None and stats["std"] is None and rows_csv[variant][f"{key}_mean"] == ""
                cells.append("–")
                continue
            mean, std = statistics.fmean(defined), statistics.stdev(defined) if len(defined) > 1 else None
            assert stats["mean"] == pytest.approx(mean) and stats["n"] == len(defined)
            assert (stats["std"] is None) if std is None else stats["std"] == pytest.approx(std)
            assert float(rows_csv[variant][f"{key}_mean"]) == pytest.approx(mean)
            digits = 3 if key == "final_loss" else 2
            cells.append(f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}"))
        label = {"full": "UPRM (full)", "wo_pose": "w/o HPE (pose)", "residual": "residual fine experts"}[variant]
        assert f"| {label} | 0,1 | " + " | ".join(cells) + " |" in table
    assert result["table"] in table


def test_the_variants_train_the_models_they_name(ablation):
    _, out, _ = ablation
    for variant, experts in (("full", ["coarse", "colour", "pose"]), ("wo_pose", ["coarse", "colour"]),
                             ("residual", ["coarse", "colour", "pose"])):
        run = out / variant / "seed1"
        model = json.loads((run / "train" / "config.json").read_text())
        assert model["experts"] == experts and model["router"] == "tradeoff"
        assert model["expert_options"] == ({"pose": {"residual": True}} if variant == "residual" else {})
        trained = json.loads((run / "train" / "train_config.json").read_text())["config"]
        assert trained["init"] == str(run / "pretune") and trained["seed"] == 1 and trained["stage"] == "deepsvu"
        pretuned = json.loads((run / "pretune" / "train_config.json").read_text())["config"]
        assert pretuned["stage"] == "pretune" and pretuned["max_steps"] == 2
        assert pretuned["init"] == (str(run / "start") if variant == "residual" else None)


def test_a_second_run_does_nothing_new(ablation):
    config, out, first = ablation
    before = _mtimes(out / "full") | _mtimes(out / "residual")
    again = _rerun(config)
    assert {r["status"] for r in again["runs"]} == {"done"}
    assert _mtimes(out / "full") | _mtimes(out / "residual") == before
    assert again["rows"] == first["rows"]


def test_a_deleted_report_is_redone_alone(ablation):
    config, out, first = ablation
    report = out / "wo_pose" / "seed1" / "eval" / "report.json"
    old = json.loads(report.read_text())
    train_log = out / "wo_pose" / "seed1" / "train" / "log.jsonl"
    stamp = train_log.stat().st_mtime_ns
    report.unlink()
    again = _rerun(config)
    status = {(r["variant"], r["seed"]): r["status"] for r in again["runs"]}
    assert status.pop(("wo_pose", 1)) == "ran" and set(status.values()) == {"done"}
    new = json.loads(report.read_text())
    assert {k: new[k] for k in METRICS if k in new} == {k: old[k] for k in METRICS if k in old}
    assert train_log.stat().st_mtime_ns == stamp  # the training was not redone
    assert again["rows"] == first["rows"]


def test_a_training_run_cut_short_resumes_from_its_checkpoint(ablation):
    import shutil

    config, out, first = ablation
    run = out / "full" / "seed0"
    for name in ("model.safetensors", "config.json", "summary.json"):  # killed after step 2's checkpoint
        (run / "train" / name).unlink()
    shutil.rmtree(run / "train" / "checkpoints" / "step-00000003")
    shutil.rmtree(run / "eval")
    again = _rerun(config)
    status = {(r["variant"], r["seed"]): r["status"] for r in again["runs"]}
    assert status.pop(("full", 0)) == "ran" and set(status.values()) == {"done"}
    steps = [json.loads(line)["step"] for line in (run / "train" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert "resuming at step 2" in (run / "log.txt").read_text()
    assert again["rows"] == first["rows"]  # the same numbers as the uninterrupted run
