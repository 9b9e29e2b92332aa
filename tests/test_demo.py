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
    assert set(doc["stages"]) == {"world", "windows", "features", "train coarse", "train uprm", "detect", "score"}
    rows = {r["model"]: r for r in doc["rows"]}
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
    assert "[7/7] score" in result.output and "wrote" in lines[-1]
    # the demo's answers are uprm eval's layout: the rating sheets take them as they are
    sheets = CliRunner().invoke(cli, ["eval", "sheets", "--answers", str(out / "eval" / "uprm" / "answers.jsonl"),
                                      "--raters", "2", "--frames", "1", "--out", str(tmp_path / "sheets")])
    assert sheets.exit_code == 0, sheets.output
    assert (tmp_path / "sheets" / "rater2.csv").is_file()


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
