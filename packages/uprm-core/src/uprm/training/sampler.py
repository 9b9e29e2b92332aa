"""Deterministic batch plans: bucketed by frame count, sharded by rank, resumable.

A batch cannot mix frame counts (an image is a one-frame clip, a video has ``F``
frames; :class:`uprm.data.UPRMCollator` refuses a mix), so items are grouped into
*buckets* by frame count. For each epoch, :class:`BatchPlan` shuffles every bucket with
a generator seeded by ``(seed, epoch)``, cuts it into *global batches* of the
effective batch size ``E`` (the last one of a bucket filled by wrapping around to the
bucket's start, so every step is a full batch and every item is seen at least once an
epoch) and shuffles the order of the global batches. The plan depends only on the item
frame counts, ``E`` and the seed — not on the number of processes — so a run resumed
on another number of GPUs with the same effective batch sees the same data.

A global batch of step ``s`` is split into ``K = grad_accum × world_size``
micro-batches of ``m = E / K`` items; process ``r`` takes micro-batch ``a·world + r``
at accumulation step ``a`` (:func:`micro_batches`). One process with two accumulation
steps and two processes with one see the same two micro-batches, which is why their
losses and updates agree. The data position of a run is just its global step
(``epoch = step // steps_per_epoch``), so resuming means starting the iterator there.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["BatchPlan", "RankBatchSampler", "eval_batches", "micro_batch_size", "micro_batches"]


def micro_batch_size(batch_size: int, grad_accum: int, world_size: int) -> int:
    """Items per process and accumulation step; ``batch_size`` must split evenly."""
    parts = grad_accum * world_size
    if batch_size % parts:
        raise ValueError(
            f"the effective batch size {batch_size} does not split into {grad_accum} accumulation step(s) x "
            f"{world_size} process(es); choose --batch-size as a multiple of {parts}"
        )
    return batch_size // parts


@dataclass(frozen=True)
class BatchPlan:
    """The global batches of every epoch.

    Args:
        frame_counts: the number of frames of each dataset item, by index.
        batch_size: the effective batch ``E`` (all processes and accumulation steps).
        seed: the shuffling seed.
        shuffle: ``False`` keeps dataset order inside buckets and buckets in order.
    """

    frame_counts: tuple[int, ...]
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    _buckets: dict[int, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.frame_counts:
            raise ValueError("no training items")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")
        buckets: dict[int, list[int]] = {}
        for index, frames in enumerate(self.frame_counts):
            buckets.setdefault(int(frames), []).append(index)
        object.__setattr__(self, "_buckets", dict(sorted(buckets.items())))

    @property
    def buckets(self) -> dict[int, int]:
        """``{frames: number of items}``."""
        return {f: len(ix) for f, ix in self._buckets.items()}

    @property
    def steps_per_epoch(self) -> int:
        return sum(math.ceil(n / self.batch_size) for n in self.buckets.values())

    def fingerprint(self) -> str:
        """Identifies the plan (items' frame counts, batch size, seed, shuffling)."""
        blob = json.dumps([list(self.frame_counts), self.batch_size, self.seed, self.shuffle])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def epoch(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (each of ``batch_size`` item indices)."""
        rng = random.Random(int.from_bytes(hashlib.sha256(f"{self.seed}:{epoch}".encode()).digest()[:8], "big"))
        batches: list[list[int]] = []
        for items in self._buckets.values():
            order = list(items)
            if self.shuffle:
                rng.shuffle(order)
            need = math.ceil(len(order) / self.batch_size) * self.batch_size
            filled = [order[i % len(order)] for i in range(need)]
            batches += [filled[i : i + self.batch_size] for i in range(0, need, self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def batch(self, step: int) -> list[int]:
        """The global batch of global step ``step`` (epochs follow one another)."""
        epoch, index = divmod(step, self.steps_per_epoch)
        return self.epoch(epoch)[index]


def micro_batches(batch: Sequence[int], grad_accum: int, world_size: int, rank: int) -> list[list[int]]:
    """Process ``rank``'s micro-batches of one global batch, in accumulation order."""
    size = micro_batch_size(len(batch), grad_accum, world_size)
    out = []
    for step in range(grad_accum):
        j = step * world_size + rank
        out.append(list(batch[j * size : (j + 1) * size]))
    return out


class RankBatchSampler:
    """A ``batch_sampler`` for a DataLoader: this process's micro-batches for global
    steps ``start_step`` .. ``total_steps - 1`` (``grad_accum`` per step)."""

    def __init__(self, plan: BatchPlan, *, grad_accum: int, world_size: int, rank: int, start_step: int,
                 total_steps: int) -> None:
        micro_batch_size(plan.batch_size, grad_accum, world_size)  # validates the split
        self.plan, self.grad_accum, self.world_size, self.rank = plan, grad_accum, world_size, rank
        self.start_step, self.total_steps = start_step, total_steps

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step) * self.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        cached_epoch, batches = -1, []
        for step in range(self.start_step, self.total_steps):
            epoch, index = divmod(step, self.plan.steps_per_epoch)
            if epoch != cached_epoch:
                cached_epoch, batches = epoch, self.plan.epoch(epoch)
            yield from micro_batches(batches[index], self.grad_accum, self.world_size, self.rank)


def eval_batches(frame_counts: Sequence[int], batch_size: int, world_size: int, rank: int) -> list[list[int]]:
    """Validation micro-batches of this process: every item exactly once over all
    processes, bucketed by frame count, in dataset order."""
    buckets: dict[int, list[int]] = {}
    for index, frames in enumerate(frame_counts):
        buckets.setdefault(int(frames), []).append(index)
    batches = [ix[i : i + batch_size] for _, ix in sorted(buckets.items()) for i in range(0, len(ix), batch_size)]
    return batches[rank::world_size]
