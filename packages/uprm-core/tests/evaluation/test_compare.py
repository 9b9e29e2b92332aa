"""`uprm eval compare EVAL_A EVAL_B` / `uprm.evaluation.compare`: two evaluations of the
same ground truth paired by video; the numbers against plain-loop recomputations, the
refusals naming what differs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ._reference import counts, per_second
from .conftest import invoke
from .test_scoring import write_gt, write_predictions

#: 20 videos of 20 s: threats in 15 (two categories), 5 normal ones
GT = {f"v{i:02d}": (20.0, ("Fighting", "Arson", "Normal", "Fighting")[i % 4],
                    [] if i % 4 == 2 else [(float(i % 5), float(10 + i % 7))]) for i in range(20)}
#: A finds most threats (missing a few seconds), B finds a short piece of a few
GOOD = [(v, s + 1.0, e, 0.9) for v, (_, _, segs) in GT.items() for s, e in segs]
WEAK = [(v, s, s + 2.0, 0.4) for i, (v, (_, _, segs)) in enumerate(GT.items()) for s, e in segs if i % 3 == 0]


def evaluation(tmp_path, name, rows, gt=GT, **options):
    from uprm.evaluation import score_predictions

    folder = tmp_path / name
    gt_file = write_gt(tmp_path / f"gt-{name}.json", gt)
    score_predictions(write_predictions(tmp_path / f"{name}.json", rows), gt_file, folder, sbert=False,
                      bootstrap=0, system=name, **options)
    return folder


def plain_fnr(rows, videos):
    """FNR (%) of ``rows`` over ``videos`` (repeats count) by plain loops."""
    tp = fn = 0
    for v in videos:
        d, _, segs = GT[v]
        t, f, _ = counts(per_second(segs, d), per_second([(s, e) for u, s, e, _ in rows if u == v], d))
        tp, fn = tp + t, fn + f
    return 100.0 * fn / (tp + fn) if tp + fn else None


def test_each_metric_gets_a_b_delta_interval_and_p(tmp_path):
    from uprm.evaluation import compare

    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK)
    out = tmp_path / "cmp"
    result = compare(a, b, out, bootstrap=300, seed=2)
    saved = json.loads((out / "comparison.json").read_text())
    assert saved == result
    assert result["a"] == {"system": "good", "folder": str(a)} and result["b"]["system"] == "weak"
    assert result["videos"] == 20 and result["bootstrap"]["samples"] == 300 and result["bootstrap"]["seed"] == 2
    fnr = result["metrics"]["fnr"]
    assert set(fnr) == {"a", "b", "delta", "ci", "p"}
    assert fnr["a"] == pytest.approx(plain_fnr(GOOD, GT)) and fnr["b"] == pytest.approx(plain_fnr(WEAK, GT))
    assert fnr["delta"] == pytest.approx(fnr["a"] - fnr["b"], abs=1e-5)
    # the interval by plain loops: the same draws of videos for both systems
    videos = [row["video_id"] for row in json.loads((a / "videos.json").read_text())["videos"]]
    rng = np.random.default_rng(2)
    deltas = []
    for _ in range(300):
        drawn = [videos[i] for i in rng.integers(0, 20, 20)]
        deltas.append(plain_fnr(GOOD, drawn) - plain_fnr(WEAK, drawn))
    assert fnr["ci"] == pytest.approx(list(np.quantile(deltas, [0.025, 0.975])), abs=1e-5)
    assert fnr["ci"][1] < 0 and fnr["p"] < 0.01  # A misses far fewer threat seconds, on any draw of videos
    report_a = json.loads((a / "report.json").read_text())
    assert result["metrics"]["map"].keys() == report_a["map"].keys()
    assert result["metrics"]["map"]["average"]["a"] == pytest.approx(report_a["map"]["average"], abs=1e-5)
    assert set(result["metrics"]["per_category"]) == {"Arson", "Fighting", "Normal"}
    assert result["metrics"]["per_category"]["Normal"]["fnr"]["ci"] is None  # no threat second
    assert result["metrics"]["rouge_l"] == {"a": None, "b": None, "delta": None, "ci": None, "p": None}


def test_a_system_against_itself_differs_by_nothing(tmp_path):
    from uprm.evaluation import compare

    a, b = evaluation(tmp_path, "one", GOOD), evaluation(tmp_path, "two", GOOD)
    f2 = compare(a, b, bootstrap=100)["metrics"]["f2"]
    assert f2["delta"] == 0 and f2["ci"] == [0, 0] and f2["p"] == 1.0


def test_the_markdown_table_marks_the_deltas_whose_interval_excludes_zero(tmp_path):
    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK)
    result = invoke("eval", "compare", a, b, "--out", tmp_path / "cmp", "--bootstrap", 200, "--bootstrap-seed", 1,
                    "--names", "UPRM,baseline")
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert md in result.output  # printed too
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["a"]["system"] == "UPRM" and saved["b"]["system"] == "baseline"
    assert "| Metric | UPRM | baseline | Δ = UPRM − baseline [95 % CI] | p |" in md
    fnr = saved["metrics"]["fnr"]
    row = next(line for line in md.splitlines() if line.startswith("| FNR↓ (%) |"))
    assert row == (f"| FNR↓ (%) | {fnr['a']:.1f} | {fnr['b']:.1f} | {fnr['delta']:+.1f} [{fnr['ci'][0]:+.1f}, "
                   f"{fnr['ci'][1]:+.1f}] * | {fnr['p']:.3f} |")
    normal = next(line for line in md.splitlines() if line.startswith("| F2 (%) Normal |"))
    assert "*" not in normal  # both systems: no true positive in normal videos, F2 0 on every draw
    assert "200 resamples" in md and "permutation" in md


def test_videos_only_one_evaluation_scored_are_named(tmp_path):
    from uprm.evaluation import EvaluationError, compare

    fewer = {v: x for v, x in GT.items() if v not in ("v03", "v07")}
    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", [r for r in WEAK if r[0] in fewer], fewer)
    with pytest.raises(EvaluationError, match=r"only in good: v03, v07; only in weak: none"):
        compare(a, b, bootstrap=10)
    result = invoke("eval", "compare", a, b, ok=False)
    assert result.exit_code == 1 and "only in good: v03, v07" in result.output


def test_another_ground_truth_is_refused_naming_the_videos(tmp_path):
    from uprm.evaluation import EvaluationError, compare

    moved = dict(GT)
    moved["v05"] = (20.0, GT["v05"][1], [(0.0, 3.0)])
    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK, moved)
    with pytest.raises(EvaluationError, match=r"different ground truth .* 1 video\(s\): v05"):
        compare(a, b, bootstrap=10)


@pytest.mark.parametrize(("options", "message"), [({"thresholds": "0.3,0.5"}, r"tIoU thresholds"),
                                                  ({"rate": 2.0}, r"samples per second")])
def test_other_thresholds_or_rate_are_refused(tmp_path, options, message):
    from uprm.evaluation import EvaluationError, compare

    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK, **options)
    with pytest.raises(EvaluationError, match=message):
        compare(a, b, bootstrap=10)


def test_a_folder_without_units_or_report_is_named(tmp_path):
    from uprm.evaluation import EvaluationError, compare

    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK)
    (b / "videos.json").unlink()
    with pytest.raises(EvaluationError, match=rf"{b / 'videos.json'}: no per-video units"):
        compare(a, b)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match=r"empty: no report\.json"):
        compare(a, tmp_path / "empty")


@pytest.mark.parametrize("names", ["one", "x,x", ["a", "b", "c"], "a,"])
def test_bad_names_are_refused(tmp_path, names):
    from uprm.evaluation import EvaluationError, compare

    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK)
    with pytest.raises(EvaluationError, match=r"^names: "):
        compare(a, b, names=names, bootstrap=0)


def test_bootstrap_zero_gives_the_deltas_alone(tmp_path):
    from uprm.evaluation import compare

    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK)
    result = compare(a, b, tmp_path / "cmp", bootstrap=0)
    assert result["metrics"]["f2"]["ci"] is None and result["metrics"]["f2"]["p"] is None
    assert result["metrics"]["f2"]["delta"] is not None
    assert "No intervals" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_other_durations_are_refused(tmp_path):
    from uprm.evaluation import EvaluationError, compare

    longer = dict(GT)
    longer["v04"] = (25.0, *GT["v04"][1:])
    a, b = evaluation(tmp_path, "good", GOOD), evaluation(tmp_path, "weak", WEAK, longer)
    with pytest.raises(EvaluationError, match=r"good counted 400 samples .* weak 405: the videos' durations differ"):
        compare(a, b, bootstrap=10)
