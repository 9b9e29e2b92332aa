"""How sure a number is: bootstrap intervals over videos, paired comparisons, Holm's
correction and the probability of improvement.

The unit that is sampled is the **video**: the seconds of one video are not independent
draws, so an interval that resampled frames would be far too narrow. Every function
takes a *statistic* — a callable that computes a report's metrics from a multiset of
units (an integer array of unit indices, repeats allowed) — so the metrics that are not
means of per-video values (frame-level F2 pools the seconds of the videos drawn, mAP ranks
the segments of all of them) are recomputed on each resample exactly as on the whole
set. A statistic returns ``{metric: value}``; ``None`` or NaN is an undefined value
(FNR of a resample without threat seconds) and is left out of that metric's interval
(``undefined`` counts such resamples).

Seeds. A statistic may take a ``seed`` index too (``statistic(seed, units)``) when the
same videos were scored by models trained from several seeds (``uprm ablate``). The
estimate is then the mean over seeds, and its interval pools both sources of chance: a
resample draws the videos with replacement *and* the seeds with replacement (a two-level
bootstrap), so it is wide when the seeds disagree even if each seed is sure.

Pairs. Two systems scored on the same videos are compared paired by video (and by seed):
each resample draws one set of videos (and seeds) for both, so what the videos have in
common (an easy set, a hard set) cancels in the difference. The p-value is a paired
permutation test: under "no difference" the two systems' results of a video (of a seed)
are exchangeable, so each permutation swaps them for a random half of the units.

Why not :func:`scipy.stats.bootstrap` and :func:`scipy.stats.permutation_test`: they
resample one level of values and (``permutation_test``) return one scalar statistic,
while a report has a dozen metrics computed from one draw of videos, paired across two
systems and pooled over seeds; one draw shared by all of them is what makes the numbers
of one table consistent. scipy is used where it fits: the probability of improvement is
the Mann-Whitney U statistic (:func:`scipy.stats.mannwhitneyu`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError

__all__ = [
    "Bootstrap",
    "Comparison",
    "Estimate",
    "bootstrap",
    "compare_paired",
    "holm",
    "probability_of_improvement",
]

#: a statistic: ``statistic(units)`` or ``statistic(seed, units)`` -> ``{metric: value or None}``
Statistic = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: ``samples`` resamples (0: no interval), the ``seed`` of
    the draws (the same seed gives the same interval), the ``confidence`` level; the unit
    resampled is recorded with them (``report.json``'s ``"bootstrap"``)."""

    samples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    unit: str = "video"

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 0:
            raise MetricInputError(f"samples: a whole number >= 0 of bootstrap resamples, got {self.samples!r}")
        if not 0.0 < float(self.confidence) < 1.0:
            raise MetricInputError(f"confidence: a level between 0 and 1 (e.g. 0.95), got {self.confidence!r}")

    @property
    def enabled(self) -> bool:
        return self.samples > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Estimate:
    """A metric's value on all the units (mean over seeds) and its interval."""

    value: float | None
    ci: tuple[float, float] | None
    undefined: int = 0  # resamples in which the metric was undefined

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci": None if self.ci is None else list(self.ci), "undefined": self.undefined}


@dataclass
class Comparison:
    """A against B on the same units: both values, ``delta = a - b`` with its interval,
    the two-sided permutation p-value and, after :func:`holm`, the corrected one."""

    a: float | None
    b: float | None
    delta: float | None
    ci: tuple[float, float] | None
    p: float | None
    p_holm: float | None = None

    @property
    def excludes_zero(self) -> bool:
        """The delta's interval lies entirely on one side of zero."""
        return self.ci is not None and (self.ci[0] > 0.0 or self.ci[1] < 0.0)

    def to_dict(self) -> dict[str, Any]:
        out = {"a": self.a, "b": self.b, "delta": self.delta, "ci": None if self.ci is None else list(self.ci),
               "p": self.p}
        if self.p_holm is not None:
            out["p_holm"] = self.p_holm
        return out


def _seeded(statistic: Statistic) -> Callable[[int, np.ndarray], Mapping[str, Any]]:
    """``statistic`` as ``f(seed, units)`` (a one-argument statistic ignores the seed)."""
    try:
        params = [p for p in inspect.signature(statistic).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2:
        return statistic
    return lambda seed, units: statistic(units)


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MetricInputError(f"a statistic returned {value!r}; metrics must be numbers or None") from None


def _values(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> np.ndarray:
    """``[len(rows), len(metrics)]`` floats (NaN: undefined)."""
    return np.array([[_number(r.get(m)) for m in metrics] for r in rows], dtype=np.float64).reshape(len(rows),
                                                                                                  len(metrics))


def _mean_over_seeds(stat: Callable, seeds: Sequence[int], units: np.ndarray, metrics: Sequence[str]) -> np.ndarray:
    """The metrics of each seed on ``units``, averaged over ``seeds`` (repeats count);
    NaN where any seed's value is undefined."""
    return _values([stat(int(s), units) for s in seeds], metrics).mean(axis=0)


def _check(n_units: int, n_seeds: int) -> None:
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)) or n_units < 1:
        raise MetricInputError(f"n_units: at least one unit (video) is needed, got {n_units!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise MetricInputError(f"n_seeds: at least one seed, got {n_seeds!r}")


def _interval(draws: np.ndarray, confidence: float) -> tuple[list[tuple[float, float] | None], np.ndarray]:
    """Percentile intervals of each column of ``draws`` (NaN rows of a column left out)
    and how many were left out per column."""
    tail = (1.0 - confidence) / 2.0
    out: list[tuple[float, float] | None] = []
    undefined = np.isnan(draws).sum(axis=0)
    for j in range(draws.shape[1]):
        column = draws[:, j][~np.isnan(draws[:, j])]
        if column.size == 0:
            out.append(None)
            continue
        low, high = np.quantile(column, [tail, 1.0 - tail])
        out.append((float(low), float(high)))
    return out, undefined


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def bootstrap(statistic: Statistic, n_units: int, spec: Bootstrap | None = None, *, n_seeds: int = 1
              ) -> dict[str, Estimate]:
    """Each metric of ``statistic`` on all ``n_units`` units (averaged over ``n_seeds``)
    with its percentile interval from ``spec.samples`` resamples of the units (and of the
    seeds when there are several; see the module docstring). ``spec.samples == 0``: the
    values alone (``ci`` None).

    >>> import numpy as np
    >>> hits = np.array([1, 0, 1, 1, 0, 1, 1, 1])  # one 0/1 result per video
    >>> est = bootstrap(lambda u: {"recall": hits[u].mean()}, len(hits), Bootstrap(samples=500, seed=1))
    >>> est["recall"].value, est["recall"].ci[0] < 0.75 < est["recall"].ci[1]
    (0.75, True)
    """
    spec = spec or Bootstrap()
    _check(n_units, n_seeds)
    stat = _seeded(statistic)
    everything = np.arange(n_units)
    seeds = list(range(n_seeds))
    first = [stat(s, everything) for s in seeds]
    metrics = list(first[0])
    values = _values(first, metrics).mean(axis=0)
    if not spec.enabled:
        return {m: Estimate(_clean(values[j]), None) for j, m in enumerate(metrics)}
    rng = np.random.default_rng(spec.seed)
    draws = np.empty((spec.samples, len(metrics)))
    for b in range(spec.samples):
        units = rng.integers(0, n_units, n_units)
        drawn = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else seeds
        draws[b] = _mean_over_seeds(stat, drawn, units, metrics)
    cis, undefined = _interval(draws, spec.confidence)
    return {m: Estimate(_clean(values[j]), cis[j], int(undefined[j])) for j, m in enumerate(metrics)}


def compare_paired(statistic: Statistic, n_units: int, spec: Bootstrap | None = None, *, n_seeds: int = 1,
                   permutations: int | None = None) -> dict[str, Comparison]:
    """System A against system B on the same ``n_units`` videos (and ``n_seeds`` seeds).

    ``statistic(units)`` (or ``statistic(seed, units)``) scores a multiset drawn from
    ``2 * n_units`` units: unit ``i < n_units`` is A's result on video ``i``, unit
    ``n_units + i`` is B's result on the same video. So A's value is the statistic of
    ``0..n-1`` and B's of ``n..2n-1``; a resample draws videos once and takes both
    systems' results of them (paired); a permutation swaps A's and B's results of a random
    half of the videos (of each seed independently) and the p-value is the share of
    permutations whose ``|delta|`` reaches the observed one, ``(1 + k) / (1 + R)``
    (``R = permutations``, default ``spec.samples``).

    Returns ``{metric: Comparison}`` (``delta = a - b``); ``ci`` and ``p`` are None when
    ``spec.samples == 0`` or the metric is undefined.
    """
    spec = spec or Bootstrap()
    _check(n_units, n_seeds)
    stat = _seeded(statistic)
    n = int(n_units)
    seeds = list(range(n_seeds))
    a_units, b_units = np.arange(n), np.arange(n, 2 * n)
    first_a = [stat(s, a_units) for s in seeds]
    metrics = list(first_a[0])
    a = _values(first_a, metrics).mean(axis=0)
    b = _mean_over_seeds(stat, seeds, b_units, metrics)
    delta = a - b
    if not spec.enabled:
        return {m: Comparison(_clean(a[j]), _clean(b[j]), _clean(delta[j]), None, None) for j, m in enumerate(metrics)}
    rng = np.random.default_rng(spec.seed)
    draws = np.empty((spec.samples, len(metrics)))
    for r in range(spec.samples):
        videos = rng.integers(0, n, n)
        drawn = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else seeds
        draws[r] = (_mean_over_seeds(stat, drawn, videos, metrics)
                    - _mean_over_seeds(stat, drawn, videos + n, metrics))
    cis, _ = _interval(draws, spec.confidence)
    p = _permutation_p(stat, n, seeds, metrics, delta, permutations or spec.samples, rng)
    return {m: Comparison(_clean(a[j]), _clean(b[j]), _clean(delta[j]), cis[j] if not math.isnan(delta[j]) else None,
                          _clean(p[j])) for j, m in enumerate(metrics)}


def _permutation_p(stat: Callable, n: int, seeds: Sequence[int], metrics: Sequence[str], observed: np.ndarray,
                   permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Two-sided paired permutation p-values of ``observed`` (NaN where undefined)."""
    reach = np.zeros(len(metrics))
    counted = np.zeros(len(metrics))
    tolerance = 1e-12 * np.maximum(1.0, np.abs(observed))
    for _ in range(permutations):
        diffs = []
        for s in seeds:
            swap = rng.random(n) < 0.5
            first = np.where(swap, np.arange(n, 2 * n), np.arange(n))
            second = np.where(swap, np.arange(n), np.arange(n, 2 * n))
            diffs.append(_values([stat(s, first), stat(s, second)], metrics))
        d = np.mean([x[0] - x[1] for x in diffs], axis=0)
        ok = ~np.isnan(d)
        counted += ok
        reach += ok & (np.abs(d) >= np.abs(observed) - tolerance)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1.0 + reach) / (1.0 + counted)
    p[np.isnan(observed)] = np.nan
    return p


def holm(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down correction of a family of p-values (``None`` stays ``None`` and
    is not counted in the family): the ``k``-th smallest of ``m`` is multiplied by
    ``m - k + 1``, made monotone and capped at 1. It controls the family-wise error rate
    without assuming independence (the variants of one ablation share the full model).

    >>> holm({"a": 0.01, "b": 0.04, "c": 0.03})
    {'a': 0.03, 'b': 0.06, 'c': 0.06}
    """
    known = sorted(((float(p), k) for k, p in pvalues.items() if p is not None and not math.isnan(float(p))))
    m = len(known)
    out: dict[str, float | None] = {k: None for k in pvalues}
    running = 0.0
    for rank, (p, key) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[key] = round(running, 12)
    return out


def probability_of_improvement(x: Any, y: Any) -> float:
    """The probability that X beats Y (Agarwal et al. 2021, "Deep RL at the edge of the
    statistical precipice", rliable): ``x`` and ``y`` are ``[tasks, runs]`` scores
    (higher is better; runs are seeds, and they need not be paired), and for each task
    ``P(X > Y) + P(X = Y) / 2`` over all pairs of runs is the Mann-Whitney U statistic
    over ``runs_x * runs_y``; the result is its mean over tasks. 0.5 is no difference.

    >>> probability_of_improvement([[0.9, 0.8], [0.5, 0.6]], [[0.7, 0.75], [0.5, 0.6]])
    0.75
    """
    from scipy.stats import mannwhitneyu

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.ndim == 1:
        xs = xs[None, :]
    if ys.ndim == 1:
        ys = ys[None, :]
    if xs.ndim != 2 or ys.ndim != 2 or xs.shape[0] != ys.shape[0] or 0 in xs.shape or 0 in ys.shape:
        raise MetricInputError(f"x, y: [tasks, runs] scores with the same tasks, got shapes {xs.shape} and {ys.shape}")
    if np.isnan(xs).any() or np.isnan(ys).any():
        raise MetricInputError("x, y: undefined (NaN) scores; leave those tasks out")
    per_task = [mannwhitneyu(xs[t], ys[t]).statistic / (xs.shape[1] * ys.shape[1]) for t in range(xs.shape[0])]
    return float(np.mean(per_task))
