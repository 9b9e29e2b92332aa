"""A real two-process run on this CPU (torchrun + gloo through accelerate): both ranks
end with identical weights, and the losses match a one-process run with the same
effective batch (8 = 4 x 2 processes = 4 x 2 accumulation steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .conftest import EXPERTS, FRAMES

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("_ddp_worker.py")


def _run(command, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads per process in both runs
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_two_processes_match_one_process_with_accumulation(split_files, cache, tmp_path):
    settings = {"tiny": True, "data": [str(split_files["train"])], "cache": str(cache), "experts": EXPERTS.split(","),
                "num_frames": FRAMES, "batch_size": 8, "max_steps": 6, "progress": False}
    two, one = tmp_path / "two", tmp_path / "one"
    out = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
                json.dumps({**settings, "out": str(two)})])
    assert "rank 0 of 2: DistributedType.MULTI_CPU" in out and "rank 1 of 2: DistributedType.MULTI_CPU" in out
    _run([sys.executable, str(WORKER), json.dumps({**settings, "out": str(one), "grad_accum": 2})])

    rank0, rank1 = load_file(str(two / "rank0.safetensors")), load_file(str(two / "rank1.safetensors"))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    derived = json.loads((two / "train_config.json").read_text())["derived"]
    assert (derived["world_size"], derived["micro_batch_size"]) == (2, 4)

    def log(run):
        return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]

    a, b = log(two), log(one)
    assert len(a) == len(b) == 6
    for key in ("loss", "ce_loss", "z_loss", "grad_norm"):
        assert [r[key] for r in a] == pytest.approx([r[key] for r in b], rel=1e-4), key
    single = load_file(str(one / "rank0.safetensors"))
    assert all(torch.allclose(rank0[k], single[k], atol=1e-5) for k in single)
