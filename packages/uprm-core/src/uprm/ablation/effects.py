"""How sure an ablation's numbers are: each variant's intervals over seeds and videos, its
paired differences from ``full``, Holm's correction and the probability of improvement.

Every run of the grid evaluated the same test videos and wrote their per-video units
(``eval/videos.json``, :class:`uprm.evaluation.intervals.VideoUnits`). From them:

- **each metric of each variant** is the mean over its seeds, with a 95 % percentile
  interval from a two-level bootstrap: each resample draws the videos with replacement
  *and* the seeds with replacement (:func:`uprm.metrics.bootstrap` with ``n_seeds``), so
  the interval is wide when the test set is small *or* the seeds disagree;
- **each variant against full**, paired by video and seed
  (:func:`uprm.metrics.compare_paired`): one draw of videos (and seeds) serves both, so
  what a set of videos makes easy or hard cancels. ``delta = variant − full`` in the
  metric's units (FNR: a positive delta is a variant that misses more; F2, mAP: a
  negative delta is a variant that does worse); its interval, a two-sided paired
  permutation p-value (the variant's and full's results of a (video, seed) swapped at
  random), and ``p_holm``: Holm's correction over the variants of one metric;
- **the probability of improvement** of full over each variant (Agarwal et al. 2021,
  rliable): tasks are the threat categories of the test set, runs are seeds, the score is
  the per-category F2 (higher is better, and unlike 100 − FNR it is not won by alarming
  on everything): ``P(full > variant)`` over pairs of seeds, averaged over categories
  (:func:`uprm.metrics.probability_of_improvement`). 0.5 is no difference.

Every resample recomputes the metrics from the drawn videos
(:meth:`VideoUnits.statistic`, exactly as the reports compute them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uprm.ablation.errors import AblationError
from uprm.evaluation.errors import EvaluationError
from uprm.evaluation.intervals import UNITS_FILE, VideoUnits
from uprm.metrics.uncertainty import (
    Bootstrap,
    Comparison,
    Estimate,
    bootstrap,
    compare_paired,
    holm,
    probability_of_improvement,
)

__all__ = ["IMPROVEMENT_SCORE", "REFERENCE", "Effects", "check_same_videos", "measure", "metric_key", "read_units"]

#: the variant every other one is compared with
REFERENCE = "full"
#: the per-category score of the probability of improvement
IMPROVEMENT_SCORE = "f2"

#: ``{variant: {seed: units}}``
UnitsGrid = Mapping[str, Mapping[int, VideoUnits]]


def metric_key(flat: str) -> str:
    """The ablation's name of a :meth:`VideoUnits.statistic` key: the table's column keys
    (``map/0.1`` → ``map_0.1``, ``map/average`` → ``map_average``), others unchanged
    (``fnr``, ``per_category/Arson/fnr``)."""
    return "map_" + flat[4:] if flat.startswith("map/") else flat


def _run(variant: str, seed: int) -> str:
    return f"{variant}/seed{seed}"


def read_units(runs: Sequence[tuple[str, int, Path]]) -> tuple[dict[str, dict[int, VideoUnits]], list[str]]:
    """The units of each finished run ``(variant, seed, eval folder)``, and the runs
    whose evaluation has none (an evaluation made before evaluations wrote them)."""
    units: dict[str, dict[int, VideoUnits]] = {}
    missing = []
    for variant, seed, folder in runs:
        path = Path(folder) / UNITS_FILE
        if not path.is_file():
            missing.append(f"{_run(variant, seed)} ({path})")
            continue
        try:
            units.setdefault(variant, {})[seed] = VideoUnits.read(path)
        except Exception as exc:  # EvaluationError: a damaged file, named
            raise AblationError(f"{_run(variant, seed)}: {exc}") from None
    return units, missing


def check_same_videos(units: UnitsGrid) -> list[str]:
    """The videos every run evaluated (sorted), or an :class:`AblationError` naming each
    run whose videos (or their ground truth, or the tIoU thresholds) differ from the first
    run's, and those videos: paired comparisons and a bootstrap over seeds need every run
    on the same videos (:meth:`VideoUnits.paired_with` checks them)."""
    runs = [(v, s, u) for v, by_seed in units.items() for s, u in sorted(by_seed.items())]
    if not runs:
        return []
    first_variant, first_seed, first = runs[0]
    problems = []
    for variant, seed, u in runs[1:]:
        try:
            first.paired_with(u, _run(first_variant, first_seed), _run(variant, seed))
        except EvaluationError as exc:
            problems.append(str(exc))
    if problems:
        raise AblationError("the runs did not evaluate the same test videos, so their intervals and paired "
                            "comparisons cannot be computed: " + "; ".join(problems)
                            + ". Evaluate every run on the same test files (delete the odd runs' eval/ folders to "
                              "redo their evaluations)")
    return sorted(first.videos)


@dataclass
class Effects:
    """Everything :func:`measure` finds (keys: :func:`metric_key` of the flat metrics).

    Attributes:
        spec: the resampling (samples, seed, confidence); ``samples == 0``: no intervals.
        permutations: permutations of each paired p-value.
        videos: the test videos every run evaluated.
        seeds: the seeds of each variant (those whose run finished).
        estimates: ``{variant: {metric: Estimate}}``, the mean over seeds and its interval.
        vs_full: ``{variant: {metric: Comparison}}`` for every variant but full, with
            ``a`` the variant, ``b`` full, ``delta = a − b`` and ``p_holm``.
        improvement: ``{variant: P(full > variant)}`` (``None``: no threat category).
        tasks: the threat categories the probability of improvement averages over.
        seconds: how long the resampling took.
    """

    spec: Bootstrap
    permutations: int
    videos: list[str]
    seeds: dict[str, list[int]]
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    vs_full: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    improvement: dict[str, float | None] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def intervals(self) -> bool:
        return self.spec.enabled

    def ci(self, variant: str, key: str) -> tuple[float, float] | None:
        estimate = self.estimates.get(variant, {}).get(key)
        return None if estimate is None else estimate.ci

    def differs(self, variant: str, key: str) -> bool:
        """The interval of ``variant − full`` in ``key`` excludes zero."""
        comparison = self.vs_full.get(variant, {}).get(key)
        return comparison is not None and comparison.excludes_zero

    def settings(self) -> dict[str, Any]:
        """``ablation.json``'s ``"bootstrap"``: how the numbers were made."""
        return {"samples": self.spec.samples, "seed": self.spec.seed, "confidence": self.spec.confidence,
                "unit": "video and seed", "permutations": self.permutations if self.intervals else 0,
                "videos": len(self.videos), "delta": f"variant − {REFERENCE}", "p_holm": "Holm over the variants of "
                "one metric", "p_improvement": f"P({REFERENCE} > variant): tasks the threat categories, runs the "
                "seeds, score the per-category F2", "seconds": round(self.seconds, 2)}

    def row(self, variant: str) -> dict[str, Any]:
        """A variant's part of ``ablation.json``: ``intervals``, ``vs_full``, ``p_improvement``."""
        out: dict[str, Any] = {"intervals": {k: {"value": e.value, "ci": None if e.ci is None else list(e.ci)}
                                             for k, e in self.estimates.get(variant, {}).items()}}
        if variant in self.vs_full:
            out["vs_full"] = {k: {"delta": c.delta, "ci": None if c.ci is None else list(c.ci), "p": c.p,
                                  "p_holm": c.p_holm, "variant": c.a, "full": c.b}
                              for k, c in self.vs_full[variant].items()}
            out["p_improvement"] = self.improvement.get(variant)
        return out


def _canonical(units: UnitsGrid, videos: Sequence[str]) -> dict[str, dict[int, VideoUnits]]:
    """Every run's units in one video order (unit ``i`` is the same video in every run)."""
    out: dict[str, dict[int, VideoUnits]] = {}
    for variant, by_seed in units.items():
        for seed, u in by_seed.items():
            index = {v: i for i, v in enumerate(u.videos)}
            out.setdefault(variant, {})[seed] = u.select([index[v] for v in videos])
    return out


def _estimates(runs: Mapping[int, VideoUnits], seeds: Sequence[int], n: int, spec: Bootstrap
               ) -> dict[str, Estimate]:
    found = bootstrap(lambda s, u: runs[seeds[s]].statistic(u), n, spec, n_seeds=len(seeds))
    return {metric_key(k): e for k, e in found.items()}


def _compare(variant: Mapping[int, VideoUnits], reference: Mapping[int, VideoUnits], seeds: Sequence[int],
             n: int, spec: Bootstrap, permutations: int) -> dict[str, Comparison]:
    pairs = {s: variant[s].paired_with(reference[s]) for s in seeds}
    found = compare_paired(lambda s, u: pairs[seeds[s]].statistic(u), n, spec, n_seeds=len(seeds),
                           permutations=permutations)
    return {metric_key(k): c for k, c in found.items()}


def _holm(vs_full: Mapping[str, Mapping[str, Comparison]]) -> None:
    """``p_holm`` of every comparison: Holm over the variants of each metric."""
    metrics = {k for by_metric in vs_full.values() for k in by_metric}
    for key in metrics:
        corrected = holm({v: c[key].p for v, c in vs_full.items() if key in c})
        for variant, p in corrected.items():
            vs_full[variant][key].p_holm = p


def threat_categories(units: VideoUnits) -> list[str]:
    """The categories with threat seconds in the test set (the tasks of the probability
    of improvement; ``Normal`` videos have none)."""
    threat = {c for c, (tp, fn, _) in zip(units.categories, units.counts) if tp + fn > 0}
    return sorted(threat)


def _scores(runs: Mapping[int, VideoUnits], seeds: Sequence[int], tasks: Sequence[str], n: int) -> np.ndarray:
    """``[tasks, seeds]`` per-category scores on all the videos."""
    everything = np.arange(n)
    per_seed = [runs[s].statistic(everything) for s in seeds]
    return np.array([[r[f"per_category/{t}/{IMPROVEMENT_SCORE}"] for r in per_seed] for t in tasks], dtype=np.float64)


def _improvement(grid: UnitsGrid, seeds: Mapping[str, Sequence[int]], tasks: Sequence[str], n: int
                 ) -> dict[str, float | None]:
    if not tasks or REFERENCE not in grid:
        return {}
    full = _scores(grid[REFERENCE], seeds[REFERENCE], tasks, n)
    return {v: probability_of_improvement(full, _scores(grid[v], seeds[v], tasks, n))
            for v in grid if v != REFERENCE}


def measure(units: UnitsGrid, spec: Bootstrap | None = None, *, permutations: int | None = None,
            order: Sequence[str] | None = None) -> Effects:
    """The intervals, paired differences from ``full`` and probabilities of improvement
    of the runs' units ``{variant: {seed: VideoUnits}}`` (see the module docstring).

    Raises:
        AblationError: the runs did not evaluate the same videos (named).
    """
    started = time.perf_counter()
    spec = spec or Bootstrap()
    videos = check_same_videos(units)
    variants = [v for v in (order or list(units)) if units.get(v)]
    grid = _canonical({v: units[v] for v in variants}, videos)
    seeds = {v: sorted(grid[v]) for v in variants}
    n = len(videos)
    effects = Effects(spec, permutations or spec.samples, videos, seeds)
    if not n:
        return effects
    effects.estimates = {v: _estimates(grid[v], seeds[v], n, spec) for v in variants}
    if REFERENCE in grid:
        for v in variants:
            common = [s for s in seeds[v] if s in grid[REFERENCE]]
            if v != REFERENCE and common:
                effects.vs_full[v] = _compare(grid[v], grid[REFERENCE], common, n, spec, effects.permutations)
        _holm(effects.vs_full)
        effects.tasks = threat_categories(grid[REFERENCE][seeds[REFERENCE][0]])
        effects.improvement = _improvement(grid, seeds, effects.tasks, n)
    effects.seconds = time.perf_counter() - started
    return effects
