"""What a run writes as it goes: ``log.jsonl``, ``eval.jsonl``, TensorBoard events, a
progress bar.

``RUN/log.jsonl`` has one JSON object per optimizer step::

    {"step": 12, "loss": 2.31, "ce_loss": 2.12, "z_loss": 3.85, "lr": 0.001,
     "grad_norm": 1.7, "expert_weights": {"coarse": 0.41, "pose": 0.30, ...},
     "epoch": 0.75, "time": 3.2}

``step`` counts optimizer steps from 1; ``loss = ce_loss + α_z·z_loss`` averaged over
the step's micro-batches and processes; ``z_loss`` is 0.0 for the basic router (it has
none); ``lr`` is the rate the step's update used; ``grad_norm`` the gradient's global
norm before clipping; ``expert_weights`` each expert's mean router weight over the
step's video tokens (coarse: ``1 − G``, the weight eq.6 gives the coarse expert);
``time`` seconds since the run (or its resumption) started. ``RUN/eval.jsonl`` holds
``{"step", "eval_loss", "eval_ce_loss", "eval_z_loss", "items"}`` per evaluation.

A resumed run first cuts both files back to its checkpoint's step, so the log always
describes one uninterrupted run. TensorBoard events go to ``RUN/tensorboard/`` when
the ``tensorboard`` package is installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from uprm.utils import atomic_write_text

__all__ = ["EVAL_LOG", "TRAIN_LOG", "RunLog", "read_jsonl"]

TRAIN_LOG = "log.jsonl"
EVAL_LOG = "eval.jsonl"


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A line that is not a JSON object — the torn
    last line of a killed writer, or a damaged line (bad JSON, bytes that are not
    UTF-8) — is skipped."""
    records = []
    path = Path(path)
    if not path.is_file():
        return records
    for raw in path.read_bytes().splitlines():
        try:
            line = raw.decode("utf-8").strip()
            if not line:
                continue
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _truncate(path: Path, last_step: int) -> None:
    kept = [r for r in read_jsonl(path) if isinstance(r.get("step"), int) and r["step"] <= last_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


class RunLog:
    """Appends the step and evaluation records of the main process (a no-op elsewhere)."""

    def __init__(self, run_dir: str | os.PathLike, *, enabled: bool, start_step: int, total_steps: int,
                 progress: bool, tensorboard: bool = True) -> None:
        self.dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        self.bar = None
        if not enabled:
            return
        for name in (TRAIN_LOG, EVAL_LOG):
            _truncate(self.dir / name, start_step)
        self._train = (self.dir / TRAIN_LOG).open("a", encoding="utf-8")
        self._eval = (self.dir / EVAL_LOG).open("a", encoding="utf-8")
        if tensorboard:
            self.writer = _tensorboard_writer(self.dir / "tensorboard", start_step)
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", desc="train", dynamic_ncols=True)

    def step(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        self._train.write(json.dumps(record) + "\n")
        self._train.flush()
        step = int(record["step"])
        if self.writer is not None:
            for key, value in _scalars(record, ("loss", "ce_loss", "z_loss", "lr", "grad_norm")):
                self.writer.add_scalar(f"train/{key}", value, step)
            for name, weight in record.get("expert_weights", {}).items():
                self.writer.add_scalar(f"expert_weights/{name}", weight, step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", refresh=False)
            self.bar.update(1)

    def evaluation(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        self._eval.write(json.dumps(record) + "\n")
        self._eval.flush()
        if self.writer is not None:
            for key, value in _scalars(record, ("eval_loss", "eval_ce_loss", "eval_z_loss")):
                self.writer.add_scalar(f"eval/{key[5:]}", value, int(record["step"]))
        if self.bar is not None:
            self.bar.write(f"step {record['step']}: validation loss {record['eval_loss']:.4f} "
                           f"({record['items']} items)")

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        for f in (self._train, self._eval):
            f.close()
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()


def _scalars(record: Mapping[str, Any], keys: Iterable[str]) -> list[tuple[str, float]]:
    return [(k, float(record[k])) for k in keys if isinstance(record.get(k), (int, float))]


def _tensorboard_writer(folder: Path, start_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=start_step + 1 if start_step else None)
