"""How a synthetic world is rendered."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from uprm.synthetic.events import KEYED_CATEGORIES, SITE_CATEGORIES, THREAT_CATEGORIES

__all__ = ["DESIGNS", "WorldConfig"]

#: how a world is designed: ``"default"`` (six threats, colour-blind look-alikes) or ``"keyed"``
#: (each threat differs from its twin in exactly one expert's input; :mod:`uprm.synthetic.keyed`)
DESIGNS = ("default", "keyed")


@dataclass(frozen=True)
class WorldConfig:
    """How a world is rendered.

    Attributes:
        size: frame side in pixels (square frames).
        fps: frames per second of the videos (and of the annotation frame indices).
        min_duration, max_duration: video length range in seconds.
        normal_fraction: share of normal videos. The keyed design renders a threat and its
            twin in pairs, so there it is always 0.5 (whatever is given).
        categories: the threat categories to use (subset of :data:`THREAT_CATEGORIES`; for the
            keyed design a subset of :data:`KEYED_CATEGORIES`, and the default six mean those four).
        splits: train / val / test fractions (stratified by category; the keyed design keeps a
            threat and its twin in one split).
        crf: H.264 quality (lower = larger, sharper files).
        supersample: draw at this factor, then downsample (anti-aliasing).
        design: ``"default"`` or ``"keyed"`` (:data:`DESIGNS`). Left out of :meth:`to_dict` when
            default, so a default world's files and fingerprint are what they were before designs.
        site_category: a site category (:data:`~uprm.synthetic.events.SITE_CATEGORIES`, e.g.
            ``"FenceClimbing"``) added to ``categories``, or ``None`` (the default: no site category).
            Its scenes gain what it needs (a fence), its look-alikes join the normal videos, and
            the world writes ``taxonomy.yaml`` (UCF-Crime's categories and it). Default design only.
        site_fraction: with ``site_category``, the share of the threat videos that are of it (and
            of the normal videos that are its look-alikes). Both are left out of :meth:`to_dict`
            without a site category, so a default world's files and fingerprint stay as they were.
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
    design: str = "default"
    site_category: str | None = None
    site_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"design must be one of {list(DESIGNS)}, got {self.design!r}")
        if self.design == "keyed":
            self._keyed()
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
        self._site()
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "splits", tuple(float(f) for f in self.splits))

    def _keyed(self) -> None:
        """The keyed design's categories (the default six mean its four) and its pairs (half twins)."""
        categories = tuple(self.categories)
        if categories == THREAT_CATEGORIES:
            categories = KEYED_CATEGORIES
        unknown = [c for c in categories if c not in KEYED_CATEGORIES]
        if unknown or not categories:
            raise ValueError(f"unknown categories {unknown} for the keyed design; choose from {list(KEYED_CATEGORIES)}")
        object.__setattr__(self, "categories", tuple(dict.fromkeys(categories)))
        object.__setattr__(self, "normal_fraction", 0.5)

    def _site(self) -> None:
        """The site category: a known one, in the default design, with a share in (0, 1]."""
        if not 0.0 < self.site_fraction <= 1.0:
            raise ValueError(f"site_fraction must be in (0, 1], got {self.site_fraction}")
        if self.site_category is None:
            return
        if self.site_category not in SITE_CATEGORIES:
            raise ValueError(f"unknown site category {self.site_category!r}; choose from {list(SITE_CATEGORIES)}")
        if self.design != "default":
            raise ValueError(f"a site category is for the default design, not the {self.design} one")

    @property
    def threat_kinds(self) -> tuple[str, ...]:
        """Every threat the world scripts: ``categories``, then the site category if any."""
        return self.categories + ((self.site_category,) if self.site_category else ())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["splits"] = list(self.splits)
        if self.design == "default":
            del d["design"]
        if self.site_category is None:
            del d["site_category"], d["site_fraction"]
        return d
