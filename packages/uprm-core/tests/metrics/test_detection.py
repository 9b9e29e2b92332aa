"""map_at_tiou: hand-computed cases, the open points (ties, videos without ground truth,
empty inputs), and random data against the plain-loop ActivityNet transcription in
anet_reference.py."""

import math

import numpy as np
import pytest

from uprm.metrics import MetricInputError, interpolated_ap, map_at_tiou, temporal_iou

GT = [("v", 0, 10), ("v", 20, 30)]


def test_hand_case_two_thresholds():
    preds = [
        ("v", 0, 10, 0.9),  # tIoU 1 with the first ground truth: TP
        ("v", 0, 9, 0.8),  # 0.9 with the same, already taken: FP
        ("v", 21, 31, 0.7),  # 9/11 = 0.818 with the second: TP at 0.5, FP at 0.9
    ]
    got = map_at_tiou(preds, GT, [0.5, 0.9])
    # 0.5: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
    # 0.9: precision 1, 1/2, 1/3 at recall 1/2 -> 1/2 * 1
    assert got[0.5] == pytest.approx(100 * (0.5 + 1 / 3), abs=1e-12)
    assert got[0.9] == pytest.approx(50.0, abs=1e-12)
    assert got["average"] == pytest.approx((got[0.5] + got[0.9]) / 2, abs=1e-12)
    assert list(got) == [0.5, 0.9, "average"]


def test_given_order_of_thresholds_and_ranks_does_not_matter():
    preds = [("v", 21, 31, 0.7), ("v", 0, 10, 0.9), ("v", 0, 9, 0.8)]
    assert map_at_tiou(preds, GT, [0.9, 0.5]) == map_at_tiou(sorted(preds, key=lambda r: -r[3]), GT, [0.9, 0.5])


def test_score_ties_keep_the_given_order():
    gt = [("v", 0, 10)]
    miss, hit = ("v", 50, 60, 0.5), ("v", 0, 10, 0.5)
    # [miss, hit]: precision 0 then 1/2 at recall 1 -> 0.5; [hit, miss]: precision 1 at recall 1 -> 1
    assert map_at_tiou([miss, hit], gt, [0.5])[0.5] == pytest.approx(50.0)
    assert map_at_tiou([hit, miss], gt, [0.5])[0.5] == pytest.approx(100.0)


def test_tiou_ties_take_the_ground_truth_given_first():
    # [0, 10] overlaps [0, 5] and [5, 10] with tIoU 1/2 each; [5, 10] (lower score) only the latter
    preds = [("v", 0, 10, 0.9), ("v", 5, 10, 0.8)]
    first_left = [("v", 0, 5), ("v", 5, 10)]
    first_right = [("v", 5, 10), ("v", 0, 5)]
    assert map_at_tiou(preds, first_left, [0.5])[0.5] == pytest.approx(100.0)  # both hit
    # the first prediction takes [5, 10]; the second then misses: precision 1, 1/2 at recall 1/2
    assert map_at_tiou(preds, first_right, [0.5])[0.5] == pytest.approx(50.0)


def test_videos_without_ground_truth_and_without_predictions():
    gt = [("a", 0, 10), ("b", 0, 10)]
    preds = [("a", 0, 10, 0.9), ("normal", 0, 10, 0.8), ("a", 0, 10, 0.1)]
    # a: TP; normal (no ground truth): FP; a again: FP (taken); b is never found
    # precision 1, 1/2, 1/3 at recall 1/2 -> 50
    assert map_at_tiou(preds, gt, [0.5, 0.7]) == {0.5: 50.0, 0.7: 50.0, "average": 50.0}


def test_empty_predictions_and_empty_ground_truth():
    assert map_at_tiou([], GT, (0.1, 0.3, 0.5)) == {0.1: 0.0, 0.3: 0.0, 0.5: 0.0, "average": 0.0}
    only_elsewhere = [("other", 0, 10, 1.0)]
    assert map_at_tiou(only_elsewhere, GT, [0.1])[0.1] == 0.0
    with pytest.raises(MetricInputError, match="ground_truth: empty"):
        map_at_tiou([("v", 0, 1, 0.5)], [], [0.5])


def test_perfect_and_threshold_edges():
    preds = [(vid, s, e, 1.0) for vid, s, e in GT]
    assert map_at_tiou(preds, GT, [0.0, 0.5, 1.0]) == {0.0: 100.0, 0.5: 100.0, 1.0: 100.0, "average": 100.0}
    # threshold 0 matches any ground truth of the video, even without overlap
    assert map_at_tiou([("v", 40, 50, 1.0)], GT, [0.0, 0.1])[0.0] == pytest.approx(50.0)


def test_zero_length_segments():
    assert temporal_iou(3.0, 3.0, 3.0, 3.0) == 0.0
    gt = [("v", 3, 3), ("v", 0, 10)]
    got = map_at_tiou([("v", 3, 3, 0.9), ("v", 7, 7, 0.8)], gt, [0.5])
    assert got[0.5] == 0.0


def test_extra_fields_ids_and_tensors():
    torch = pytest.importorskip("torch")
    gt = [(7, 0.0, 10.0, "Fighting"), (("cam", 2), 5.0, 8.0, "Arson")]
    preds = [(7, 1.0, 10.0, 0.9, "Fighting"), (("cam", 2), 5.0, 8.0, 0.8, "Arson")]
    want = map_at_tiou([r[:4] for r in preds], [r[:3] for r in gt], [0.5])
    assert map_at_tiou(preds, gt, [0.5]) == want == {0.5: 100.0, "average": 100.0}
    as_tensors = [(v, torch.tensor(s), torch.tensor(e), torch.tensor(p)) for v, s, e, p, _ in preds]
    assert map_at_tiou(as_tensors, gt, np.array([0.5])) == want


def test_interpolated_ap_by_hand():
    # precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3 (3 ground truth) -> 1/3 + 1/3 * 2/3
    assert interpolated_ap(np.array([[1, 0, 1, 0]], bool), 3)[0] == pytest.approx(1 / 3 + 2 / 9, abs=1e-15)
    assert interpolated_ap(np.zeros((2, 0), bool), 3).tolist() == [0.0, 0.0]
    with pytest.raises(MetricInputError, match="npos"):
        interpolated_ap(np.ones((1, 2), bool), 0)


def random_case(rng, n_videos, n_gt_max, n_pred_max):
    gt, preds = [], []
    for v in range(n_videos):
        duration = float(rng.integers(10, 120))
        segments = []
        for _ in range(rng.integers(0, n_gt_max + 1)):  # some videos without ground truth
            s = float(rng.integers(0, int(duration) - 2))
            segments.append((s, s + float(rng.integers(1, 20))))
        if segments and rng.random() < 0.3:
            segments.append(segments[0])  # duplicated ground truth: ties in tIoU
        if rng.random() < 0.4:  # adjacent halves: a prediction over both ties, and which it takes matters
            a, half = float(rng.integers(0, 50)), float(rng.integers(1, 10))
            segments[len(segments) // 2 : len(segments) // 2] = [(a + half, a + 2 * half), (a, a + half)]
            preds.append((f"v{v}", a, a + 2 * half, float(np.round(rng.random(), 1))))
            preds.append((f"v{v}", a + half * float(rng.integers(0, 2)), a + half * float(rng.integers(1, 3)), 0.0))
        gt += [(f"v{v}", s, e) for s, e in segments]
        for _ in range(rng.integers(0, n_pred_max + 1)):
            if segments and rng.random() < 0.6:  # near a ground truth, integer or jittered ends
                s, e = segments[rng.integers(len(segments))]
                jitter = rng.integers(-3, 4, 2) if rng.random() < 0.5 else rng.normal(0, 2, 2)
                s, e = sorted((s + float(jitter[0]), e + float(jitter[1])))
            else:
                s = float(rng.uniform(0, duration))
                s, e = s, s + float(rng.exponential(8))
            preds.append((f"v{v}", s, e, float(np.round(rng.random(), 1))))  # many tied scores
    preds += [("no-gt", 0.0, 5.0, float(np.round(rng.random(), 1))) for _ in range(rng.integers(0, 4))]
    return preds, gt


@pytest.mark.parametrize("seed", range(12))
def test_random_against_the_reference_loop(seed, anet):
    rng = np.random.default_rng(seed)
    preds, gt = random_case(rng, n_videos=int(rng.integers(1, 15)), n_gt_max=4, n_pred_max=int(rng.integers(1, 30)))
    if not gt:
        gt = [("v0", 0.0, 5.0)]
    thresholds = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.95, 1.0]
    got, want = map_at_tiou(preds, gt, thresholds), anet.reference_map(preds, gt, thresholds)
    assert list(got) == list(want)
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-12, (key, got[key], want[key])
    # with the kit's numpy sums, the very same floats
    assert got == anet.reference_map(preds, gt, thresholds, kit_sums=True)


def test_random_large_against_the_reference_loop(anet):
    rng = np.random.default_rng(123)
    preds, gt = random_case(rng, n_videos=60, n_gt_max=6, n_pred_max=80)
    thresholds = np.linspace(0.1, 0.9, 9)
    got, want = map_at_tiou(preds, gt, thresholds), anet.reference_map(preds, gt, thresholds)
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-12
    assert got == anet.reference_map(preds, gt, thresholds, kit_sums=True)
    assert 0 < got["average"] < 100  # a case where matching matters


def test_pair_blocks_give_the_same_answer(anet, monkeypatch):
    from uprm.metrics import detection

    rng = np.random.default_rng(5)
    preds, gt = random_case(rng, n_videos=8, n_gt_max=5, n_pred_max=40)
    want = map_at_tiou(preds, gt, [0.3, 0.5])
    monkeypatch.setattr(detection, "_PAIR_BLOCK", 7)  # many small blocks
    assert map_at_tiou(preds, gt, [0.3, 0.5]) == want == anet.reference_map(preds, gt, [0.3, 0.5], kit_sums=True)


@pytest.mark.parametrize(
    ("preds", "gt", "thresholds", "message"),
    [
        ([("v", 0, 1)], GT, [0.5], r"predictions\[0\]: expected \(video_id, start, end, score\)"),
        ([("v", 0, 1, 0.5)], [("v", 0)], [0.5], r"ground_truth\[0\]: expected \(video_id, start, end\)"),
        ([("v", 2, 1, 0.5)], GT, [0.5], r"predictions\[0\]: end 1.0 is before start 2.0"),
        ([("v", 0, 1, 0.5)], [("v", 0, 10), ("v", 9, 8)], [0.5], r"ground_truth\[1\]: end"),
        ([("v", 0, math.nan, 0.5)], GT, [0.5], "finite"),
        ([("v", 0, 1, 0.5), ("v", 0, 1, math.nan)], GT, [0.5], "NaN score at index 1"),
        ([("v", 0, "x", 0.5)], GT, [0.5], r"predictions\[0\]: end must be a number"),
        ([(["v"], 0, 1, 0.5)], GT, [0.5], "hashable"),
        ([("v", 0, 1, 0.5)], GT, [], "at least one"),
        ([("v", 0, 1, 0.5)], GT, [0.5, 1.5], r"\[0, 1\]"),
        ([("v", 0, 1, 0.5)], GT, [0.5, 0.5], "repeated"),
        (["v01"], GT, [0.5], r"predictions\[0\]: expected"),
        ([("v", 0, 1, 0.5)], [("v", 0, 10), "v01"], [0.5], r"ground_truth\[1\]: expected"),
        ([{"video_id": "v", "start": 0, "end": 1, "score": 0.5}], GT, [0.5], r"predictions\[0\]: expected"),
        ([("v", 0, 1, 0.5), 7], GT, [0.5], r"predictions\[1\]: expected"),
    ],
)
def test_bad_input(preds, gt, thresholds, message):
    with pytest.raises(MetricInputError, match=message):
        map_at_tiou(preds, gt, thresholds)
