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

from .conftest import invoke
from .test_model_eval import OUTPUTS

pytestmark = pytest.mark.slow  # two fresh interpreters


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
    whole = tmp_path / "whole"
    invoke(*_args(checkpoint, test_json, cache, whole))
    for name in OUTPUTS:
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    # the clips finished before the kill were kept as they were
    after = {json.loads(x)["clip"]: x for x in _clip_lines(killed)}
    assert all(after[json.loads(x)["clip"]] == x for x in before if x.endswith("}"))
