"""temporal_grounding: mIoU and R@m of the top-1 segment per query, by hand."""

import math

import numpy as np
import pytest

from uprm import Segment
from uprm.metrics import MetricInputError, temporal_grounding


def test_hand_case():
    preds = [(0, 10), (0, 10), (2, 8), None]
    gt = [(0, 10), (5, 15), (0, 10), (3, 4)]
    ious = [1.0, 5 / 15, 6 / 10, 0.0]
    got = temporal_grounding(preds, gt)
    assert got["mIoU"] == pytest.approx(100 * sum(ious) / 4)
    assert got["R@0.3"] == pytest.approx(75.0)  # 1, 1/3, 0.6
    assert got["R@0.5"] == pytest.approx(50.0)  # 1, 0.6
    assert got["R@0.7"] == pytest.approx(25.0)
    assert list(got) == ["mIoU", "R@0.3", "R@0.5", "R@0.7"]


def test_recall_counts_iou_equal_to_the_threshold():
    got = temporal_grounding([(0, 5)], [(0, 10)], thresholds=[0.5, 0.50001])
    assert got == {"mIoU": 50.0, "R@0.5": 100.0, "R@0.50001": 0.0}


def test_ranked_lists_segments_and_arrays():
    torch = pytest.importorskip("torch")
    gt = [(2, 4), (0, 10)]
    ranked = [[Segment(2, 4, "fight", 0.9), Segment(0, 1)], []]  # parse_segments-like; [] = no answer
    assert temporal_grounding(ranked, gt) == temporal_grounding([(2, 4), None], gt)
    assert temporal_grounding([[(2, 4), (0, 1)], [[0, 5]]], gt) == temporal_grounding([(2, 4), (0, 5)], gt)
    want = temporal_grounding([(2, 3), (1, 9)], gt)
    assert temporal_grounding(np.array([[2, 3], [1, 9]]), torch.tensor(gt)) == want
    assert want["mIoU"] == pytest.approx(100 * (0.5 + 0.8) / 2)


def test_zero_length():
    assert temporal_grounding([(3, 3)], [(3, 3)])["mIoU"] == 0.0
    assert temporal_grounding([(3, 3)], [(0, 10)])["mIoU"] == 0.0


@pytest.mark.parametrize(
    ("preds", "gt", "message"),
    [
        ([(0, 1)], [(0, 1), (2, 3)], "lengths differ"),
        ([], [], "no query"),
        ([(2, 1)], [(0, 1)], "end 1.0 is before start 2.0"),
        ([(0, 1)], [(0, math.nan)], "finite"),
        ([(0, 1)], [None], r"ground_truth\[0\]"),
        (["soon"], [(0, 1)], r"predictions\[0\]"),
    ],
)
def test_bad_input(preds, gt, message):
    with pytest.raises(MetricInputError, match=message):
        temporal_grounding(preds, gt)
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        temporal_grounding([(0, 1)], [(0, 1)], thresholds=[1.5])
