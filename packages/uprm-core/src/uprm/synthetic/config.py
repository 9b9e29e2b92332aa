"""How a synthetic world is rendered."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from uprm.synthetic.events import THREAT_CATEGORIES

__all__ = ["WorldConfig"]


@dataclass(frozen=True)
class WorldConfig:
    """How a world is rendered.

    Attributes:
        size: frame side in pixels (square frames).
        fps: frames per second of the videos (and of the annotation frame indices).
        min_duration, max_duration: video length range in seconds.
        normal_fraction: share of normal videos.
        categories: the threat categories to use (subset of :data:`THREAT_CATEGORIES`).
        splits: train / val / test fractions (stratified by category).
        crf: H.264 quality (lower = larger, sharper files).
        supersample: draw at this factor, then downsample (anti-aliasing).
    """

    size: int = 128
    fps: float = 8.0
    min_duration: float = 8.0
    max_duration: float = 20.0
    normal_fraction: float = 0.4
    categories: tuple[str, ...] = THREAT_CATEGORIES
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    crf: int = 18
    supersample: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size must be an int >= 32, got {self.size!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if not 6.0 <= self.min_duration <= self.max_duration:
            raise ValueError(
                f"durations must satisfy 6 <= min_duration <= max_duration, got {self.min_duration}, {self.max_duration}"
            )
        if not 0.0 <= self.normal_fraction <= 1.0:
            raise ValueError(f"normal_fraction must be in [0, 1], got {self.normal_fraction}")
        unknown = [c for c in self.categories if c not in THREAT_CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"unknown categories {unknown}; choose from {list(THREAT_CATEGORIES)}")
        if len(self.splits) != 3 or any(f < 0 for f in self.splits) or sum(self.splits) <= 0:
            raise ValueError(f"splits must be three non-negative fractions, got {self.splits}")
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "splits", tuple(float(f) for f in self.splits))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["splits"] = list(self.splits)
        return d
