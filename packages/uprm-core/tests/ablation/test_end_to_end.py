"""A real tiny ablation: three variants (full, w/o pose, the residual form) x two seeds,
each through stage 1, training and evaluation of a few steps; then reruns — nothing is
redone, a deleted report is redone alone, a training run cut short resumes, an
evaluation without its per-video units is scored again from its answers, and
`uprm ablate --bootstrap` re-summarises the finished folder without training."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from uprm.ablation import ablate

from .conftest import grid, invoke, toy_host

VARIANTS = ["full", "wo_pose", "residual"]
SEEDS = [0, 1]
METRICS = ["fnr", "f2", "map_0.1", "map_0.2", "map_0.3", "map_average", "sbert", "rouge_l", "bleu4"]
SAMPLES = 200  # resamples of the intervals (the default is 1000)


@pytest.fixture(scope="module")
def ablation(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation-run") / "out"
    config = grid(files, out, variants=VARIANTS, seeds=SEEDS, bootstrap=SAMPLES)
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
    for name in ("ablation.md", "ablation.csv", "ablation.json", "convergence.png", "ablation_effects.png"):
        assert (out / name).is_file()
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "ablation_effects.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["files"]["figure"] == str(out / "convergence.png")
    assert result["files"]["effects"] == str(out / "ablation_effects.png")
    for variant in VARIANTS:
        for seed in SEEDS:
            assert (out / variant / f"seed{seed}" / "eval" / "videos.json").is_file()
    assert (out / "caches" / "residual").is_dir()  # residual's features differ in their key only


def _expected_cell(row: dict, key: str, mean: float, std: float | None) -> str:
    """``mean [low, high]`` (``†`` when the difference from full excludes zero), else ``mean ± std``."""
    ci = row["metrics"][key].get("ci")
    if key == "final_loss" or ci is None:
        digits = 3 if key == "final_loss" else 2
        return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")
    delta = (row.get("vs_full") or {}).get(key) or {}
    marked = delta.get("ci") is not None and (delta["ci"][0] > 0 or delta["ci"][1] < 0)
    return f"{mean:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" + (" †" if marked else "")


def test_the_table_is_the_mean_of_the_runs_reports_with_intervals(ablation):
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
            cells.append(_expected_cell(row, key, mean, std))
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


def test_the_json_has_each_variants_intervals_and_differences_from_full(ablation):
    _, out, result = ablation
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["bootstrap"]["samples"] == SAMPLES and saved["bootstrap"]["unit"] == "video and seed"
    assert saved["bootstrap"]["videos"] == 3 and saved["bootstrap"]["delta"] == "variant − full"
    rows = {r["variant"]: r for r in saved["rows"]}
    assert "vs_full" not in rows["full"]
    for variant in ("wo_pose", "residual"):
        fnr = rows[variant]["vs_full"]["fnr"]
        assert set(fnr) == {"delta", "ci", "p", "p_holm", "variant", "full"}
        assert fnr["delta"] == pytest.approx(rows[variant]["metrics"]["fnr"]["mean"] - rows["full"]["metrics"]["fnr"]["mean"])
        assert 0.0 <= rows[variant]["p_improvement"] <= 1.0
    assert result["rows"] == saved["rows"]


def _units_file(out: Path, variant: str, seed: int) -> Path:
    return out / variant / f"seed{seed}" / "eval" / "videos.json"


def test_an_evaluation_without_its_units_is_scored_again_not_retrained(ablation):
    config, out, first = ablation
    run = out / "wo_pose" / "seed0"
    units = _units_file(out, "wo_pose", 0)
    kept, answers = units.read_text(), (run / "eval" / "clips.jsonl").read_text()
    units.unlink()  # as an evaluation made before evaluations wrote their units
    trained = _mtimes(run / "train") | _mtimes(run / "pretune")
    again = _rerun(config)
    status = {(r["variant"], r["seed"]): r["status"] for r in again["runs"]}
    assert status.pop(("wo_pose", 0)) == "ran" and set(status.values()) == {"done"}
    assert units.read_text() == kept and (run / "eval" / "clips.jsonl").read_text() == answers
    assert _mtimes(run / "train") | _mtimes(run / "pretune") == trained  # nothing trained again
    assert again["rows"] == first["rows"]


def test_the_command_resummarises_a_finished_folder_with_other_resamples(ablation, tmp_path):
    config, out, _ = ablation
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(config))
    runs = _mtimes(out / "full") | _mtimes(out / "wo_pose") | _mtimes(out / "residual")
    with toy_host():
        result = invoke("ablate", "--config", path, "--bootstrap", 50, "--bootstrap-seed", 3, "--permutations", 20)
    assert "finished before" in result.output and "done in" not in result.output
    assert "intervals: 50 resamples of 3 videos and the seeds, 20 permutations per difference from full" in result.output
    assert _mtimes(out / "full") | _mtimes(out / "wo_pose") | _mtimes(out / "residual") == runs
    saved = json.loads((out / "ablation.json").read_text())
    assert (saved["bootstrap"]["samples"], saved["bootstrap"]["seed"], saved["bootstrap"]["permutations"]) == (50, 3, 20)
    fnr = next(r["vs_full"]["fnr"] for r in saved["rows"] if r["variant"] == "wo_pose")
    assert fnr["p"] >= 1 / 21  # (1 + k) / (1 + 20)
    with toy_host():
        invoke("ablate", "--config", path, "--bootstrap", 0, "--quiet")
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["bootstrap"]["samples"] == 0 and saved["rows"][0]["metrics"]["fnr"]["ci"] is None
    assert not (out / "ablation_effects.png").exists()  # no intervals to draw: an old figure is not left behind
    assert " ± " in (out / "ablation.md").read_text()
    _rerun(config)  # back to the module's own summary
