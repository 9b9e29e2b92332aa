"""`uprm train --tiny` killed with SIGKILL and resumed with `--resume` ends with exactly
the weights of a run that was never interrupted (same data order, optimizer state and
schedule; test_train.py checks the dropout RNG)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from .conftest import EXPERTS, FRAMES

pytestmark = pytest.mark.slow


# one thread each: the two runs share this machine's cores without slowing each other
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _command(split_files, cache, out):
    return [sys.executable, "-m", "uprm", "train", "--tiny", "--experts", EXPERTS, "--data", str(split_files["train"]),
            "--cache", str(cache), "--num-frames", str(FRAMES), "--batch-size", "4", "--max-steps", "16",
            "--save-every", "4", "--keep-last", "3", "--quiet", "--out", str(out)]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_equals_an_uninterrupted_run(split_files, cache, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = subprocess.Popen(_command(split_files, cache, whole), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=ENV)
    victim = subprocess.Popen(_command(split_files, cache, killed), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    mark = killed / "checkpoints" / "step-00000008"
    deadline = time.monotonic() + 240
    while not mark.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()
    assert mark.exists() and not (killed / "model.safetensors").exists()  # killed mid-way
    assert 8 <= len(_losses(killed)) < 16
    # the checkpoints saved before the kill: step 8 (and any later one) is not written again
    saved = killed / "checkpoints"
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in saved.rglob("*")
            if p.is_file() and p.relative_to(saved).parts[0] >= "step-00000008"}
    assert any(p.relative_to(saved).parts[0] == "step-00000008" for p in kept)

    resumed = subprocess.run([sys.executable, "-m", "uprm", "train", "--out", str(killed), "--resume", "--quiet"],
                             capture_output=True, text=True, timeout=300, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    a, b = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(killed) == _losses(whole)  # the log was cut back to step 8 and continued
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [
        "step-00000008", "step-00000012", "step-00000016"]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == kept
