"""answers.jsonl: one layout, one writer, one reader (uprm.evaluation.answers), used by
`uprm eval`, the demo, the rating sheets and `score_predictions(answers=...)`."""

from __future__ import annotations

import json

import pytest

from uprm.evaluation.answers import FIELDS, answer_line, attribute_texts, clip_name, read_answers, write_answers
from uprm.evaluation.errors import EvaluationError


def test_uprm_evals_answers_are_the_layout_and_read_back_unchanged(eval_run):
    from uprm.evaluation.run import clip_id

    path = eval_run / "answers.jsonl"
    raw = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert raw and {x["task"] for x in raw} == {"identify", "locate", "attribute"}
    for line in raw:
        extra = ["cause", "reference_cause"] if line["task"] == "attribute" else []
        assert list(line) == [*FIELDS, *extra]
        assert line["clip"] == clip_name(line["video_id"], line["window"])
    assert read_answers(path) == raw
    key = type("Key", (), {"video_id": "cam", "window": (1.5, 4.0)})()
    assert clip_name("cam", (1.5, 4.0)) == clip_id(key) == "cam@1.500-4.000"


def test_a_minimal_line_is_completed_so_every_reader_sees_the_same_keys(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"id": 7, "task": "attribute", "question": "why?",
                                "answer": "The threat is attributed to a fire.",
                                "reference": "The threat is attributed to arson.", "model": "other"}) + "\n\n",
                    encoding="utf-8")
    (line,) = read_answers(path)
    assert line == {"id": "7", "video_id": None, "clip": None, "task": "attribute", "category": None, "video": None,
                    "window": None, "question": "why?", "answer": "The threat is attributed to a fire.",
                    "reference": "The threat is attributed to arson.", "cause": "a fire", "reference_cause": "arson",
                    "model": "other"}
    assert attribute_texts([line]) == [("a fire", "arson")]


@pytest.mark.parametrize(("text", "message"), [
    ('{"id": "a", "task": "attribute", "cause": "x", "reference_cause": "y"}',
     r"answers\.jsonl:1: an answers line needs \['question', 'answer'\]"),
    ('["a"]', r"answers\.jsonl:1: an answers line is a JSON object, got list"),
    ('{"id": "a", "task": "locate", "question": "q", "answer": 3}', r"answers\.jsonl:1: 'answer' must be a string"),
    ('{"id": "a", "task": "locate", "question": "q", "answer": "x", "window": [5, 1]}',
     r"answers\.jsonl:1: 'window' must be \[start, end\]"),
    ("{not json", r"answers\.jsonl:1: not a JSON line"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "answers.jsonl"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=message):
        read_answers(path)


def test_the_writer_refuses_what_the_reader_would_and_fills_the_causes(tmp_path):
    line = answer_line(id="v/0", task="attribute", question="q", answer="The threat is attributed to smoke.",
                       reference="The threat is attributed to a fire.", window=(1, 2))
    assert (line["cause"], line["reference_cause"], line["window"]) == ("smoke", "a fire", [1.0, 2.0])
    path = write_answers(tmp_path / "answers.jsonl", [line])
    assert read_answers(path) == [line]
    with pytest.raises(EvaluationError, match=r"answers\.jsonl: line 2: an answers line needs \['answer'\]"):
        write_answers(tmp_path / "answers.jsonl", [line, {"id": "x", "task": "locate", "question": "q"}])
    assert read_answers(path) == [line]  # the refused write left the file as it was


def test_score_predictions_reads_the_causes_through_the_one_reader(tmp_path):
    from uprm.evaluation import score_predictions

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"v": {"annotations": [{"segment": [1.0, 3.0], "label": "Arson"}],
                                                 "duration": 5.0, "subset": "testing"}}}))
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"results": {"v": [{"segment": [1.0, 3.0], "score": 0.9}]}}))
    answers = write_answers(tmp_path / "answers.jsonl", [answer_line(
        id="v/0", task="attribute", question="q", answer="The threat is attributed to a fire in a bin.",
        reference="The threat is attributed to a fire in a bin.")])
    report = score_predictions(preds, gt, answers=answers, sbert=False)
    assert report["rouge_l"] == pytest.approx(1.0) and report["bleu4"] == pytest.approx(100.0)
    answers.write_text('{"id": "v/0", "task": "attribute", "cause": "a fire"}\n', encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"needs \['question', 'answer'\]"):
        score_predictions(preds, gt, answers=answers, sbert=False)
