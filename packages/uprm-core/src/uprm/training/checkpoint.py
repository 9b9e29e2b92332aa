"""Checkpoints of a run: written atomically, the last K kept, read back exactly.

Layout of ``RUN/checkpoints/step-00000050/`` (50 optimizer steps done)::

    config.json          the model's UPRMConfig        } a from_pretrained-loadable
    model.safetensors    its trainable weights          } model (UPRMModel.save_pretrained)
    optimizer.pt         AdamW state (torch.save of tensors and numbers; read with weights_only=True)
    scheduler.json       the learning-rate scheduler's state
    rng_state.pt         per process: torch (CPU and CUDA), Python and NumPy generator states
    trainer_state.json   the data position (step, epoch, step in epoch), the plan and data
                         fingerprints, the trained parameter names; written last

Everything is written into a hidden temporary folder beside the final one, which is then
renamed into place in one step, so a run killed at any moment (even ``kill -9``) leaves
complete checkpoints only; temporary folders left behind are removed by the next run.
Nothing is pickled beyond plain tensors and numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from uprm.errors import CheckpointError
from uprm.utils import atomic_write_json

__all__ = [
    "CHECKPOINTS",
    "CheckpointError",
    "capture_rng",
    "latest_checkpoint",
    "list_checkpoints",
    "prune_checkpoints",
    "read_checkpoint",
    "restore_rng",
    "write_checkpoint",
]

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer_state.json"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, ``(step, folder)``, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _NAME.match(child.name)
        if m and (child / STATE_NAME).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def remove_partial(run_dir: str | os.PathLike) -> None:
    """Delete temporary checkpoint folders left by a killed writer."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_dir():
        for child in root.glob(".step-*"):
            shutil.rmtree(child, ignore_errors=True)


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest complete checkpoints; return the deleted."""
    found = list_checkpoints(run_dir)
    doomed = [path for _, path in found[: max(0, len(found) - keep_last)]]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


# ---------------------------------------------------------------------- RNG states
def capture_rng() -> dict[str, Any]:
    """This process's generator states as tensors and numbers (no pickled objects)."""
    import numpy as np

    version, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    import numpy as np

    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------- write / read
def write_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    *,
    save_model: Any,
    optimizer_state: Mapping[str, Any] | None,
    scheduler_state: Mapping[str, Any],
    rng_states: Mapping[int, Mapping[str, Any]],
    trainer_state: Mapping[str, Any],
    keep_last: int,
) -> Path:
    """Write checkpoint ``step`` atomically and prune old ones (call on the main process).

    ``save_model(folder)`` writes ``config.json`` and ``model.safetensors`` into it
    (``UPRMModel.save_pretrained``); ``optimizer_state`` ``None`` means the optimizer
    was saved by ``save_model`` itself (FSDP / DeepSpeed through accelerate).
    """
    final = checkpoint_dir(run_dir, step)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_model(tmp)
        if optimizer_state is not None:
            torch.save(dict(optimizer_state), tmp / "optimizer.pt")
        atomic_write_json(tmp / "scheduler.json", _json_state(scheduler_state))
        torch.save({int(r): dict(s) for r, s in rng_states.items()}, tmp / "rng_state.pt")
        atomic_write_json(tmp / STATE_NAME, dict(trainer_state))
        if final.exists():  # a checkpoint of the same step from an earlier attempt
            trash = final.parent / f".{final.name}.old-{os.getpid()}"
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_checkpoints(run_dir, keep_last)
    return final


def _json_state(state: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        with contextlib.suppress(TypeError, ValueError):
            json.dumps(value)
            out[key] = value
    return out


def read_checkpoint(path: str | os.PathLike, rank: int) -> dict[str, Any]:
    """What :func:`write_checkpoint` wrote, for process ``rank``: ``trainer_state``,
    ``scheduler``, ``optimizer`` (``None`` if absent), ``rng`` (``None`` if this rank
    has none) and ``weights`` (the path of ``model.safetensors``)."""
    path = Path(path)
    try:
        state = json.loads((path / STATE_NAME).read_text(encoding="utf-8"))
        scheduler = json.loads((path / "scheduler.json").read_text(encoding="utf-8"))
        optimizer = None
        if (path / "optimizer.pt").is_file():
            optimizer = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        rngs = torch.load(path / "rng_state.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc})") from exc
    return {"trainer_state": state, "scheduler": scheduler, "optimizer": optimizer, "rng": rngs.get(rank),
            "weights": path / "model.safetensors"}
