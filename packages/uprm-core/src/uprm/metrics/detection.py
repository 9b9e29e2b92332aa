"""Threat locating: ActivityNet's temporal detection AP (mAP@tIoU), vectorised.

The reference is ``compute_average_precision_detection`` of ActivityNet's evaluation
kit: predictions by descending score; each matched to the not yet matched ground truth
of highest tIoU ≥ threshold in its video (a false positive otherwise); VOC-style
interpolated AP (``interpolated_prec_rec``: precision made monotone from the right,
summed over the recall steps). The kit loops over predictions × thresholds × ground
truth; here the tIoU pairs are computed in blocks, the pairs below the lowest threshold
are dropped, and the greedy matching runs over all videos and all thresholds at once,
one step per rank within a video (the steps are as many as the most predictions
overlapping ground truth in a single video).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError, as_scores, check_bounds

__all__ = ["CUVA_THRESHOLDS", "UCF_CRIME_THRESHOLDS", "interpolated_ap", "map_at_tiou", "temporal_iou"]

UCF_CRIME_THRESHOLDS = (0.1, 0.2, 0.3)  # the paper's thresholds on UCF-C instructions
CUVA_THRESHOLDS = (0.1, 0.3, 0.5)  # ... and on CUVA instructions

_PAIR_BLOCK = 1 << 22  # tIoU pairs computed at once (bounds the temporary memory)


def temporal_iou(pred_start, pred_end, gt_start, gt_end) -> np.ndarray:
    """Elementwise tIoU of segments (numpy broadcasting). Same arithmetic as
    ActivityNet's ``segment_iou``: ``inter / ((gt_end - gt_start) + (pred_end -
    pred_start) - inter)``, but a zero union (two zero-length segments) gives 0, not the
    kit's NaN (which there matches any zero-length ground truth of the video)."""
    inter = np.clip(np.minimum(pred_end, gt_end) - np.maximum(pred_start, gt_start), 0, None)
    union = (np.subtract(gt_end, gt_start) + np.subtract(pred_end, pred_start)) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def interpolated_ap(tp: np.ndarray, npos: int) -> np.ndarray:
    """Interpolated AP (fractions) of each row of ``tp`` ([T, N] booleans, predictions
    in rank order), with ``npos`` > 0 ground-truth instances; 0 for an empty row. The
    same operations as ActivityNet's ``interpolated_prec_rec``, so the same floats."""
    if npos <= 0:
        raise MetricInputError(f"npos: AP needs at least one ground-truth instance, got {npos}")
    tp = np.atleast_2d(np.asarray(tp, bool))
    if tp.shape[1] == 0:
        return np.zeros(tp.shape[0])
    tp_cum = np.cumsum(tp, axis=1).astype(np.float64)
    fp_cum = np.cumsum(~tp, axis=1).astype(np.float64)
    zeros, ones = np.zeros((tp.shape[0], 1)), np.ones((tp.shape[0], 1))
    mprec = np.hstack([zeros, tp_cum / (tp_cum + fp_cum), zeros])
    mrec = np.hstack([zeros, tp_cum / npos, ones])
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    ap = np.zeros(tp.shape[0])
    for row in range(tp.shape[0]):
        idx = np.flatnonzero(mrec[row, 1:] != mrec[row, :-1]) + 1
        ap[row] = np.sum((mrec[row, idx] - mrec[row, idx - 1]) * mprec[row, idx])
    return ap


@dataclass
class _Rows:
    video: np.ndarray  # int codes; -1: a video without ground truth
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray | None = None


def _row_ok(row: Any, width: int) -> bool:
    return isinstance(row, (tuple, list, np.ndarray)) and len(row) >= width


def _columns(rows: list, width: int, name: str, layout: str) -> list[tuple]:
    """The first ``width`` fields of each row (a tuple, list or 1-D array), as columns."""
    types_ok = all(issubclass(t, (tuple, list, np.ndarray)) for t in set(map(type, rows)))
    if not (types_ok and min(map(len, rows), default=width) >= width):
        i = next(i for i, r in enumerate(rows) if not _row_ok(r, width))
        raise MetricInputError(f"{name}[{i}]: expected {layout}, got {rows[i]!r}")
    return list(zip(*rows))[:width] if rows else [()] * width


def _floats(values: list, name: str, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        for i, v in enumerate(values):
            try:
                float(v)
            except (TypeError, ValueError):
                raise MetricInputError(f"{name}[{i}]: {what} must be a number, got {v!r}") from None
        raise


def _read_rows(rows: Iterable, codes: dict, name: str, scored: bool) -> _Rows:
    rows = list(rows)
    layout = "(video_id, start, end, score)" if scored else "(video_id, start, end)"
    cols = _columns(rows, 4 if scored else 3, name, layout)
    try:
        if not scored:  # ground truth: each new video gets the next code
            for v in cols[0]:
                if v not in codes:
                    codes[v] = len(codes)
        # predictions: a video without ground truth gets -1
        video = np.fromiter(map(codes.get, cols[0], itertools.repeat(-1)), np.int64, len(rows))
    except TypeError as exc:
        raise MetricInputError(f"{name}: video ids must be hashable ({exc})") from None
    out = _Rows(video, _floats(cols[1], name, "start"), _floats(cols[2], name, "end"))
    check_bounds(out.start, out.end, name)
    if scored:
        out.score = as_scores(_floats(cols[3], name, "score"), name + " scores")
    return out


def _check_thresholds(thresholds: Any) -> np.ndarray:
    if isinstance(thresholds, (int, float)):
        thresholds = [thresholds]
    thr = np.asarray(list(thresholds), dtype=np.float64).reshape(-1)
    if thr.size == 0:
        raise MetricInputError("thresholds: at least one tIoU threshold is needed")
    if not np.all((thr >= 0) & (thr <= 1)):
        raise MetricInputError(f"thresholds: tIoU thresholds must lie in [0, 1], got {thr.tolist()}")
    if np.unique(thr).size != thr.size:
        raise MetricInputError(f"thresholds: repeated threshold in {thr.tolist()}")
    return thr


def _pairs(pred: _Rows, gt: _Rows, min_thr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (prediction, ground truth) of the same video with tIoU ≥ ``min_thr``:
    prediction indices, ground-truth indices (both into the rows as given), tIoU."""
    g_order = np.argsort(gt.video, kind="stable")  # ground truth by video, given order kept
    g_count = np.bincount(gt.video, minlength=int(gt.video.max()) + 1)
    g_first = np.concatenate([[0], np.cumsum(g_count)[:-1]])
    preds = np.flatnonzero(pred.video >= 0)
    per_pred = g_count[pred.video[preds]]
    blocks = np.searchsorted(np.cumsum(per_pred), np.arange(1, per_pred.sum() // _PAIR_BLOCK + 1) * _PAIR_BLOCK)
    found = []
    for chunk, counts in zip(np.split(preds, blocks), np.split(per_pred, blocks)):
        p = np.repeat(chunk, counts)
        offset = np.arange(p.size) - np.repeat(np.cumsum(counts) - counts, counts)
        g = g_order[g_first[pred.video[p]] + offset]
        tiou = temporal_iou(pred.start[p], pred.end[p], gt.start[g], gt.end[g])
        keep = tiou >= min_thr
        found.append((p[keep], g[keep], tiou[keep]))
    p, g, tiou = (np.concatenate(parts) for parts in zip(*found))  # np.split gives ≥ 1 chunk
    return p, g, tiou


def _steps(ranks: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """The rank of each prediction among the given predictions of its own video
    (``ranks`` ascending and distinct)."""
    by_video = np.lexsort((ranks, videos))
    sorted_videos = videos[by_video]
    step = np.empty(ranks.size, np.int64)
    step[by_video] = np.arange(ranks.size) - np.searchsorted(sorted_videos, sorted_videos)
    return step


def _greedy_match(order: np.ndarray, video: np.ndarray, pairs: tuple, thr: np.ndarray, n_gt: int) -> np.ndarray:
    """True positives ``[T, N]``, column ``r`` for the prediction ranked ``r`` (``order``:
    prediction indices by descending score). ``pairs`` = (prediction, ground truth,
    tIoU) of the pairs that can match."""
    p, g, tiou = pairs
    tp = np.zeros((thr.size, order.size), bool)
    if p.size == 0:
        return tp
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    pair_rank = rank[p]
    cand = np.unique(pair_rank)  # ranks of the predictions that can match
    step = _steps(cand, video[order[cand]])
    pair_step = step[np.searchsorted(cand, pair_rank)]
    # within a step: by prediction, then tIoU descending, then ground truth as given
    by_step = np.lexsort((g, -tiou, pair_rank, pair_step))
    p_rank, g, tiou, pair_step = pair_rank[by_step], g[by_step], tiou[by_step], pair_step[by_step]
    bounds = np.searchsorted(pair_step, np.arange(step.max() + 2))
    locked = np.zeros((thr.size, n_gt), bool)
    for a, b in itertools.pairwise(bounds):
        _match_step(p_rank[a:b], g[a:b], tiou[a:b], thr, locked, tp)
    return tp


def _match_step(p_rank, g, tiou, thr, locked, tp) -> None:
    """One rank step: predictions of distinct videos (so disjoint ground truth); each
    takes, per threshold, its first pair (best tIoU) still free and ≥ threshold."""
    ok = (tiou[None, :] >= thr[:, None]) & ~locked[:, g]
    t_idx, j = np.nonzero(ok)
    if j.size == 0:
        return
    new_group = np.r_[True, (t_idx[1:] != t_idx[:-1]) | (p_rank[j[1:]] != p_rank[j[:-1]])]
    t_idx, j = t_idx[new_group], j[new_group]
    tp[t_idx, p_rank[j]] = True
    locked[t_idx, g[j]] = True


def map_at_tiou(predictions: Iterable, ground_truth: Iterable, thresholds: Any) -> dict[Any, float]:
    """ActivityNet detection AP at each tIoU threshold, class-agnostic, in percent.

    ``predictions``: ``(video_id, start, end, score)`` rows; ``ground_truth``:
    ``(video_id, start, end)`` rows (seconds; extra trailing fields, e.g. a label, are
    ignored: for per-category AP, filter the rows first). Returns ``{threshold: AP, ...,
    "average": mean of those APs}``, every value in percent (0-100); the keys are the
    thresholds as given (floats).

    Exactly ActivityNet's ``compute_average_precision_detection`` (the same floats),
    with its open points fixed:

    - Ranking: descending score, ties in the order the predictions are given (a stable
      sort, ``np.argsort(-score, kind="stable")``; the kit's ``argsort()[::-1]`` leaves
      ties to numpy's unstable quicksort).
    - Matching: the free ground truth of highest tIoU ≥ threshold in the prediction's
      video; among equal tIoU, the one given first.
    - A prediction in a video without ground truth is a false positive; ground truth of
      a video without predictions counts as missed.
    - No predictions: AP 0 at every threshold. No ground truth: an error (AP is
      undefined). tIoU of two zero-length segments is 0 (the kit divides 0 by 0).
    - Errors (:class:`MetricInputError`): a malformed row, a non-finite time, an end
      before its start, a NaN score (±inf scores rank first/last), a threshold outside
      [0, 1] or repeated, unhashable video ids.
    """
    thr = _check_thresholds(thresholds)
    codes: dict = {}
    gt = _read_rows(ground_truth, codes, "ground_truth", scored=False)
    pred = _read_rows(predictions, codes, "predictions", scored=True)
    if gt.video.size == 0:
        raise MetricInputError("ground_truth: empty; AP is undefined without ground-truth segments")
    order = np.argsort(-pred.score, kind="stable")
    pairs = _pairs(pred, gt, float(thr.min()))
    tp = _greedy_match(order, pred.video, pairs, thr, gt.video.size)
    ap = interpolated_ap(tp, gt.video.size) * 100.0
    out: dict[Any, float] = {float(t): float(a) for t, a in zip(thr, ap)}
    out["average"] = float(np.mean(ap))
    return out
