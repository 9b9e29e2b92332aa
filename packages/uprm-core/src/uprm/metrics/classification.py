"""Threat identification: frame-level FNR and F2 (the paper's Tables 1-5, after Hawkeye),
the same on per-video yes/no answers, and the frame-level ROC-AUC / AP the rest of the
field reports. All of them return fractions in [0, 1], as scikit-learn does; multiply by
100 for the paper's tables."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError, as_binary, as_scores, check_same_length

__all__ = [
    "confusion_counts",
    "f2_score",
    "false_negative_rate",
    "frame_average_precision",
    "frame_roc_auc",
    "video_identification",
]


def confusion_counts(y_true: Any, y_pred: Any) -> dict[str, int]:
    """``{"tp", "fp", "fn", "tn"}`` of binary labels (bool or 0/1; any shape, the two
    shapes equal; lists, numpy arrays or torch tensors)."""
    t, p = as_binary(y_true, "y_true"), as_binary(y_pred, "y_pred")
    check_same_length(t, p, "y_true, y_pred")
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": t.size - tp - fp - fn}


def _fnr(c: dict[str, int], zero_division: float) -> float:
    positives = c["tp"] + c["fn"]
    return c["fn"] / positives if positives else float(zero_division)


def _f2(c: dict[str, int], zero_division: float) -> float:
    denominator = 5 * c["tp"] + 4 * c["fn"] + c["fp"]
    return 5 * c["tp"] / denominator if denominator else float(zero_division)


def false_negative_rate(y_true: Any, y_pred: Any, *, zero_division: float = math.nan) -> float:
    """FNR = false-negative samples / positive samples, a fraction in [0, 1].

    ``y_true`` and ``y_pred`` are binary per-frame (or per-second) labels, e.g. from
    :func:`segments_to_frames`. With no positive sample in ``y_true`` FNR is 0/0 and
    ``zero_division`` (NaN by default, so that ``np.nanmean`` skips it) is returned.
    """
    return _fnr(confusion_counts(y_true, y_pred), zero_division)


def f2_score(y_true: Any, y_pred: Any, *, zero_division: float = math.nan) -> float:
    """F2 = 5PR / (4P + R), a fraction in [0, 1] (recall weighs four times precision).

    Computed from the counts as 5TP / (5TP + 4FN + FP), which equals 5PR/(4P+R) whenever
    TP > 0, and is 0 when TP = 0 but there are errors (no predicted positives while
    threats exist, or only false alarms), as scikit-learn's ``fbeta_score(beta=2)``.
    Only when there is no positive at all, in ``y_true`` nor in ``y_pred`` (a correctly
    all-negative input), is it 0/0: ``zero_division`` (NaN by default) is returned.
    """
    return _f2(confusion_counts(y_true, y_pred), zero_division)


_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def _as_answers(x: Any, name: str) -> np.ndarray:
    """Booleans / 0-1, or answers that begin with the word yes or no ("Yes, a man ...")."""
    items = x.tolist() if isinstance(x, np.ndarray) else x
    if isinstance(items, (list, tuple)) and any(isinstance(a, str) for a in items):
        out = np.zeros(len(items), bool)
        for i, answer in enumerate(items):
            m = _YES_NO.match(answer) if isinstance(answer, str) else None
            if m is None:
                raise MetricInputError(f"{name}[{i}]: expected an answer beginning with yes or no, got {answer!r}")
            out[i] = m.group(1).lower() == "yes"
        return out
    return as_binary(x, name)


def video_identification(y_true: Any, answers: Any, *, zero_division: float = math.nan) -> dict[str, float]:
    """Video-level identification: one label per video (threat or not) against the
    model's yes/no answer to "is there a threat?".

    Both take booleans / 0-1, or strings beginning with the word yes or no (case and
    leading punctuation ignored: ``"Yes, a man hits ..."``); any other string is an
    error (parse free-form answers first). Returns ``fnr``, ``f2``, ``precision`` and
    ``recall`` as fractions (``zero_division`` where 0/0) and the counts ``tp``, ``fp``,
    ``fn``, ``tn``.
    """
    c = confusion_counts(_as_answers(y_true, "y_true"), _as_answers(answers, "answers"))
    predicted, positives = c["tp"] + c["fp"], c["tp"] + c["fn"]
    out: dict[str, float] = {
        "fnr": _fnr(c, zero_division),
        "f2": _f2(c, zero_division),
        "precision": c["tp"] / predicted if predicted else float(zero_division),
        "recall": c["tp"] / positives if positives else float(zero_division),
    }
    out.update(c)
    return out


def _labels_and_scores(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    t, s = as_binary(y_true, "y_true"), as_scores(scores, "scores")
    check_same_length(t, s, "y_true, scores")
    return t, s


def frame_roc_auc(y_true: Any, scores: Any) -> float:
    """Frame-level ROC-AUC (scikit-learn's ``roc_auc_score``), a fraction in [0, 1], of
    per-frame threat scores against binary labels. Undefined when only one class is
    present in ``y_true`` (e.g. only normal videos): NaN is returned then."""
    t, s = _labels_and_scores(y_true, scores)
    if t.all() or not t.any():
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(t, s))


def frame_average_precision(y_true: Any, scores: Any) -> float:
    """Frame-level average precision (scikit-learn's ``average_precision_score``: the
    step-wise area under the precision-recall curve, not interpolated), a fraction in
    [0, 1]. Undefined without a positive frame: NaN is returned then (all-positive
    labels are fine: AP = 1)."""
    t, s = _labels_and_scores(y_true, scores)
    if not t.any():
        return math.nan
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(t, s))
