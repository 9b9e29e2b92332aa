"""The training and validation data of a run: instruction files through the feature
cache, bucketed by frame count, each process loading its own micro-batches."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from uprm.training.sampler import BatchPlan, RankBatchSampler

__all__ = ["STAGE_TASKS", "RunData", "collator", "load_run_data", "model_inputs", "move_to", "train_loader"]

#: the tasks each stage's instruction sets hold (for a warning when they do not)
STAGE_TASKS = {"pretune": {"relation", "pose", "background"}, "deepsvu": {"identify", "locate", "attribute"}}


@dataclass
class RunData:
    """A dataset with what the trainer needs to know about its items."""

    dataset: Any  # uprm.data.InstructionDataset
    frame_counts: list[int]
    tasks: Counter
    fingerprint: str


def _records(files: Sequence[str]) -> list[dict[str, Any]]:
    from uprm.data import load_records

    return [rec for f in files for rec in load_records(f)]


def load_run_data(files: Sequence[str], model: Any, cache: str | None, num_frames: int) -> RunData:
    """An :class:`~uprm.data.InstructionDataset` over ``files`` with ``model``'s experts:
    features come from ``cache`` when valid there, else are extracted online (and
    written back to ``cache``, so each missing clip is extracted once)."""
    from uprm.data import FeatureCache, InstructionDataset

    feature_cache = FeatureCache(cache) if cache else None
    dataset = InstructionDataset(list(files), model.block, feature_cache, num_frames=num_frames,
                                 write_back=feature_cache is not None)
    records = _records(files)
    if len(records) != len(dataset):  # pragma: no cover - the dataset keeps every record
        raise RuntimeError(f"{len(dataset)} items but {len(records)} records in {list(files)}")
    frames = [1 if "image" in rec else int(num_frames) for rec in records]
    blob = json.dumps(records, sort_keys=True, default=str).encode()
    return RunData(dataset, frames, Counter(str(rec.get("task")) for rec in records),
                   hashlib.sha256(blob).hexdigest()[:16])


def collator(model: Any):
    from uprm.data import UPRMCollator

    return UPRMCollator(model.collate, model.tokenize)


def train_loader(data: RunData, model: Any, plan: BatchPlan, *, grad_accum: int, world_size: int, rank: int,
                 start_step: int, total_steps: int, num_workers: int) -> DataLoader:
    """This process's micro-batches of global steps ``start_step`` … ``total_steps - 1``."""
    sampler = RankBatchSampler(plan, grad_accum=grad_accum, world_size=world_size, rank=rank,
                               start_step=start_step, total_steps=total_steps)
    return DataLoader(data.dataset, batch_sampler=sampler, collate_fn=collator(model), num_workers=num_workers)


def model_inputs(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The model's keyword arguments from a collated batch, on ``device``."""
    return {
        "input_ids": batch["input_ids"].to(device),
        "attention_mask": batch["attention_mask"].to(device),
        "labels": batch["labels"].to(device),
        "features": move_to(batch["features"], device),
    }


def move_to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: move_to(v, device) for k, v in value.items()}
    return value
