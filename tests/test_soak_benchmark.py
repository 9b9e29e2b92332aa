"""The soak benchmark (benchmarks/soak.py, issue 25): its ``--ci`` profile runs the whole
soak for 2 minutes — ``uprm watch`` on 4 cameras streamed by ffmpeg over UDP, HTTP and
RTSP, ``uprm serve --workers 2`` with a steady stream of upload and path jobs — with one
fault of each kind (a publisher cut, a stalled stream, a resolution change, the webhook
down then slow, a worker SIGKILLed mid-job, the clips folder read-only), and every check
of its report must pass; the checks themselves fail on the data they exist to catch; the
committed report is what the report writer makes of the committed run's figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
CHECKS = {"rss_flat", "fds_flat", "events_closed", "webhook_delivered", "jobs_exactly_once", "faults_shown",
          "clean_exit", "cameras_recover"}


@pytest.fixture(scope="module")
def soak(load_benchmark):
    with load_benchmark("soak") as module:
        yield module


def test_the_ci_soak_passes_every_check(tmp_path):
    for tool in ("ffmpeg", "rtsp-server-perl", "chattr"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/system-packages.sh installs ffmpeg and rtsp-server-perl)")
    report = tmp_path / "report" / "soak.md"
    committed = {p.name: p.stat().st_mtime_ns for p in BENCH.parent.glob("soak*") if p.suffix != ".py"}
    began = time.monotonic()
    proc = subprocess.run([sys.executable, str(BENCH), "--ci", "--work", str(tmp_path / "work"), "--report",
                           str(report)], capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - began
    assert report.exists(), f"no report ({proc.returncode}):\n{proc.stderr[-4000:]}"
    result = json.loads(report.with_suffix(".json").read_text())
    failed = {name: c for name, c in result["checks"].items() if not c["passed"]}
    assert not failed, json.dumps(failed, indent=1)[-6000:]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert set(result["checks"]) == CHECKS
    faults = result["checks"]["faults_shown"]["faults"]
    assert sorted(f["kind"] for f in faults) == sorted(
        ["publisher_cut", "stream_stall", "resolution_change", "webhook_down", "worker_kill", "clips_read_only"])
    checks = result["checks"]
    assert checks["events_closed"]["opened"] >= 4 and checks["webhook_delivered"]["written"] >= 8
    assert checks["jobs_exactly_once"]["accepted"] >= 8 and checks["jobs_exactly_once"]["uploads"] >= 3
    assert checks["jobs_exactly_once"]["attempts"].get("2") == 1  # the job whose worker was killed ran again, once
    # the processes were sampled all along: the watcher, the server, both workers and the one started after the
    # kill (the killed one and its successor lived too short a time in the fit to get a slope)
    rss = checks["rss_flat"]
    assert len(result["samples"]) >= 15 and {"watch", "serve"} <= set(rss["slopes_per_h"])
    assert sum(k.startswith("worker") for k in rss["slopes_per_h"]) >= 1
    assert sum(k.startswith("worker") for k in [*rss["slopes_per_h"], *rss["too_short"]]) == 3
    for name in ("soak_rss.png", "soak_fds.png", "soak_alerts.png"):
        assert (report.parent / name).stat().st_size > 1000, name
    assert "## Checks: all passed" in report.read_text()
    # the CI run never writes over the committed report
    assert {p.name: p.stat().st_mtime_ns for p in BENCH.parent.glob("soak*") if p.suffix != ".py"} == committed
    print(f"soak --ci: {wall:.0f} s")


# ---------------------------------------------------------------------------- the checks fail when they should
def test_a_growing_process_fails_the_flat_check(soak):
    flat = [{"t": t, "processes": {"watch": {"rss_mb": 300.0 + (t % 20) / 10, "fds": 40, "threads": 9}}}
            for t in range(0, 3600, 30)]
    assert soak.flat_check(flat, "rss_mb", 10.0, 3600, 0.2)["passed"]
    leaking = [{"t": s["t"], "processes": {"watch": {**s["processes"]["watch"], "rss_mb": 300.0 + s["t"] / 120}}}
               for s in flat]  # 30 MB/h
    verdict = soak.flat_check(leaking, "rss_mb", 10.0, 3600, 0.2)
    assert not verdict["passed"] and verdict["slopes_per_h"]["watch"] == pytest.approx(30.0)
    # the warm-up (first 20 %) is left out: a fast start followed by a flat line passes
    warm = [{"t": s["t"], "processes": {"watch": {**s["processes"]["watch"], "rss_mb": min(s["t"], 600) / 10}}}
            for s in flat]
    assert soak.flat_check(warm, "rss_mb", 10.0, 3600, 0.2)["passed"]
    assert not soak.flat_check(warm, "rss_mb", 10.0, 3600, 0.0)["passed"]


def test_a_camera_that_never_comes_back_fails_the_recovery_check(soak):
    def run(cam4):  # samples every 30 s; cam1 gives 15 windows a sample throughout
        return [{"t": float(t), "cameras": {"cam1": {"windows": 15 * i}, "cam4": {"windows": cam4(t, i)}}}
                for i, t in enumerate(range(0, 3600, 30))]

    healthy = soak.cameras_check(run(lambda t, i: 15 * i), 120.0)
    assert healthy["passed"] and healthy["longest_gap_s"] == {"cam1": 30.0, "cam4": 30.0}
    # a 60-s cut that recovers: passes, and its gap is measured
    cut = soak.cameras_check(run(lambda t, i: 15 * i if t < 600 else 15 * i - 30 if t >= 660 else 135), 120.0)
    assert cut["passed"] and cut["longest_gap_s"]["cam4"] == 90.0
    # dead from 2,460 s to the end (the 2-hour run's cam4): fails, naming the camera and when
    dead = soak.cameras_check(run(lambda t, i: 15 * min(i, 82)), 120.0)
    assert not dead["passed"] and dead["gaps"] == [{"camera": "cam4", "from": 2460.0, "to": None}]
    # dead for 10 minutes in the middle, then back: fails with both ends
    gap = soak.cameras_check(run(lambda t, i: 15 * i if t < 1200 or t >= 1800 else 15 * 40), 120.0)
    assert gap["gaps"] == [{"camera": "cam4", "from": 1200.0, "to": 1800.0}]


def test_a_lost_or_duplicated_alert_fails_the_webhook_check(soak):
    alerts = [{"id": "cam1-x-1", "type": "open"}, {"id": "cam1-x-1", "type": "close"}]
    got = [{"id": "cam1-x-1", "type": "open", "delay": 0.0}, {"id": "cam1-x-1", "type": "close", "delay": 0.0}]
    assert soak.webhook_check(alerts, got)["passed"]
    assert soak.webhook_check(alerts, got[:1])["lost"] == [["cam1-x-1", "close"]]
    assert not soak.webhook_check(alerts, got + got[:1])["passed"]  # a duplicate without a late answer
    late = [{**got[0], "delay": 6.0}, got[0], got[1]]  # answered after the 5-s timeout: sent again, allowed
    assert soak.webhook_check(alerts, late)["passed"]


def test_an_unclosed_event_and_a_different_result_fail(soak):
    assert soak.events_check([{"id": "a", "type": "open"}, {"id": "a", "type": "close"}])["passed"]
    assert soak.events_check([{"id": "a", "type": "open"}])["never_closed"] == ["a"]
    refs = {"short": {"verdict": {"windows": [{"p_yes": 0.1}]}}}
    job = {"id": "j", "video": "short", "upload": True, "status": 202, "final": {"state": "done", "attempts": 1}}
    assert soak.jobs_check([{**job, "verdict": {"windows": [{"p_yes": 0.1}]}}], refs, {"j": ["done"]})["passed"]
    assert not soak.jobs_check([{**job, "verdict": {"windows": [{"p_yes": 0.9}]}}], refs, {"j": ["done"]})["passed"]
    twice = soak.jobs_check([{**job, "verdict": {"windows": [{"p_yes": 0.1}]}}], refs, {"j": ["done", "done"]})
    assert twice["problems"] == ["j (short): done 2 times"]


def test_the_verdict_leaves_out_timings_and_names(soak):
    a = {"video": "/m/short.mp4", "video_id": "short", "duration": 8.0, "timings": {"answer": 1.0},
         "stats": {"seconds": 2.0}, "windows": [{"start": 0.0, "end": 4.0, "p_yes": 0.12344, "threat": False}],
         "segments": []}
    b = {**a, "video": "/uploads/x.mp4", "video_id": "x", "timings": {"answer": 3.0}, "stats": {"seconds": 9.0},
         "windows": [{"start": 0.0, "end": 4.0, "p_yes": 0.12341, "threat": False}]}
    assert soak.verdict(a) == soak.verdict(b)
    assert soak.verdict(a) != soak.verdict({**a, "windows": [{"start": 0.0, "end": 4.0, "p_yes": 0.2}]})


def test_the_schedule_repeats_each_fault_kind(soak):
    two_hours = soak.full_profile(120)
    kinds = [f.kind for f in two_hours.faults]
    assert {k: kinds.count(k) for k in soak.FAULT_KINDS} == dict.fromkeys(soak.FAULT_KINDS, 6)
    assert all(f.at + f.seconds + f.slow_seconds <= 120 * 60 - 60 for f in two_hours.faults)
    ci = soak.ci_profile()
    assert sorted(f.kind for f in ci.faults) == sorted(soak.FAULT_KINDS) and ci.minutes == 2
    assert all(f.at + f.seconds + f.slow_seconds < 120 for f in ci.faults)


# ---------------------------------------------------------------------------- the committed run
def test_the_committed_report_is_the_committed_run(soak):
    """benchmarks/soak.md is what the report writer makes of benchmarks/soak.json (the
    measured run, with its reading): every check and every kind of fault in it."""
    saved = json.loads(BENCH.with_name("soak.json").read_text())
    assert BENCH.with_name("soak.md").read_text() == soak.markdown(saved)
    assert set(saved["checks"]) == CHECKS and saved["reading"] and saved["soak_seconds"] >= 600
    assert {f["kind"] for f in saved["faults"]} == set(soak.FAULT_KINDS)
    for name in saved["plots"]:
        assert BENCH.with_name(name).stat().st_size > 1000, name
