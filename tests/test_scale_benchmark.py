"""The scale benchmark (benchmarks/scale.py): its ``--quick`` run goes the whole real path —
``uprm data synthetic``, ``uprm detect`` local (one process and torchrun's two) and on a
local Ray (1 and 2 replicas), ``uprm serve`` with 1 and 2 workers on SQLite and on a real
PostgreSQL, a serve worker and a Ray replica SIGKILLed — and its report has every row, each
with numbers measured in the run; and the paper-dims arithmetic of docs/deployment.md.

A run starts ~15 processes that each import torch and load a model (even ``--quick`` takes
4-7 minutes of both cores), too long for the suite; the engines it drives are tested in
their own modules (tests/detection/test_ray.py, tests/serve/test_workers.py). Here the
committed run's figures (benchmarks/scale.json) are checked row by row, and the committed
benchmarks/scale.md must be what the report writer makes of them."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"
DETECT_ROWS = ("local x1", "local x2", "ray x1", "ray x2")
SERVE_ROWS = ("sqlite x1", "sqlite x2", "postgresql x1", "postgresql x2")


@pytest.fixture(scope="module")
def bench(load_benchmark):
    with load_benchmark("scale") as module:
        yield module


@pytest.fixture(scope="module")
def measured():
    """The committed run: its JSON and its report."""
    report = BENCH.with_name("scale.md")
    return json.loads(report.with_suffix(".json").read_text()), report


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_the_measured_run_has_every_row(measured):
    saved, _ = measured
    videos = saved["sizing"]["videos"]
    for name in DETECT_ROWS:
        row = saved["detect"][name]
        assert row["videos"] == videos and row["windows"] >= videos, name  # every video of the world written
        for field in ("seconds", "videos_per_s", "windows_per_s", "model_seconds", "working_windows_per_s"):
            assert positive(row[field]), (name, field, row)
        assert row["videos_per_s"] == pytest.approx(row["videos"] / row["seconds"])
        assert row["models"] == (2 if name.endswith("x2") else 1)
    # the same files, so the same windows, whichever way they were run
    assert len({saved["detect"][name]["windows"] for name in DETECT_ROWS}) == 1
    for name in SERVE_ROWS:
        row = saved["serve"][name]
        assert row["jobs"] == videos and positive(row["jobs_per_min"]), (name, row)
    for store in ("sqlite", "postgresql"):
        death = saved["serve_worker_death"][store]
        assert death["attempts"] == 2  # the killed job ran again, once
        assert positive(death["rerun_after_s"]) and positive(death["killed_s"]) and positive(death["unharmed_s"])
    ray = saved["ray_replica_death"]
    assert ray["deaths"] >= 1 and positive(ray["unharmed_s"]) and positive(ray["killed_s"])


def test_the_report_has_every_row_with_its_numbers(bench, measured):
    result, report = measured
    text = bench.markdown(result)
    assert report.read_text() == text  # the committed report is the committed figures

    number = r"[0-9]+\.[0-9]+"
    for name in DETECT_ROWS:
        row = result["detect"][name]
        assert re.search(rf"^\| {name} \| .* \| {row['seconds']:.1f} \| {row['videos_per_s']:.3f} \| "
                         rf"{row['windows_per_s']:.2f} \| {number} s \| {number} \|$", text, re.M), name
    for kind in ("local", "ray"):
        assert re.search(rf"^\| {kind} \| {number}× \| {number}× \| {number}× \|$", text, re.M), kind
    for store in ("sqlite", "postgresql"):
        x1, x2 = result["serve"][f"{store} x1"], result["serve"][f"{store} x2"]
        assert f"| {store} | {x1['jobs_per_min']:.1f} | {x2['jobs_per_min']:.1f} | " in text
        assert re.search(rf"^\| `uprm serve --workers 2` \({store}\).* \| {number} s \| {number} s \(attempts 2\) "
                         rf"\| {number} s \| -?{number} s \|$", text, re.M), store
    assert re.search(rf"^\| `detect_files\(ray=True, replicas=2\)`.* \| -?{number} s \|$", text, re.M)
    assert "2 replicas cannot be 2× faster" in text


def test_the_arithmetic_of_a_camera(bench):
    window = 30.4 + 1.30 + 0.18
    assert bench.camera_tflops(4.0, "ViT-H 1024 px") == pytest.approx(window / 4 + 5.96)
    # the stride divides the windows' share only: SAM runs once per sampled frame
    assert bench.camera_tflops(8.0, "ViT-H 1024 px") - 5.96 == pytest.approx((bench.camera_tflops(2.0, "ViT-H 1024 px")
                                                                              - 5.96) / 4)
    # an A100 at 40 % of 312 TFLOP/s = 124.8: 8 cameras of 13.93 TFLOP/s, not 9
    assert bench.cameras_per_gpu("A100", 4.0, "ViT-H 1024 px") == 8
    assert [bench.cameras_per_gpu("H100 SXM", s, "ViT-H 1024 px") for s in (2.0, 4.0, 8.0)] == [18, 28, 39]
    # an archive costs per second of video what a camera does: 10,000 h on A100s
    hours = bench.archive_gpu_hours(10_000, "A100", 4.0, "ViT-H 1024 px")
    assert hours == pytest.approx(10_000 * (window / 4 + 5.96) / 124.8)


def test_arithmetic_prints_the_tables_and_runs_nothing(bench, capsys, tmp_path):
    assert bench.main(["--arithmetic", "--report", str(tmp_path / "scale.md")]) == {}
    out = capsys.readouterr().out
    assert "one window (identify): 31.9 TFLOPs" in out
    assert "ViT-H 1024 px, stride 2 s: 21.90 TFLOP/s per camera; cameras per GPU: L4 2, A100 5, H100 SXM 18" in out
    assert not (tmp_path / "scale.md").exists()
