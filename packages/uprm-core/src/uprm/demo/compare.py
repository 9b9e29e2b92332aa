"""UPRM against each baseline of the demo, paired by test video, and the words that
may be said about it.

Every row of the demo was scored on the same held-out test videos, so UPRM and a
baseline are compared **paired by video** (:func:`uprm.evaluation.intervals.compare_units`
on the ``videos.json`` each evaluation wrote): a resample draws a set of test videos and
takes both systems' results on them, so what the videos share (an easy draw, a hard
draw) cancels in the difference. For FNR, F2 and the mAP average it gives
``delta = UPRM - baseline`` with its 95 % interval and the paired permutation p-value;
Holm's correction runs over the baselines of one metric (a family of three claims).

The demo says "UPRM beats X" on a metric **only when the delta's interval excludes
zero** on the better side and the (Holm-corrected) permutation p-value is below 0.05
(:func:`verdict`); otherwise it says the two are not distinguishable on that many test
videos, and where the interval excludes zero on the other side it says the baseline
beats UPRM (always-yes has the lower FNR by construction).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uprm.metrics.uncertainty import Bootstrap, Comparison

__all__ = ["METRICS", "compare_models", "format_comparisons", "verdict"]

#: the compared metrics: ``results.json`` key -> (metric of the per-video units, printed name, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "fnr": ("fnr", "FNR", False),
    "f2": ("f2", "F2", True),
    "map": ("map/average", "mAP avg", True),
}


def _detection_units(folder: str | os.PathLike) -> Any:
    """The per-video units of an evaluation without its answers (the comparison reads FNR,
    F2 and mAP only, so each resample need not score the explanations again), in the
    order its ``predictions.json`` lists the videos.

    The order matters where scores tie (the always-yes detector scores every segment 1):
    mAP ranks tied segments in the order they come, the report in the predictions file's
    order (the demo writes a hash order of the ids, :func:`uprm.demo.detect.write_predictions`),
    the units in the ground truth's; in the file's order the comparison's values on all
    the videos are the rows' own."""
    import json

    from uprm.evaluation.intervals import VideoUnits

    units = VideoUnits.read(folder)
    bare = VideoUnits(videos=units.videos, categories=units.categories, counts=units.counts, truth=units.truth,
                      predictions=units.predictions, thresholds=units.thresholds)
    listed_file = Path(folder) / "predictions.json"
    if not listed_file.is_file():
        return bare
    listed = {vid: k for k, vid in enumerate(json.loads(listed_file.read_text(encoding="utf-8")).get("results", {}))}
    order = sorted(range(len(bare)), key=lambda i: (listed.get(bare.videos[i], len(listed)), i))
    return bare.select(order)


def compare_models(eval_dirs: Mapping[str, str | os.PathLike], spec: Bootstrap, *, reference: str = "uprm",
                   labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """``reference`` against every other evaluation of ``eval_dirs`` (``{model: folder
    with videos.json}``), paired by video. One entry per baseline, in ``eval_dirs``'
    order::

        {"a": "uprm", "b": "always", "videos": 45,
         "metrics": {"fnr" | "f2" | "map": {"a", "b", "delta", "ci", "p", "p_holm"}},
         "verdicts": {"fnr" | "f2" | "map": "UPRM beats always yes on F2"}}

    ``delta = a - b`` in percentage points; ``map`` is the mAP average. ``p_holm`` is
    Holm's correction over the baselines of one metric. ``spec.samples == 0``: no
    intervals, and every verdict says so.
    """
    from uprm.evaluation.intervals import compare_units
    from uprm.metrics.uncertainty import holm

    names = labels or {}
    ref = _detection_units(eval_dirs[reference])
    found: dict[str, dict[str, Comparison]] = {}
    for name, folder in eval_dirs.items():
        if name == reference:
            continue
        flat = compare_units(ref, _detection_units(folder), spec, names=(reference, name))
        found[name] = {key: flat[unit_key] for key, (unit_key, _, _) in METRICS.items()}
    for key in METRICS:
        for name, p in holm({name: c[key].p for name, c in found.items()}).items():
            found[name][key].p_holm = p
    a_label = names.get(reference, reference)
    return [{"a": reference, "b": name, "videos": len(ref),
             "metrics": {key: c.to_dict() | {"p_holm": c.p_holm} for key, c in metrics.items()},
             "verdicts": {key: verdict(c, key, a_label, names.get(name, name), len(ref)) for key, c in metrics.items()}}
            for name, metrics in found.items()]


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def _numbers(c: Comparison) -> str:
    """``Δ +21.5 [+4.2, +38.0], p 0.004`` (Holm's p too when it differs)."""
    text = f"Δ {_signed(c.delta)}" if c.delta is not None else "Δ –"
    if c.ci is not None:
        text += f" [{_signed(c.ci[0])}, {_signed(c.ci[1])}]"
    if c.p is not None:
        text += f", p {c.p:.3f}"
        if c.p_holm is not None and abs(c.p_holm - c.p) > 5e-4:
            text += f" (Holm {c.p_holm:.3f})"
    return text


def verdict(c: Comparison, metric: str, a: str, b: str, videos: int, alpha: float = 0.05) -> str:
    """What may be said of ``a`` against ``b`` on ``metric`` (a key of :data:`METRICS`)
    from their paired comparison ``c`` (``delta = a - b``), the numbers following:

    - "a beats b" only when the delta's 95 % interval lies wholly on a's better side
      (below zero for FNR, above for F2 and mAP) **and** the permutation p-value (Holm's
      when set) is below ``alpha``; "b beats a" likewise on the other side;
    - otherwise "not distinguishable on N test videos". On a few videos the percentile
      interval can exclude zero while the permutation test finds a difference of that
      size in many random swaps (a skewed metric such as mAP); then the line says so.

    >>> verdict(Comparison(60.0, 45.0, 15.0, (4.0, 27.0), 0.01), "f2", "UPRM", "always yes", 45)
    'UPRM beats always yes on F2: Δ +15.0 [+4.0, +27.0], p 0.010'
    >>> verdict(Comparison(60.0, 55.0, 5.0, (-6.0, 16.0), 0.4), "f2", "UPRM", "coarse only", 45)
    'UPRM and coarse only are not distinguishable on F2 on 45 test videos: Δ +5.0 [-6.0, +16.0], p 0.400'
    """
    _, label, higher = METRICS[metric]
    if c.delta is None:
        return f"{a} against {b} on {label}: undefined on these {videos} test videos"
    if c.ci is None:
        return f"{a} against {b} on {label}: no interval computed (bootstrap off): {_numbers(c)}"
    p = c.p_holm if c.p_holm is not None else c.p
    if not c.excludes_zero or (p is not None and p >= alpha):
        text = f"{a} and {b} are not distinguishable on {label} on {videos} test videos: {_numbers(c)}"
        if c.excludes_zero:
            text += f" (the interval excludes zero, the permutation test does not at {alpha:g})"
        return text
    a_better = (c.ci[0] > 0.0) == higher
    winner, loser = (a, b) if a_better else (b, a)
    return f"{winner} beats {loser} on {label}: {_numbers(c)}"


def format_comparisons(comparisons: list[dict[str, Any]], spec: Bootstrap, reference: str = "UPRM") -> str:
    """The printed paragraph: how the comparison was made, then one verdict per baseline
    and metric (:func:`verdict`)."""
    if not comparisons:
        return ""
    videos = comparisons[0]["videos"]
    if spec.enabled:
        how = (f"Paired by test video (Δ = {reference} − baseline, percentage points; 95 % interval "
               f"from {spec.samples} bootstrap resamples of the {videos} test videos, both systems on the same draw; p: "
               f"paired permutation test, Holm-corrected over the {len(comparisons)} baselines; \"beats\" only where "
               f"the interval excludes zero and p < 0.05):")
    else:
        how = f"Paired by test video ({videos} videos; bootstrap off, so no intervals and no claims):"
    lines = [how]
    for entry in comparisons:
        lines.extend(f"  {entry['verdicts'][key]}" for key in METRICS)
    return "\n".join(lines)

