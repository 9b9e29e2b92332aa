"""A plain-loop transcription of ActivityNet's detection AP (``compute_average_precision_
detection`` + ``interpolated_prec_rec`` + ``segment_iou``), written from the algorithm's
description in pure Python: one prediction, one threshold and one ground truth at a
time. Sums are Python's, or with ``kit_sums=True`` numpy's ``np.sum`` / ``np.mean`` on the
same terms as the kit (numpy sums pairwise: the last bit can differ from Python's). The tests compare :func:`uprm.metrics.map_at_tiou` with it, and
benchmarks/metrics.py times both. Open points fixed as uprm.metrics documents them: ties
in score keep the given order; ties in tIoU prefer the ground truth given first; a zero
union gives tIoU 0."""

from __future__ import annotations

import numpy as np


def tiou(pred: tuple[float, float], gt: tuple[float, float]) -> float:
    inter = max(0.0, min(pred[1], gt[1]) - max(pred[0], gt[0]))
    union = ((gt[1] - gt[0]) + (pred[1] - pred[0])) - inter
    return inter / union if union > 0 else 0.0


def hits_at(predictions: list, ground_truth: list, threshold: float) -> list[bool]:
    """True/False (true positive or not) per prediction, in ranking order."""
    by_video: dict = {}
    for k, (video, start, end, *_) in enumerate(ground_truth):
        by_video.setdefault(video, []).append((k, start, end))
    ranked = sorted(predictions, key=lambda row: -row[3])  # Python's sort is stable
    taken: set[int] = set()
    hits = []
    for video, start, end, *_ in ranked:
        scored = [(tiou((start, end), (s, e)), k) for k, s, e in by_video.get(video, [])]
        scored.sort(key=lambda item: -item[0])  # best tIoU first; equal: given order
        hit = False
        for value, k in scored:
            if value < threshold:
                break
            if k in taken:
                continue
            taken.add(k)
            hit = True
            break
        hits.append(hit)
    return hits


def interpolated_average_precision(hits: list[bool], npos: int, kit_sums: bool = False) -> float:
    precision, recall, tp = [], [], 0
    for n, hit in enumerate(hits, start=1):
        tp += hit
        precision.append(tp / n)
        recall.append(tp / npos)
    mprec = [0.0, *precision, 0.0]
    mrec = [0.0, *recall, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    terms = []
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            terms.append((mrec[i] - mrec[i - 1]) * mprec[i])
    return float(np.sum(np.array(terms))) if kit_sums else sum(terms)


def reference_map(predictions: list, ground_truth: list, thresholds, kit_sums: bool = False) -> dict:
    """``{threshold: AP percent, ..., "average": mean}`` like ``map_at_tiou``."""
    out = {}
    for threshold in thresholds:
        hits = hits_at(predictions, ground_truth, threshold)
        ap = interpolated_average_precision(hits, len(ground_truth), kit_sums) if hits else 0.0
        out[float(threshold)] = 100.0 * ap
    values = list(out.values())
    out["average"] = float(np.mean(values)) if kit_sums else sum(values) / len(values)
    return out
