"""`uprm detect` on a 10-minute file end to end (memory bounded, cost linear), and a
corpus split between two processes under torchrun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from uprm.cli import cli


@pytest.mark.slow
def test_a_ten_minute_file_runs_end_to_end(detector, make_video, tmp_path):
    root = tmp_path / "data"
    make_video(root, "hall", 600.0, (300.0, 312.0))  # 64x64 at 2 fps: 1200 frames
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["detect", str(root / "videos" / "hall.mp4"), "--checkpoint", str(detector),
                                      "--out", str(out), "--sidecar-dir", str(root), "--batch-size", "8",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "hall.json").read_text())
    assert data["duration"] == 600.0
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(296.0, 316.0)]  # threat 300-312 s
    stats = data["stats"]
    assert stats["windows"] == 149 and len(data["windows"]) == 149
    assert stats["frames_decoded"] == stats["frames_needed"] == 150  # each grid frame once, 149 windows x 2
    assert stats["peak_frames_held"] <= stats["max_frames_held"] == 7 + 2  # one batch of 8 windows
    assert (out / "hall.png").is_file() and (out / "hall" / "1.png").is_file()
    assert "hall: 1 segment(s) in 600.0 s, 149 windows" in result.output


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.mark.slow
def test_two_processes_split_the_files(detector, threat_data, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "uprm",
           "detect", str(threat_data / "videos"), "--checkpoint", str(detector), "--out", str(out),
           "--sidecar-dir", str(threat_data), "--quiet", "--device", "cpu"]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = re.findall(r"\[process (\d)/2\] (\d) detected", result.stdout)
    assert sorted(rank for rank, _ in lines) == ["0", "1"], result.stdout
    assert sum(int(n) for _, n in lines) == 3
    writers = {json.loads((out / f"{v}.json").read_text())["written_by"] for v in ("shop", "street", "quiet")}
    assert writers == {"0/2", "1/2"}
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"shop", "street", "quiet"}  # written by process 0 after the barrier, for all
    assert [r["segment"] for r in results["shop"]] == [[12.0, 32.0]]
