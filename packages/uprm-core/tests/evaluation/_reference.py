"""Independent plain-loop computations of the evaluation's numbers (no uprm.metrics, no
numpy, no scikit-learn): what the tests compare the reports with."""

from __future__ import annotations

import math


def per_second(segments, duration: float, rate: float = 1.0) -> list[bool]:
    """Sample i covers [i/rate, (i+1)/rate) cut at the duration; positive when its
    centre lies in a segment (start <= centre < end)."""
    n = math.ceil(round(duration * rate, 9))
    out = []
    for i in range(n):
        centre = (i / rate + min((i + 1) / rate, duration)) / 2
        out.append(any(s <= centre < e for s, e in segments))
    return out


def counts(truth: list[bool], pred: list[bool]) -> tuple[int, int, int]:
    tp = sum(t and p for t, p in zip(truth, pred))
    fn = sum(t and not p for t, p in zip(truth, pred))
    fp = sum(p and not t for t, p in zip(truth, pred))
    return tp, fn, fp


def fnr_f2(truth: list[bool], pred: list[bool]) -> tuple[float | None, float | None]:
    """In percent; None for 0/0."""
    tp, fn, fp = counts(truth, pred)
    fnr = 100.0 * fn / (tp + fn) if tp + fn else None
    f2 = 100.0 * 5 * tp / (5 * tp + 4 * fn + fp) if 5 * tp + 4 * fn + fp else None
    return fnr, f2


def tiou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def activitynet_ap(predictions, ground_truth, threshold: float) -> float:
    """ActivityNet's detection AP in percent, as its kit loops: predictions by descending
    score (ties in the given order), each matched to the free ground truth of its video
    with the highest tIoU >= threshold; VOC interpolated AP."""
    order = sorted(range(len(predictions)), key=lambda i: -predictions[i][3])
    used = [False] * len(ground_truth)
    hits = []
    for i in order:
        vid, s, e, _ = predictions[i]
        best, best_j = -1.0, None
        for j, (gvid, gs, ge) in enumerate(ground_truth):
            if gvid != vid or used[j]:
                continue
            value = tiou((s, e), (gs, ge))
            if value >= threshold and value > best:
                best, best_j = value, j
        if best_j is not None:
            used[best_j] = True
        hits.append(best_j is not None)
    tp = fp = 0
    precision, recall = [], []
    for hit in hits:
        tp, fp = tp + hit, fp + (not hit)
        precision.append(tp / (tp + fp))
        recall.append(tp / len(ground_truth))
    mprec, mrec = [0.0, *precision, 0.0], [0.0, *recall, 1.0]
    for k in range(len(mprec) - 2, -1, -1):
        mprec[k] = max(mprec[k], mprec[k + 1])
    return 100.0 * sum((mrec[k] - mrec[k - 1]) * mprec[k] for k in range(1, len(mrec)) if mrec[k] != mrec[k - 1])


def roc_auc(labels: list[bool], scores: list[float]) -> float | None:
    """Percent; the probability a positive outscores a negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return 100.0 * wins / (len(pos) * len(neg))


def average_precision(labels: list[bool], scores: list[float]) -> float | None:
    """Percent; step-wise area under precision-recall over the distinct score thresholds."""
    npos = sum(labels)
    if not npos:
        return None
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        chosen = [y for s, y in zip(scores, labels) if s >= t]
        recall = sum(chosen) / npos
        ap += (recall - last_recall) * (sum(chosen) / len(chosen))
        last_recall = recall
    return 100.0 * ap


def grounding(pairs) -> dict[str, float]:
    """mIoU and R@0.3/0.5/0.7 in percent of (predicted or None, annotated) segments."""
    ious = [tiou(p, g) if p is not None else 0.0 for p, g in pairs]
    out = {"mIoU": 100.0 * sum(ious) / len(ious)}
    out.update({f"R@{m:g}": 100.0 * sum(i >= m for i in ious) / len(ious) for m in (0.3, 0.5, 0.7)})
    return out
