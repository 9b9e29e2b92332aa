"""Temporal grounding as the field reports it (Charades-STA, ActivityNet Captions, UCA):
the top-1 predicted segment of each query against its ground-truth segment; mean IoU
and recall at IoU thresholds, in percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError, as_segments, check_bounds, check_same_length, segment_bounds
from uprm.metrics.detection import temporal_iou

__all__ = ["GROUNDING_THRESHOLDS", "temporal_grounding"]

GROUNDING_THRESHOLDS = (0.3, 0.5, 0.7)


def _is_segment(item: Any) -> bool:
    if hasattr(item, "start") and hasattr(item, "end"):
        return True
    return isinstance(item, (Sequence, np.ndarray)) and len(item) >= 2 and np.isscalar(item[0])


def _top1(item: Any) -> tuple[float, float] | None:
    """A segment, or the first of a ranked list of segments; None or [] for no answer."""
    if item is None:
        return None
    if _is_segment(item):
        return segment_bounds(item)
    try:
        first = next(iter(item), None)
    except TypeError:
        raise MetricInputError(f"expected a (start, end) segment or a list of them, got {item!r}") from None
    return None if first is None else segment_bounds(first)


def _top1_array(predictions: Any) -> np.ndarray:
    """``[Q, 2]`` bounds; NaN rows for queries the model did not answer."""
    if isinstance(predictions, np.ndarray) or hasattr(predictions, "detach"):
        return as_segments(predictions, "predictions")
    out = np.full((len(predictions), 2), np.nan)
    for i, item in enumerate(predictions):
        try:
            top = _top1(item)
        except (MetricInputError, TypeError, ValueError, IndexError):
            raise MetricInputError(
                f"predictions[{i}]: expected a (start, end) segment, a list of them or None, got {item!r}"
            ) from None
        if top is not None:
            out[i] = top
    answered = ~np.isnan(out[:, 0])
    check_bounds(out[answered, 0], out[answered, 1], "predictions (answered)")
    return out


def temporal_grounding(
    predictions: Any, ground_truth: Any, thresholds: Sequence[float] = GROUNDING_THRESHOLDS
) -> dict[str, float]:
    """Mean IoU and R@m of one predicted segment per query, in percent (0-100).

    ``predictions[q]``: the query's top-1 segment ``(start, end)`` (or a
    :class:`uprm.Segment`), or a ranked list of segments of which the first is taken
    (e.g. :func:`uprm.parse_segments`' output), or ``None`` / ``[]`` when the model gave
    no segment: that query counts with IoU 0. ``ground_truth[q]``: its segment. A
    ``[Q, 2]`` array or tensor works for either.

    Returns ``{"mIoU": ..., "R@0.3": ..., "R@0.5": ..., "R@0.7": ...}`` (keys
    ``f"R@{m:g}"``); R@m is the share of queries with IoU ≥ m. IoU of two zero-length
    segments is 0. Errors: no query, lengths that differ, non-finite times, an end
    before its start, thresholds outside [0, 1].
    """
    pred = _top1_array(predictions)
    gt = as_segments(ground_truth, "ground_truth")
    check_same_length(pred, gt, "predictions, ground_truth")
    if len(gt) == 0:
        raise MetricInputError("ground_truth: no query to evaluate")
    thr = np.asarray(list(thresholds), dtype=np.float64)
    if not np.all((thr >= 0) & (thr <= 1)):
        raise MetricInputError(f"thresholds: IoU thresholds must lie in [0, 1], got {thr.tolist()}")
    iou = np.nan_to_num(temporal_iou(pred[:, 0], pred[:, 1], gt[:, 0], gt[:, 1]), nan=0.0)
    out = {"mIoU": float(np.mean(iou) * 100)}
    out.update({f"R@{m:g}": float(np.mean(iou >= m) * 100) for m in thr})
    return out
