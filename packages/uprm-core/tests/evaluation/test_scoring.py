"""Scoring given predictions without a model (`uprm eval --predictions … --ground-truth …`)
on hand-made ActivityNet files whose numbers are known by hand, each also checked against
an independent plain-loop computation (_reference.py)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from ._reference import activitynet_ap, average_precision, fnr_f2, per_second, roc_auc
from .conftest import invoke

#: video -> (duration, category, threat segments)
GT = {
    "v1": (10.0, "Fighting", [(2.0, 6.0)]),
    "v2": (8.0, "Arson", [(1.0, 3.0), (5.0, 7.0)]),
    "v3": (5.0, "Normal", []),  # an all-negative video
    "v4": (0.4, "Fighting", [(0.0, 0.4)]),  # a one-sample (one-frame) video
}
THRESHOLDS = (0.1, 0.2, 0.3)


def write_gt(path, gt=GT):
    database = {v: {"duration": d, "subset": "testing",
                    "annotations": [{"segment": list(s), "label": c} for s in segs]} for v, (d, c, segs) in gt.items()}
    path.write_text(json.dumps({"version": "test", "database": database}))
    return path


def write_predictions(path, rows):
    results: dict = {}
    for vid, s, e, score in rows:
        results.setdefault(vid, []).append({"segment": [s, e], "score": score, "label": "Anomaly"})
    path.write_text(json.dumps({"version": "test", "results": results}))
    return path


def expected(rows, gt=GT, rate=1.0, thresholds=THRESHOLDS):
    """The report's numbers by plain loops (videos without ground truth left out)."""
    truth, pred, scores, by_cat = [], [], [], {}
    for vid, (d, cat, segs) in gt.items():
        mine = [r for r in rows if r[0] == vid]
        t, p = per_second(segs, d, rate), per_second([(r[1], r[2]) for r in mine], d, rate)
        centres = [(i / rate + min((i + 1) / rate, d)) / 2 for i in range(len(t))]
        s = [max([r[3] for r in mine if r[1] <= c < r[2]], default=0.0) for c in centres]
        truth, pred, scores = truth + t, pred + p, scores + s
        by_cat.setdefault(cat, ([], []))
        by_cat[cat][0].extend(t)
        by_cat[cat][1].extend(p)
    gt_rows = [(v, s, e) for v, (_, _, segs) in gt.items() for s, e in segs]
    aps = {f"{t:g}": activitynet_ap(rows, gt_rows, t) for t in thresholds}
    aps["average"] = sum(aps.values()) / len(thresholds)
    fnr, f2 = fnr_f2(truth, pred)
    return {"fnr": fnr, "f2": f2, "map": aps, "frame_roc_auc": roc_auc(truth, scores),
            "frame_ap": average_precision(truth, scores),
            "per_category": {c: fnr_f2(t, p)[0] for c, (t, p) in by_cat.items()}}


def check(report, want):
    def same(a, b):
        return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))

    for key in ("fnr", "f2", "frame_roc_auc", "frame_ap"):
        assert same(report[key], want[key]), (key, report[key], want[key])
    assert report["map"].keys() == want["map"].keys()
    for key, value in want["map"].items():
        assert same(report["map"][key], value), (key, report["map"][key], value)
    for cat, value in want["per_category"].items():
        assert same(report["per_category"][cat]["fnr"], value), (cat, report["per_category"][cat], value)


@pytest.fixture
def gt_file(tmp_path):
    return write_gt(tmp_path / "gt.json")


def score(tmp_path, gt_file, rows, **options):
    from uprm.evaluation import score_predictions

    return score_predictions(write_predictions(tmp_path / "predictions.json", rows), gt_file, sbert=False,
                             **options)


PERFECT = [(v, s, e, 1.0) for v, (_, _, segs) in GT.items() for s, e in segs]
ALWAYS_YES = [(v, 0.0, d, 1.0) for v, (d, _, _) in GT.items()]


def test_a_perfect_system(tmp_path, gt_file):
    report = score(tmp_path, gt_file, PERFECT)
    assert report["fnr"] == 0 and report["f2"] == 100
    assert report["map"] == {"0.1": 100.0, "0.2": 100.0, "0.3": 100.0, "average": 100.0}
    assert report["frame_roc_auc"] == 100 and report["frame_ap"] == 100
    assert report["video"]["fnr"] == 0 and report["video"]["f2"] == 100 and report["video"]["tn"] == 1
    assert report["per_category"]["Normal"]["fnr"] is None  # no threat second: FNR is 0/0
    check(report, expected(PERFECT))


def test_an_always_yes_whole_video_system(tmp_path, gt_file):
    report = score(tmp_path, gt_file, ALWAYS_YES)
    # 9 threat seconds of 24, all flagged: TP 9, FN 0, FP 15 -> F2 = 45 / 60
    assert report["fnr"] == 0 and report["f2"] == pytest.approx(75.0)
    # tIoU: v1 0.4, v2 0.25 with either segment, v3 no truth, v4 1 -> by hand
    assert report["map"]["0.1"] == pytest.approx(68.75) and report["map"]["0.2"] == pytest.approx(68.75)
    assert report["map"]["0.3"] == pytest.approx(37.5)
    assert report["map"]["average"] == pytest.approx((68.75 * 2 + 37.5) / 3)
    assert report["frame_roc_auc"] == pytest.approx(50.0) and report["frame_ap"] == pytest.approx(37.5)
    assert report["per_category"]["Normal"] == {"fnr": None, "f2": 0.0, "videos": 1, "positive_samples": 0}
    assert report["video"]["fp"] == 1 and report["video"]["f2"] == pytest.approx(100 * 15 / 16)
    check(report, expected(ALWAYS_YES))


def test_empty_predictions(tmp_path, gt_file):
    report = score(tmp_path, gt_file, [])
    assert report["fnr"] == 100 and report["f2"] == 0
    assert report["map"] == {"0.1": 0.0, "0.2": 0.0, "0.3": 0.0, "average": 0.0}
    assert report["video"]["fnr"] == 100 and report["counts"]["predicted_segments"] == 0
    check(report, expected([]))


def test_an_all_negative_video_counts_false_alarms_but_no_fnr(tmp_path, gt_file):
    rows = [*PERFECT, ("v3", 0.0, 5.0, 0.5)]
    report = score(tmp_path, gt_file, rows)
    assert report["fnr"] == 0 and report["f2"] == pytest.approx(100 * 45 / 50)
    assert report["per_category"]["Normal"]["fnr"] is None and report["per_category"]["Normal"]["f2"] == 0
    assert report["map"]["average"] == 100  # the false alarm ranks last
    check(report, expected(rows))


def test_a_one_frame_video(tmp_path, gt_file):
    rows = [*PERFECT[:-1], ("v4", 0.3, 0.4, 1.0)]  # misses v4's only sample (centre 0.2)
    report = score(tmp_path, gt_file, rows)
    assert report["counts"]["samples"] == 10 + 8 + 5 + 1
    assert report["fnr"] == pytest.approx(100 / 9)
    check(report, expected(rows))
    # at 10 samples per second v4 has 4 samples; the prediction covers the last one
    fine = score(tmp_path, gt_file, rows, rate=10)
    assert fine["counts"]["samples"] == 100 + 80 + 50 + 4
    assert fine["per_category"]["Fighting"]["fnr"] == pytest.approx(100 * 3 / 44)
    check(fine, expected(rows, rate=10))


def test_ties_keep_the_order_of_the_file(tmp_path, gt_file):
    wrong_first = [("v1", 0.0, 1.0, 0.5), ("v1", 2.0, 6.0, 0.5)]
    right_first = wrong_first[::-1]
    a, b = score(tmp_path, gt_file, wrong_first), score(tmp_path, gt_file, right_first)
    assert a["map"]["0.1"] == pytest.approx(12.5) and b["map"]["0.1"] == pytest.approx(25.0)
    check(a, expected(wrong_first))
    check(b, expected(right_first))


def test_a_video_without_ground_truth(tmp_path, gt_file):
    from uprm.evaluation import EvaluationError

    rows = [*PERFECT, ("v9", 0.0, 4.0, 2.0)]
    with pytest.raises(EvaluationError, match=r"predictions\.json: .*v9.*--extra-videos"):
        score(tmp_path, gt_file, rows)
    ignored = score(tmp_path, gt_file, rows, extra_videos="ignore")
    assert ignored["map"]["average"] == 100 and ignored["f2"] == 100 and "v9" in ignored["notes"][0]
    counted = score(tmp_path, gt_file, rows, extra_videos="false-positive")
    # the false alarm ranks first: precision 4/5 at every recall -> AP 80
    assert counted["map"] == pytest.approx({"0.1": 80.0, "0.2": 80.0, "0.3": 80.0, "average": 80.0})
    # its duration is taken from its segment's end (4 s): 4 false-alarm seconds
    assert counted["fnr"] == 0 and counted["f2"] == pytest.approx(100 * 45 / 49)
    assert counted["counts"]["videos"] == 5 and any("v9" in n for n in counted["notes"])


def test_the_cli_writes_the_report_files(tmp_path, gt_file):
    (tmp_path / "system").mkdir()
    preds = write_predictions(tmp_path / "system" / "predictions.json", ALWAYS_YES)
    out = tmp_path / "scored"
    result = invoke("eval", "--predictions", preds, "--ground-truth", gt_file, "--out", out, "--format", "json",
                    "--no-sbert", "--dataset", "cuva")
    report = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    assert json.loads((out / "report.json").read_text()) == report
    assert report["system"] == "system" and list(report["map"]) == ["0.1", "0.3", "0.5", "average"]
    row = next(csv.DictReader((out / "report.csv").open()))
    assert float(row["f2"]) == pytest.approx(75.0) and row["approach"] == "system"
    assert float(row["fnr/Fighting"]) == 0 and row["fnr/Normal"] == ""
    md = (out / "report.md").read_text()
    assert "| Approach | FNRs↓ | F2 | mAP@0.1 | mAP@0.3 | mAP@0.5 | Average | SB | Rouge | BLEU |" in md
    assert "| system | 0.0 [0.0, 0.0] | 75.0 [" in md  # with its interval (a bootstrap over videos by default)
    assert not (out / "expert_weights.png").exists()  # no router without a model


@pytest.mark.parametrize(("content", "message"), [
    ({"database": {}}, r"expected an object with a 'results' object"),
    ([], r"expected an object with a 'results' object"),
    ({"results": {"v1": {"segment": [1, 2]}}}, r"results\.v1: expected a list of detections"),
    ({"results": {"v1": [{"segment": [3, 2], "score": 1}]}}, r"results\.v1: segment \[3\.0, 2\.0\]"),
    ({"results": {"v1": [{"segment": [1, 2], "score": "high"}]}}, r"results\.v1\[0\]: 'score' must be a number"),
])
def test_a_predictions_file_not_in_the_results_layout_is_named(tmp_path, gt_file, content, message):
    from uprm.evaluation import EvaluationError, score_predictions

    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(EvaluationError, match=message) as info:
        score_predictions(path, gt_file, sbert=False)
    assert str(path) in str(info.value)
    result = invoke("eval", "--predictions", path, "--ground-truth", gt_file, ok=False)
    assert result.exit_code == 1 and str(path) in result.output


def test_bad_ground_truth_and_missing_files_are_named(tmp_path, gt_file):
    from uprm.evaluation import EvaluationError, score_predictions

    preds = write_predictions(tmp_path / "p.json", PERFECT)
    weird = tmp_path / "weird.json"
    weird.write_text(json.dumps({"videos": {}}))
    with pytest.raises(EvaluationError, match=r"weird\.json: neither ActivityNet ground truth"):
        score_predictions(preds, weird)
    with pytest.raises(EvaluationError, match=r"missing\.json: no such predictions file"):
        score_predictions(tmp_path / "missing.json", gt_file)
    with pytest.raises(EvaluationError, match=r"gt\.json: no video of split 'train'"):
        score_predictions(preds, gt_file, split="train")
    assert invoke("eval", "--predictions", preds, ok=False).exit_code == 2  # no ground truth: a usage error
