"""The labelled videos split **by video** into training and held-out videos, stratified by
category and seeded.

Each category's videos are ranked by SHA-256 of ``(seed, video id)`` — the instruction
builder's way (:func:`uprm.data.assign_split`), so the split depends on the seed and the
ids only, never on the order of the labels file — and the first
``round(held_out × n)`` of them (at least one, and never all) are held out. A window of a
held-out video is never trained on, so the held-out scores measure videos the model has
not seen. A category with a single labelled video cannot be both trained on and measured:
its video stays in training and the split says so (``notes``); it then has no held-out
row. Plain Python.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from uprm.errors import ConfigError

__all__ = ["SPLIT_FILE", "Split", "split_videos"]

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class Split:
    """Which videos train and which are held out.

    Attributes:
        seed, held_out: the split's seed and held-out share.
        categories: ``{category: {"train": [ids], "held_out": [ids]}}``, ids sorted.
        notes: what the user should know (a category too small to hold a video out).
    """

    seed: int
    held_out: float
    categories: dict[str, dict[str, list[str]]]
    notes: list[str] = field(default_factory=list)

    @property
    def train_videos(self) -> list[str]:
        return sorted(v for c in self.categories.values() for v in c["train"])

    @property
    def held_out_videos(self) -> list[str]:
        return sorted(v for c in self.categories.values() for v in c["held_out"])

    def to_dict(self) -> dict[str, Any]:
        """``split.json``: ``train`` and ``held_out`` (video ids), ``categories`` (both per
        category), ``seed``, ``fraction``, ``unit: "video"``, ``method`` and ``notes``."""
        return {"unit": "video", "seed": self.seed, "fraction": self.held_out,
                "method": "per category, videos ranked by SHA-256 of (seed, video id); the first "
                          "round(fraction x n) held out, at least 1 and at most n - 1",
                "train": self.train_videos, "held_out": self.held_out_videos, "categories": self.categories,
                "notes": list(self.notes)}


def _rank(video_id: str, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}\x01{video_id}".encode()).digest()


def _count(n: int, fraction: float) -> int:
    """Videos held out of ``n``: ``round(fraction × n)`` (halves up), at least 1, at most n - 1."""
    return min(n - 1, max(1, math.floor(fraction * n + 0.5)))


def split_videos(categories: Mapping[str, Sequence[str]], held_out: float = 0.3, seed: int = 0) -> Split:
    """Split ``{category: [video ids]}`` by video, per category (module doc).

    Raises:
        ConfigError: ``held_out`` outside (0, 1), or no category has two videos (nothing
            could be measured).
    """
    if not 0 < held_out < 1:
        raise ConfigError(f"held_out: a share of each category's videos in (0, 1), got {held_out!r}")
    out: dict[str, dict[str, list[str]]] = {}
    notes = []
    for category in sorted(categories):
        ranked = sorted(dict.fromkeys(categories[category]), key=lambda v: _rank(v, seed))
        if len(ranked) < 2:
            out[category] = {"train": sorted(ranked), "held_out": []}
            notes.append(f"{category}: only {len(ranked)} labelled video ({', '.join(ranked)}), kept for training; "
                         "label at least two videos of a category to measure it on a held-out one")
            continue
        k = _count(len(ranked), held_out)
        out[category] = {"train": sorted(ranked[k:]), "held_out": sorted(ranked[:k])}
    if not any(c["held_out"] for c in out.values()):
        raise ConfigError("no video can be held out to measure on: every category has a single labelled video "
                          f"({', '.join(sorted(categories))}); label at least two videos of a category")
    return Split(seed, float(held_out), out, notes)
