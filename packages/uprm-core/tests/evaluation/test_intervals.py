"""The per-video units of a report recompute its metrics exactly; intervals and paired
comparisons built on them (uprm.evaluation.intervals)."""

from __future__ import annotations

import numpy as np
import pytest

from uprm.evaluation.errors import EvaluationError
from uprm.evaluation.intervals import VideoUnits, compare_units, nest
from uprm.evaluation.scoring import ScoreInputs, score
from uprm.evaluation.truth import VideoTruth
from uprm.metrics import Bootstrap

CATS = ("Fighting", "Arson", "Normal")


def world(seed: int = 0, videos: int = 24, quality: float = 0.7):
    """Ground truth, predictions and attribute answers of a made-up system; the ground
    truth depends on ``seed`` only (not on ``quality``), so two systems can be paired."""
    rng, truth_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    truth, preds, texts, text_videos = {}, [], [], []
    for i in range(videos):
        vid, cat = f"v{i:02d}", CATS[i % 3]
        segs = [] if cat == "Normal" else [(float(truth_rng.integers(0, 8)), float(truth_rng.integers(10, 20)))]
        truth[vid] = VideoTruth(vid, duration=20.0, segments=segs, category=cat)
        for s, e in segs:
            if rng.random() < quality:
                preds.append((vid, s + float(rng.integers(-2, 3)), e + float(rng.integers(-2, 3)), float(rng.random())))
            texts.append(("a man sets fire to a car" if rng.random() < quality else "people walk by",
                          "a man sets fire to a parked car"))
            text_videos.append(vid)
        if rng.random() > quality:
            preds.append((vid, 1.0, 4.0, float(rng.random())))
    return truth, preds, texts, text_videos


def inputs(seed=0, quality=0.7, spec=None, **kw):
    truth, preds, texts, tv = world(seed, quality=quality)
    return ScoreInputs(truth, preds, (0.1, 0.3, 0.5), texts=texts, text_videos=tv, sbert=False, bootstrap=spec, **kw)


def test_the_units_of_all_videos_give_the_reports_own_numbers():
    inp = inputs()
    report = score(inp)
    flat = inp.units.statistic(np.arange(len(inp.units)))
    assert flat["fnr"] == pytest.approx(report["fnr"]) and flat["f2"] == pytest.approx(report["f2"])
    for k, v in report["map"].items():
        assert flat[f"map/{k}"] == pytest.approx(v)
    assert flat["rouge_l"] == pytest.approx(report["rouge_l"]) and flat["bleu4"] == pytest.approx(report["bleu4"])
    for cat, row in report["per_category"].items():
        for m in ("fnr", "f2"):
            assert flat[f"per_category/{cat}/{m}"] == (None if row[m] is None else pytest.approx(row[m]))


def test_a_video_drawn_twice_counts_twice_in_every_metric():
    inp = inputs()
    score(inp)
    u = inp.units
    twice = u.statistic(np.concatenate([np.arange(len(u)), np.arange(len(u))]))
    once = u.statistic(np.arange(len(u)))
    for key in ("fnr", "f2", "map/0.1", "map/average", "rouge_l"):  # doubling every video changes no ratio
        assert twice[key] == pytest.approx(once[key])
    # the first video alone: its own numbers
    first = next(i for i, c in enumerate(u.categories) if c != "Normal")
    tp, fn, _ = u.counts[first]
    assert u.statistic(np.array([first, first]))["fnr"] == pytest.approx(100 * fn / (tp + fn))


def test_the_report_gets_intervals_nested_like_its_numbers():
    inp = inputs(spec=Bootstrap(samples=200, seed=3))
    report = score(inp)
    assert report["bootstrap"] == {"samples": 200, "seed": 3, "confidence": 0.95, "unit": "video"}
    ci = report["ci"]
    for key in ("fnr", "f2", "rouge_l", "bleu4"):
        low, high = ci[key]
        assert low <= report[key] <= high and low < high
    assert set(ci["map"]) == set(report["map"]) and ci["map"]["average"][0] <= report["map"]["average"]
    assert ci["per_category"]["Normal"]["fnr"] is None  # no threat second: undefined on every resample
    assert ci["sbert"] is None  # not scored


def test_no_bootstrap_no_interval():
    assert "ci" not in score(inputs(spec=Bootstrap(samples=0)))
    assert "ci" not in score(inputs())


def test_units_round_trip_through_their_file(tmp_path):
    inp = inputs()
    score(inp)
    path = inp.units.write(tmp_path / "videos.json")
    back = VideoUnits.read(tmp_path)
    assert back.videos == inp.units.videos and back.thresholds == inp.units.thresholds
    everything = np.arange(len(back))
    assert back.statistic(everything) == pytest.approx(inp.units.statistic(everything))
    path.write_text("{not json")
    with pytest.raises(EvaluationError, match=r"videos\.json"):
        VideoUnits.read(path)


def test_a_better_system_is_found_better_paired_by_video():
    good, bad = inputs(seed=1, quality=0.95), inputs(seed=1, quality=0.3)
    score(good), score(bad)
    result = compare_units(good.units, bad.units, Bootstrap(samples=200, seed=0))
    f2 = result["f2"]
    assert f2.delta == pytest.approx(f2.a - f2.b) and f2.delta > 0
    assert f2.excludes_zero and f2.p < 0.05


def test_unpaired_evaluations_are_refused_naming_the_videos():
    a, b = inputs(seed=1), inputs(seed=1)
    score(a), score(b)
    fewer = b.units.select(list(range(2, len(b.units))))
    with pytest.raises(EvaluationError, match=r"only in A: v00, v01; only in B: none"):
        compare_units(a.units, fewer, Bootstrap(samples=10))


def test_the_comparison_does_not_depend_on_the_order_of_the_videos():
    a, b = inputs(seed=2, quality=0.9), inputs(seed=2, quality=0.5)
    score(a), score(b)
    shuffled = b.units.select(list(reversed(range(len(b.units)))))
    spec = Bootstrap(samples=50, seed=1)
    assert compare_units(a.units, shuffled, spec)["f2"].ci == compare_units(a.units, b.units, spec)["f2"].ci


def test_nest():
    assert nest({"fnr": 1, "map/0.1": 2, "per_category/Arson/fnr": 3}) == {
        "fnr": 1, "map": {"0.1": 2}, "per_category": {"Arson": {"fnr": 3}}}


def test_tied_scores_rank_as_the_report_ranked_them():
    # always-yes: every video predicted whole with score 1, the file not in ground-truth order
    truth = {v: VideoTruth(v, duration=10.0, segments=segs, category="Fighting" if segs else "Normal")
             for v, segs in (("a", [(0.0, 10.0)]), ("b", []), ("c", [(0.0, 10.0)]))}
    preds = [("b", 0.0, 10.0, 1.0), ("c", 0.0, 10.0, 1.0), ("a", 0.0, 10.0, 1.0)]
    inp = ScoreInputs(truth, preds, (0.5,), sbert=False)
    report = score(inp)
    flat = inp.units.statistic(np.arange(len(inp.units)))
    # ranked b (false alarm), c, a: precision 1/2 and 2/3 at recall 1/2 and 1, made monotone: 2/3 at both
    assert report["map"]["average"] == pytest.approx(100 * 2 / 3)
    assert flat["map/average"] == pytest.approx(report["map"]["average"])
