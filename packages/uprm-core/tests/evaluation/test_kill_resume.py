"""An `uprm eval` killed with SIGKILL mid-run and run again ends with exactly the files
of an uninterrupted run, keeping the clips it had finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .test_model_eval import OUTPUTS

pytestmark = pytest.mark.slow  # two fresh interpreters


def _close(a, b) -> bool:
    """Equal, floats to 1e-6 relative: two processes may sum in another order (vectorised
    loops over differently aligned memory) and differ in the last bits."""
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def assert_same_output(got, expected) -> None:
    if got.suffix == ".json":
        assert _close(json.loads(got.read_text()), json.loads(expected.read_text())), got.name
    elif got.suffix == ".jsonl":
        lines = [json.loads(x) for x in got.read_text().splitlines()]
        assert _close(lines, [json.loads(x) for x in expected.read_text().splitlines()]), got.name
    else:
        assert got.read_bytes() == expected.read_bytes(), got.name


def _args(checkpoint, test_json, cache, out):
    return ["eval", "--checkpoint", str(checkpoint), "--data", str(test_json), "--cache", str(cache), "--out",
            str(out), "--batch-size", "1", "--no-sbert", "--system", "tiny", "--quiet", "--format", "none"]


def _clip_lines(out):
    path = out / "clips.jsonl"
    return path.read_text().splitlines()[1:] if path.exists() else []


def test_sigkill_then_rerun_equals_an_uninterrupted_run(checkpoint, test_json, cache, tmp_path):
    killed = tmp_path / "killed"
    victim = subprocess.Popen([sys.executable, "-m", "uprm", *_args(checkpoint, test_json, cache, killed)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(_clip_lines(killed)) < 2 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()
    before = _clip_lines(killed)
    assert 2 <= len(before) < 6 and not (killed / "report.json").exists()  # killed mid-way

    resumed = subprocess.run([sys.executable, "-m", "uprm", *_args(checkpoint, test_json, cache, killed)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"  # the same interpreter settings as the killed run (torch threads)
    uninterrupted = subprocess.run([sys.executable, "-m", "uprm", *_args(checkpoint, test_json, cache, whole)],
                                   capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    for name in OUTPUTS:
        assert_same_output(killed / name, whole / name)
    # the clips finished before the kill were kept as they were
    after = {json.loads(x)["clip"]: x for x in _clip_lines(killed)}
    assert all(after[json.loads(x)["clip"]] == x for x in before if x.endswith("}"))
