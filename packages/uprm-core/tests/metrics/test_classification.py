"""FNR, F2, video-level identification and frame-level ROC-AUC / AP against independent
hand or brute-force computations."""

import math

import numpy as np
import pytest

from uprm.metrics import (
    MetricInputError,
    confusion_counts,
    f2_score,
    false_negative_rate,
    frame_average_precision,
    frame_roc_auc,
    video_identification,
)


def f2_from_pr(t, p):
    """The paper's formula, from precision and recall."""
    tp = sum(a and b for a, b in zip(t, p))
    precision, recall = tp / sum(p), tp / sum(t)
    return 5 * precision * recall / (4 * precision + recall)


def test_hand_case():
    t = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p = [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert confusion_counts(t, p) == {"tp": 3, "fp": 2, "fn": 1, "tn": 4}
    assert false_negative_rate(t, p) == 0.25
    # P = 3/5, R = 3/4: 5PR / (4P + R) = 2.25 / 3.15
    assert f2_score(t, p) == pytest.approx(2.25 / 3.15, abs=1e-15)
    assert f2_score(t, p) == pytest.approx(f2_from_pr(t, p), abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_random_against_precision_recall(seed):
    rng = np.random.default_rng(seed)
    t = rng.random(500) < 0.3
    p = rng.random(500) < 0.4
    assert false_negative_rate(t, p) == pytest.approx(np.sum(t & ~p) / np.sum(t), abs=1e-15)
    assert f2_score(t, p) == pytest.approx(f2_from_pr(t.tolist(), p.tolist()), abs=1e-14)


def test_degenerate_cases():
    # no positive frame: FNR is 0/0
    assert math.isnan(false_negative_rate([0, 0, 0], [0, 1, 0]))
    assert false_negative_rate([0, 0], [0, 0], zero_division=0.0) == 0.0
    # all-negative and correctly so: F2 is 0/0
    assert math.isnan(f2_score([0, 0, 0], [0, 0, 0]))
    assert f2_score([0, 0, 0], [0, 0, 0], zero_division=1.0) == 1.0
    # no predicted positive while threats exist: recall 0 -> F2 0, FNR 1
    assert f2_score([1, 1, 0], [0, 0, 0]) == 0.0
    assert false_negative_rate([1, 1, 0], [0, 0, 0]) == 1.0
    # only false alarms on an all-negative video: precision 0 -> F2 0
    assert f2_score([0, 0, 0], [1, 0, 0]) == 0.0
    # perfect
    assert f2_score([1, 0, 1], [1, 0, 1]) == 1.0
    assert false_negative_rate([1, 0, 1], [1, 0, 1]) == 0.0
    # empty input: nothing to count
    assert math.isnan(false_negative_rate([], []))


def test_input_kinds_agree():
    torch = pytest.importorskip("torch")
    t, p = [True, True, False, True], [1, 0, 0, 1]
    want = f2_score(t, p)
    assert f2_score(np.array(t), np.array(p, dtype=np.uint8)) == want
    assert f2_score(torch.tensor(t), torch.tensor(p, dtype=torch.float32)) == want
    assert f2_score(torch.tensor(t), torch.tensor(p, dtype=torch.bfloat16)) == want
    assert false_negative_rate(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]])) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("t", "p", "message"),
    [
        ([1, 0, 1], [1, 0], "lengths differ"),
        ([1, 0, 2], [1, 0, 1], r"y_true: .*got 2 at index 2"),
        ([1, 0, 1], [0.7, 0.1, 0.9], "y_pred: .*threshold scores"),
        ([1, 0, math.nan], [1, 0, 1], "y_true: .*binary"),
        (["a", "b"], [1, 0], "y_true: .*dtype"),
    ],
)
def test_bad_labels(t, p, message):
    with pytest.raises(MetricInputError, match=message):
        f2_score(t, p)


def test_video_identification():
    truth = [True, True, True, False, False]
    answers = ["Yes, a man hits another man.", "no", "  YES", "No.", "yes"]
    got = video_identification(truth, answers)
    assert {k: got[k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert got["fnr"] == pytest.approx(1 / 3)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f2"] == pytest.approx(5 * (2 / 3) ** 2 / (4 * 2 / 3 + 2 / 3))
    assert video_identification(["yes", "no"], [1, 0])["f2"] == 1.0
    nothing = video_identification([0, 0], ["no", "no"])
    assert math.isnan(nothing["fnr"]) and math.isnan(nothing["f2"]) and math.isnan(nothing["precision"])
    with pytest.raises(MetricInputError, match=r"answers\[1\].*yes or no.*'Maybe'"):
        video_identification([1, 0], ["yes", "Maybe"])
    with pytest.raises(MetricInputError, match=r"answers\[0\]"):
        video_identification([1, 0], ["yesterday", "no"])  # the word yes, not the prefix


def auc_by_pairs(t, s):
    pos = [x for x, y in zip(s, t) if y]
    neg = [x for x, y in zip(s, t) if not y]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def ap_by_thresholds(t, s):
    """Step-wise AP: sum over distinct thresholds (descending) of (R_k - R_k-1) * P_k."""
    npos, total, last_recall = sum(t), 0.0, 0.0
    for threshold in sorted(set(s), reverse=True):
        chosen = [y for x, y in zip(s, t) if x >= threshold]
        precision, recall = sum(chosen) / len(chosen), sum(chosen) / npos
        total += (recall - last_recall) * precision
        last_recall = recall
    return total


def test_frame_auc_and_ap_by_hand():
    t, s = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]
    assert frame_roc_auc(t, s) == pytest.approx(0.75)
    assert frame_average_precision(t, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize("seed", range(4))
def test_frame_auc_and_ap_random_with_ties(seed):
    rng = np.random.default_rng(seed)
    t = (rng.random(300) < 0.3).tolist()
    s = np.round(rng.random(300), 1).tolist()  # many ties
    assert frame_roc_auc(t, s) == pytest.approx(auc_by_pairs(t, s), abs=1e-12)
    assert frame_average_precision(t, s) == pytest.approx(ap_by_thresholds(t, s), abs=1e-12)


def test_frame_auc_and_ap_with_one_class():
    assert math.isnan(frame_roc_auc([0, 0, 0], [0.1, 0.5, 0.2]))
    assert math.isnan(frame_roc_auc([1, 1], [0.1, 0.5]))
    assert math.isnan(frame_average_precision([0, 0, 0], [0.1, 0.5, 0.2]))
    assert frame_average_precision([1, 1], [0.1, 0.5]) == 1.0
    with pytest.raises(MetricInputError, match="NaN score at index 1"):
        frame_roc_auc([1, 0], [0.3, math.nan])
    with pytest.raises(MetricInputError, match="lengths differ"):
        frame_average_precision([1, 0], [0.3])
