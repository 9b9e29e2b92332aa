"""`uprm demo` (what `make demo` runs): the quick pipeline end to end, the always-yes
row, the explanations scored, and the printed table. The full demo takes minutes and
is measured by benchmarks/demo.py (benchmarks/demo_sizing.md), not here."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.demo import QUICK, ROW_KEYS, always_yes, explanations, format_table
from uprm.demo.scoring import score_detections
from uprm.evaluation.truth import VideoTruth

MODELS = ["untrained", "always", "coarse", "uprm"]


@pytest.mark.slow
def test_quick_demo_writes_results_timelines_and_prints_the_table(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in doc["rows"]] == MODELS
    for row in doc["rows"]:
        assert set(ROW_KEYS) <= set(row)
        assert set(row["map"]) == {"0.1", "0.2", "0.3", "average"}
    assert isinstance(doc["seconds"], float) and doc["seconds"] > 0
    assert set(doc["stages"]) == {"world", "windows", "features", "train", "train coarse", "train uprm", "detect",
                                  "score"}
    rows = {r["model"]: r for r in doc["rows"]}
    # every row's FNR, F2 and mAP average with its 95 % interval around it
    assert doc["bootstrap"] == {"samples": QUICK.bootstrap, "seed": 0, "confidence": 0.95, "unit": "video"}
    for row in doc["rows"]:
        assert set(row["ci"]) == {"fnr", "f2", "map"}
        for key, value in (("fnr", row["fnr"]), ("f2", row["f2"]), ("map", row["map"]["average"])):
            low, high = row["ci"][key]
            assert low <= value <= high, (row["model"], key)
    # UPRM against each other row, paired by video, and the printed verdict of each
    assert [(c["a"], c["b"]) for c in doc["comparisons"]] == [("uprm", "untrained"), ("uprm", "always"),
                                                              ("uprm", "coarse")]
    for comparison in doc["comparisons"]:
        assert comparison["videos"] == len([v for v in json.loads((out / "world" / "world.json").read_text())["videos"]
                                            if v["split"] == "test"])
        other = rows[comparison["b"]]
        for key in ("fnr", "f2", "map"):
            m = comparison["metrics"][key]
            theirs = other["map"]["average"] if key == "map" else other[key]
            assert m["b"] == pytest.approx(theirs) and m["delta"] == pytest.approx(m["a"] - m["b"])
            assert m["ci"] is not None and m["p"] is not None and m["p_holm"] >= m["p"]
            assert comparison["verdicts"][key] in result.output
    # the coarse model trained in the second process is the one this process would have trained
    assert doc["training"]["coarse"]["run"] == str(out / "runs" / "coarse")
    assert doc["stages"]["train coarse"]["cpu_seconds"] > 0
    assert rows["always"]["fnr"] == 0.0 and rows["always"]["sbert"] is None and rows["always"]["rouge_l"] is None
    tests = [v for v in json.loads((out / "world" / "world.json").read_text())["videos"] if v["split"] == "test"]
    assert tests
    for model in ("untrained", "coarse", "uprm"):
        folder = out / "detections" / model
        assert (folder / "results.json").is_file()
        assert all((folder / f"{v['video_id']}.png").is_file() for v in tests)  # the timelines
        assert (out / "eval" / model / "report.json").is_file()
    for model in ("coarse", "uprm"):
        assert (out / "runs" / model / "model.safetensors").is_file()
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| Model"))
    assert "FNR" in lines[header] and "mAP avg" in lines[header] and "BLEU" in lines[header]
    assert [line.split("|")[1].strip() for line in lines[header + 2 : header + 6]] == [
        "untrained UPRM", "always yes", "coarse only (w/o UPE)", "UPRM (all experts)"]
    assert "[6/6] score" in result.output and "wrote" in lines[-1]
    assert "coarse only in a second process" in result.output
    assert f"percentile bootstrap over the {len(tests)} test videos ({QUICK.bootstrap} resamples" in result.output
    # the demo's answers are uprm eval's layout: the rating sheets take them as they are
    sheets = CliRunner().invoke(cli, ["eval", "sheets", "--answers", str(out / "eval" / "uprm" / "answers.jsonl"),
                                      "--raters", "2", "--frames", "1", "--out", str(tmp_path / "sheets")])
    assert sheets.exit_code == 0, sheets.output
    assert (tmp_path / "sheets" / "rater2.csv").is_file()
    # training side by side changes nothing: coarse-only trained here again is the same model, weight for weight
    import torch
    from safetensors.torch import load_file

    from uprm.demo.models import train_config, train_model

    config = train_config("coarse", QUICK, out / "data" / "demo_train.json", out / "cache", tmp_path / "again", 0)
    steps = []
    again, _ = train_model(config, lambda text: None, 1, on_step=lambda: steps.append(1))
    assert len(steps) == QUICK.steps  # on_step after every step: where the other process's lines are relayed
    here, there = load_file(again / "model.safetensors"), load_file(out / "runs" / "coarse" / "model.safetensors")
    assert sorted(here) == sorted(there) and all(torch.equal(here[k], there[k]) for k in here)


def test_always_yes_is_every_window_merged_as_detect_merges():
    segments = always_yes({"long": 10.0, "short": 3.0}, QUICK.replace(window=4.0, stride=2.0, num_frames=4))
    # windows (0,4) (2,6) (4,8) (6,10) overlap and merge; a video shorter than a window is one window
    assert segments == {"long": [{"segment": [0.0, 10.0], "score": 1.0, "cause": ""}],
                        "short": [{"segment": [0.0, 3.0], "score": 1.0, "cause": ""}]}


def test_settings_read_splits_as_a_list_and_name_a_bad_value(tmp_path):
    from uprm.demo import DemoSettings
    from uprm.errors import ConfigError

    sizes = tmp_path / "demo.yaml"
    sizes.write_text("videos: 12\nsplits: [0.5, 0.25, 0.25]\nsteps: 40\n")
    settings = DemoSettings.from_file(sizes)
    assert (settings.videos, settings.splits, settings.steps) == (12, (0.5, 0.25, 0.25), 40)
    assert QUICK.replace(splits=[0.6, 0.0, 0.4]).to_dict()["splits"] == [0.6, 0.0, 0.4]  # as benchmarks/demo.py --set
    sizes.write_text("videos: 12\nsteps: 0\n")
    with pytest.raises(ConfigError, match=r"demo\.yaml, line 2: steps: Input should be greater than or equal to 1"):
        DemoSettings.from_file(sizes)
    with pytest.raises(ConfigError, match=r"^window: Input should be a valid number \(got 'long'\)"):
        QUICK.replace(window="long")


def _ground_truth(path):
    database = {
        "Fighting001_syn": {"annotations": [{"segment": [2.0, 6.0], "label": "Fighting"}], "duration": 10.0,
                            "subset": "testing", "causes": ["two people punching each other"]},
        "Normal_Videos_001_syn": {"annotations": [], "duration": 10.0, "subset": "testing"},
        "Stealing001_syn": {"annotations": [{"segment": [1.0, 3.0], "label": "Stealing"}], "duration": 10.0,
                            "subset": "training", "causes": ["a bag snatched"]},
    }
    path.write_text(json.dumps({"version": "t", "database": database}))
    return path


def test_the_always_yes_row_pays_for_every_false_alarm(tmp_path):
    truth = _ground_truth(tmp_path / "gt.json")
    always = always_yes({"Fighting001_syn": 10.0, "Normal_Videos_001_syn": 10.0},
                        QUICK.replace(window=4.0, stride=2.0, num_frames=4))
    row = score_detections("always", always, truth, tmp_path / "always", explain=False, sbert=False)
    assert row["model"] == "always" and set(ROW_KEYS) <= set(row)
    # per second: 4 threat seconds found, 16 seconds of false alarm -> F2 = 5*4 / (5*4 + 16)
    assert row["fnr"] == 0.0 and row["f2"] == pytest.approx(100 * 20 / 36)
    assert row["sbert"] is None and row["rouge_l"] is None and row["bleu4"] is None
    # the threat's segment covers 0.4 of the video (tIoU >= 0.3); the normal video's is a false positive,
    # ranked first or second by the hash order of the ids (equal scores): AP 100 or 50 at every threshold
    assert row["map"]["average"] in (pytest.approx(100.0), pytest.approx(50.0))
    listed = list(json.loads((tmp_path / "always" / "predictions.json").read_text())["results"])
    assert row["map"]["average"] == pytest.approx(100.0 if listed[0] == "Fighting001_syn" else 50.0)
    assert row["counts"]["videos"] == 2  # only the test split


def test_a_row_carries_the_95_percent_interval_of_fnr_f2_and_map_around_its_value(tmp_path):
    truth = _two_threats(tmp_path / "gt.json")
    found = {"Fighting001_syn": [{"segment": [2.0, 6.0], "score": 0.9, "cause": "punching"}],
             "Stealing001_syn": [{"segment": [5.0, 9.0], "score": 0.4, "cause": "a bag"}],
             "Normal_Videos_001_syn": [{"segment": [3.0, 5.0], "score": 0.7, "cause": "a wave"}]}
    row = score_detections("uprm", found, truth, tmp_path / "uprm", sbert=False, bootstrap=300)
    assert set(row["ci"]) == {"fnr", "f2", "map"}
    for key, value in (("fnr", row["fnr"]), ("f2", row["f2"]), ("map", row["map"]["average"])):
        low, high = row["ci"][key]
        assert low <= value <= high and low < high, key  # the three videos disagree: a real interval
    report = json.loads((tmp_path / "uprm" / "report.json").read_text())
    assert row["ci"]["map"] == report["ci"]["map"]["average"] and report["bootstrap"]["samples"] == 300
    assert (tmp_path / "uprm" / "videos.json").is_file()  # what the paired comparisons read
    plain = score_detections("uprm", found, truth, tmp_path / "plain", sbert=False)
    assert plain["ci"] == {"fnr": None, "f2": None, "map": None} and plain["f2"] == row["f2"]


def test_a_model_row_scores_the_cause_of_the_segment_that_found_the_threat(tmp_path):
    truth = _ground_truth(tmp_path / "gt.json")
    found = {"Fighting001_syn": [{"segment": [0.0, 1.0], "score": 0.9, "cause": "a car"},
                                 {"segment": [2.0, 6.0], "score": 0.5, "cause": "two people punching each other"}]}
    row = score_detections("uprm", found, truth, tmp_path / "uprm", sbert=False)
    assert row["rouge_l"] == pytest.approx(1.0) and row["bleu4"] == pytest.approx(100.0)
    # the wrong segment ranks first (0.9), the right one second: precision 1/2 at full recall
    assert row["fnr"] == 0.0 and row["map"]["average"] == pytest.approx(50.0)
    missed = score_detections("untrained", {}, truth, tmp_path / "untrained", sbert=False)
    assert missed["fnr"] == 100.0 and missed["f2"] == 0.0 and missed["rouge_l"] == 0.0


def test_explanations_pick_the_best_overlapping_segment_and_leave_a_missed_threat_empty():
    truth = {"a": VideoTruth("a", 10.0, [(2.0, 6.0)], "Fighting", ["punching"], "test"),
             "b": VideoTruth("b", 10.0, [(1.0, 2.0)], "Arson", ["fire", "a bin"], "test"),
             "n": VideoTruth("n", 10.0, [], "Normal", [], "test")}
    found = {"a": [{"segment": [0.0, 2.5], "score": 0.99, "cause": "barely"},
                   {"segment": [2.0, 6.5], "score": 0.1, "cause": "punching"}],
             "b": [{"segment": [5.0, 9.0], "score": 0.9, "cause": "elsewhere"}]}
    lines = explanations(found, truth)
    assert [(x["video_id"], x["cause"], x["reference_cause"]) for x in lines] == [
        ("a", "punching", "punching"), ("b", "", "fire; a bin")]
    assert all(x["task"] == "attribute" for x in lines)


def _two_threats(path):
    """Three test videos: two threats and a normal one."""
    database = {
        "Fighting001_syn": {"annotations": [{"segment": [2.0, 6.0], "label": "Fighting"}], "duration": 10.0,
                            "subset": "testing", "causes": ["punching"]},
        "Stealing001_syn": {"annotations": [{"segment": [4.0, 7.0], "label": "Stealing"}], "duration": 10.0,
                            "subset": "testing", "causes": ["a bag snatched"]},
        "Normal_Videos_001_syn": {"annotations": [], "duration": 10.0, "subset": "testing"},
    }
    path.write_text(json.dumps({"version": "t", "database": database}))
    return path


def test_the_table_shows_fnr_f2_and_map_with_their_intervals():
    rows = [{"model": "uprm", "fnr": 30.0, "f2": 51.04, "map": {"0.1": 90.0, "0.3": 80.0, "average": 85.0},
             "rouge_l": 0.5, "bleu4": 12.345, "sbert": None,
             "ci": {"fnr": [12.5, 48.0], "f2": [38.24, 63.06], "map": [70.0, 97.5]}},
            {"model": "always", "fnr": 0.0, "f2": 44.0, "map": {"0.1": 50.0, "0.3": 0.0, "average": 25.0},
             "rouge_l": None, "bleu4": None, "sbert": None, "ci": {"fnr": None, "f2": [35.0, 50.7], "map": None}}]
    lines = format_table(rows).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert [c.strip() for c in lines[2].split("|")[1:-1]] == [
        "UPRM (all experts)", "30.0 [12.5, 48.0]", "51.0 [38.2, 63.1]", "90.0", "80.0", "85.0 [70.0, 97.5]", "–",
        "0.50", "12.35"]
    # no interval (bootstrap off, or undefined on the videos drawn): the value alone
    assert [c.strip() for c in lines[3].split("|")[1:4]] == ["always yes", "0.0", "44.0 [35.0, 50.7]"]


def _comparison(delta, ci, p, p_holm=None):
    from uprm.metrics.uncertainty import Comparison

    return Comparison(50.0 + delta, 50.0, delta, ci, p, p_holm)


def test_the_verdict_says_beats_only_where_the_interval_of_the_difference_excludes_zero():
    from uprm.demo import verdict

    # F2 (higher is better): the interval wholly above zero, p small
    assert verdict(_comparison(12.0, (3.5, 21.0), 0.004), "f2", "UPRM", "always yes", 45) == (
        "UPRM beats always yes on F2: Δ +12.0 [+3.5, +21.0], p 0.004")
    # the interval includes zero: no claim, whatever the point estimate
    assert verdict(_comparison(12.0, (-1.0, 21.0), 0.08), "f2", "UPRM", "always yes", 45) == (
        "UPRM and always yes are not distinguishable on F2 on 45 test videos: Δ +12.0 [-1.0, +21.0], p 0.080")
    # FNR: lower is better, so an interval wholly below zero is UPRM's win, wholly above is the baseline's
    assert verdict(_comparison(-40.0, (-60.0, -20.0), 0.001), "fnr", "UPRM", "coarse only", 45).startswith(
        "UPRM beats coarse only on FNR: Δ -40.0 [-60.0, -20.0]")
    assert verdict(_comparison(30.0, (18.0, 41.0), 0.001), "fnr", "UPRM", "always yes", 45).startswith(
        "always yes beats UPRM on FNR: ")
    # mAP: the baseline ahead, the interval wholly below zero
    assert verdict(_comparison(-9.0, (-15.0, -2.0), 0.01), "map", "UPRM", "coarse only", 45).startswith(
        "coarse only beats UPRM on mAP avg: ")


def test_the_verdict_makes_no_claim_the_corrected_permutation_test_does_not_back():
    from uprm.demo import verdict

    # the interval excludes zero, but the Holm-corrected p does not reach 0.05
    text = verdict(_comparison(12.7, (6.2, 44.0), 0.03, p_holm=0.09), "map", "UPRM", "always yes", 45)
    assert text == ("UPRM and always yes are not distinguishable on mAP avg on 45 test videos: "
                    "Δ +12.7 [+6.2, +44.0], p 0.030 (Holm 0.090) (the interval excludes zero, the permutation test "
                    "does not at 0.05)")
    assert verdict(_comparison(12.7, (6.2, 44.0), 0.03, p_holm=0.03), "map", "UPRM", "always yes", 45).startswith(
        "UPRM beats always yes on mAP avg")
    # no interval (bootstrap off): no claim either
    assert "no interval computed" in verdict(_comparison(12.7, None, None), "map", "UPRM", "always yes", 45)
    assert "undefined" in verdict(_comparison(0.0, None, None).__class__(None, None, None, None, None), "fnr",
                                  "UPRM", "always yes", 45)


def test_uprm_is_compared_with_each_row_paired_by_video_with_holm_over_the_baselines(tmp_path):
    from uprm.demo import compare_models
    from uprm.demo.compare import format_comparisons
    from uprm.metrics.uncertainty import Bootstrap

    truth = _two_threats(tmp_path / "gt.json")
    exact = {"Fighting001_syn": [{"segment": [2.0, 6.0], "score": 0.9, "cause": "punching"}],
             "Stealing001_syn": [{"segment": [4.0, 7.0], "score": 0.8, "cause": "a bag snatched"}]}
    half = {"Fighting001_syn": [{"segment": [2.0, 6.0], "score": 0.9, "cause": "punching"}]}
    always = always_yes(dict.fromkeys(["Fighting001_syn", "Stealing001_syn", "Normal_Videos_001_syn"], 10.0),
                        QUICK.replace(window=4.0, stride=2.0, num_frames=4))
    dirs, rows = {}, {}
    for name, found in (("untrained", {}), ("always", always), ("coarse", half), ("uprm", exact)):
        rows[name] = score_detections(name, found, truth, tmp_path / name, sbert=False, explain=name != "always")
        dirs[name] = tmp_path / name
    spec = Bootstrap(samples=200, seed=3)
    comparisons = compare_models(dirs, spec, labels={"uprm": "UPRM", "coarse": "coarse only"})
    assert [(c["a"], c["b"], c["videos"]) for c in comparisons] == [
        ("uprm", "untrained", 3), ("uprm", "always", 3), ("uprm", "coarse", 3)]
    # always-yes's segments all score 1: mAP ranks them in the predictions file's order, in the report and here
    # alike (in the ground truth's order its mAP average would be 83.3, not its row's 100)
    assert comparisons[1]["metrics"]["map"]["b"] == pytest.approx(rows["always"]["map"]["average"]) == 100.0
    vs_coarse = comparisons[2]["metrics"]
    # UPRM finds both threats (FNR 0), coarse only one of them (its 3 of 7 threat seconds missed)
    assert vs_coarse["fnr"]["a"] == 0.0 and vs_coarse["fnr"]["b"] == pytest.approx(100 * 3 / 7)
    assert vs_coarse["fnr"]["delta"] == pytest.approx(-100 * 3 / 7)
    for key in ("fnr", "f2", "map"):
        m = vs_coarse[key]
        assert m["ci"][0] <= m["delta"] <= m["ci"][1]
        # Holm over the three baselines of one metric: never below the raw p, at most three times it
        assert m["p"] <= m["p_holm"] <= min(1.0, 3 * m["p"]) + 1e-12
    # three videos cannot carry a claim: the permutation test finds the difference in many swaps
    assert comparisons[2]["verdicts"]["fnr"].startswith("UPRM and coarse only are not distinguishable on FNR on 3")
    text = format_comparisons(comparisons, spec)
    assert text.splitlines()[0].startswith("Paired by test video (Δ = UPRM − baseline")
    assert "200 bootstrap resamples of the 3 test videos" in text and len(text.splitlines()) == 1 + 3 * 3


def test_the_table_prints_every_row_with_dashes_for_missing_numbers():
    rows = [{"model": "untrained", "fnr": 100.0, "f2": 0.0, "map": {"0.1": 0.0, "0.2": 0.0, "0.3": 0.0, "average": 0.0},
             "rouge_l": 0.0, "bleu4": 0.0, "sbert": 0.12},
            {"model": "always", "fnr": 0.0, "f2": 55.5556, "map": {"0.1": 50.0, "0.2": 50.0, "0.3": 25.0,
                                                                 "average": 41.6667},
             "rouge_l": None, "bleu4": None, "sbert": None},
            {"model": "uprm", "fnr": None, "f2": 80.0, "map": None, "rouge_l": 0.5, "bleu4": 12.345, "sbert": 0.7}]
    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 5 and len({len(line) for line in lines}) == 1  # aligned
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "Model", "FNR↓", "F2", "mAP@0.1", "mAP@0.2", "mAP@0.3", "mAP avg", "SB", "ROUGE", "BLEU"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == [
        "always yes", "0.00", "55.56", "50.00", "50.00", "25.00", "41.67", "–", "–", "–"]
    assert [c.strip() for c in lines[4].split("|")[1:-1]] == [
        "UPRM (all experts)", "–", "80.00", "–", "–", "–", "–", "0.70", "0.50", "12.35"]


def _window_records(video_id, window, threat):
    answer = "Yes, there exists a threat." if threat else "No, there is no threat."
    base = {"video_id": video_id, "window": list(window), "video": f"{video_id}.mp4"}
    records = [{**base, "id": f"{video_id}@{window[0]}/identify", "task": "identify",
                "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": answer}]}]
    if threat:
        records.append({**base, "id": f"{video_id}@{window[0]}/locate", "task": "locate",
                        "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "1-2"}]})
    return records


def test_balance_repeats_every_task_of_the_threat_windows_until_yes_and_no_are_even(tmp_path):
    from uprm.demo.world import balance_threats

    records = _window_records("t", (0, 4), True) + [r for i in range(7)
                                                    for r in _window_records(f"n{i}", (0, 4), False)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    assert balance_threats(path) == 12  # 1 threat window (2 records) x 6 more copies: 7 yes vs 7 no
    out = json.loads(path.read_text())
    identify = [r["conversations"][1]["value"][:3] for r in out if r["task"] == "identify"]
    assert identify.count("Yes") == identify.count("No,") == 7
    assert len({r["id"] for r in out}) == len(out)  # repeats get their own ids
    assert sum(r["task"] == "locate" for r in out) == 7
    assert balance_threats(path) == 0  # already even: nothing added, file unchanged
    assert json.loads(path.read_text()) == out


def test_the_demo_writes_uprm_evals_answers_layout_and_the_rating_sheets_read_it(tmp_path):
    """One layout wherever a file is called answers.jsonl: the demo's explanations are
    written by the writer `uprm eval` uses, so `uprm eval sheets --answers
    demo/eval/<model>/answers.jsonl` makes sheets, with the threat's frames."""
    import csv
    import re

    import numpy as np

    from uprm.data.mp4 import write_mp4
    from uprm.evaluation.answers import FIELDS, read_answers
    from uprm.prompts import QUESTIONS

    truth = _ground_truth(tmp_path / "gt.json")
    video = write_mp4(tmp_path / "Fighting001_syn.mp4", np.full((20, 32, 48, 3), 90, np.uint8), fps=2.0)
    found = {"Fighting001_syn": [{"segment": [2.0, 6.0], "score": 0.5, "cause": "two people punching each other"}]}
    score_detections("uprm", found, truth, tmp_path / "eval" / "uprm", sbert=False, videos={"Fighting001_syn": video})
    answers = tmp_path / "eval" / "uprm" / "answers.jsonl"
    (line,) = [json.loads(x) for x in answers.read_text().splitlines()]
    assert list(line) == [*FIELDS, "cause", "reference_cause"]  # what uprm eval writes, in its order
    assert line == {"id": "Fighting001_syn/0", "video_id": "Fighting001_syn", "clip": "Fighting001_syn@2.000-6.000",
                    "task": "attribute", "category": "Fighting", "video": str(video), "window": [2.0, 6.0],
                    "question": QUESTIONS["attribute"],
                    "answer": "The threat is attributed to two people punching each other.",
                    "reference": "The threat is attributed to two people punching each other.",
                    "cause": "two people punching each other", "reference_cause": "two people punching each other"}
    assert read_answers(answers) == [line]
    result = CliRunner().invoke(cli, ["eval", "sheets", "--answers", str(answers), "--raters", "2", "--frames", "2",
                                      "--thumb-size", "32", "--out", str(tmp_path / "sheets")])
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader((tmp_path / "sheets" / "rater1.csv").open(encoding="utf-8")))
    assert row["answer"] == line["answer"] and row["clip"] == line["clip"]
    page = (tmp_path / "sheets" / "rater1.html").read_text()
    assert len(re.findall(r"src='data:image/jpeg;base64,", page)) == 2  # the true segment's frames


@pytest.mark.slow
def test_a_training_that_fails_in_the_second_process_raises_here_with_its_traceback(tmp_path):
    from uprm.demo.models import TrainingProcess

    missing = tmp_path / "no_such_train.json"
    other = TrainingProcess("coarse", QUICK, missing, tmp_path / "cache", tmp_path / "runs" / "coarse", 0, 1)
    with pytest.raises(RuntimeError, match=r"(?s)training coarse in a second process failed:.*Traceback.*no_such_train"):
        other.result()
    assert other.lines() == []


def test_bootstrap_flag_sets_the_resamples_and_zero_turns_intervals_off(monkeypatch):
    import uprm.demo

    seen = []
    monkeypatch.setattr(uprm.demo, "run_demo", lambda out, **kw: seen.append(kw["settings"]))
    for args in (["--bootstrap", "0"], ["--bootstrap", "250"], []):
        result = CliRunner().invoke(cli, ["demo", "--quick", "--no-sbert", *args])
        assert result.exit_code == 0, result.output
    assert [s.bootstrap for s in seen] == [0, 250, QUICK.bootstrap]
    assert CliRunner().invoke(cli, ["demo", "--bootstrap", "-1"]).exit_code == 2
