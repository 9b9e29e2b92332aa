"""`uprm eval --checkpoint`: a model on instruction records, end to end.

- the CLI on a tiny checkpoint: every file, every key, and every number equal to a
  recomputation from the files it wrote (predictions.json, answers.jsonl) with
  uprm.metrics;
- a model whose answers the test writes (the tiny model's experts, features and router,
  scripted text): window offsets, the union over windows, per-category FNR, the extras
  and the text metrics against plain-loop / package computations by hand;
- resuming: a clips.jsonl cut after any batch (or inside a line) is completed without
  answering finished batches again, and the files equal an uninterrupted run's;
- bad input named by file.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from ._reference import activitynet_ap, average_precision, fnr_f2, grounding, per_second, roc_auc
from .conftest import invoke

OUTPUTS = ["predictions.json", "answers.jsonl", "clips.jsonl", "report.json", "report.md", "report.csv",
           "expert_weights.png"]


def _records(test_json):
    return json.loads(test_json.read_text())


def _truth(test_json):
    """{video: (duration, category, merged absolute segments)} from the records, by hand."""
    out: dict = {}
    for rec in _records(test_json):
        d, cat, segs = out.setdefault(rec["video_id"], (rec["duration"], rec["category"], []))
        segs += [(rec["window"][0] + s, rec["window"][0] + e) for s, e in rec["segments"]]
    merged = {}
    for vid, (d, cat, segs) in out.items():
        union: list = []
        for s, e in sorted(set(segs)):
            if union and s <= union[-1][1]:
                union[-1] = (union[-1][0], max(union[-1][1], e))
            else:
                union.append((s, e))
        merged[vid] = (d, cat, union)
    return merged


# --------------------------------------------------------------------------- the CLI
def test_the_cli_writes_every_file_and_key(eval_run, test_json):
    for name in OUTPUTS:
        assert (eval_run / name).is_file(), name
    report = json.loads((eval_run / "report.json").read_text())
    for key in ("fnr", "f2", "map", "rouge_l", "bleu4", "sbert", "per_category", "frame_roc_auc", "frame_ap",
                "video", "grounding", "expert_weights", "expert_weights_per_category", "counts", "settings"):
        assert key in report, key
    assert list(report["map"]) == ["0.1", "0.2", "0.3", "average"]
    assert set(report["per_category"]) == {"Assault", "Fighting", "Normal"}
    assert set(report["expert_weights"]) == {"background", "coarse"}
    assert report["counts"]["clips"] == 6 and report["counts"]["records"] == len(_records(test_json))
    assert (eval_run / "expert_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(eval_run / "expert_weights.png").size[0] >= 400


def test_each_record_gets_the_answer_to_its_own_task(eval_run, test_json):
    clips = {c["clip"]: c for c in map(json.loads, (eval_run / "clips.jsonl").read_text().splitlines()[1:])}
    answers = [json.loads(x) for x in (eval_run / "answers.jsonl").read_text().splitlines()]
    records = _records(test_json)
    assert [a["id"] for a in answers] == [r["id"] for r in records]
    for a, r in zip(answers, records):
        clip = clips[f"{r['video_id']}@{r['window'][0]:.3f}-{r['window'][1]:.3f}"]
        assert a["answer"] == clip[r["task"]] and a["reference"] == r["conversations"][1]["value"]
        assert a["question"] == r["conversations"][0]["value"].split("\n", 1)[1] and a["window"] == r["window"]
        if r["task"] == "attribute":
            assert a["reference_cause"] == "; ".join(r["causes"])
    # the attribute question is asked only of batches holding an attribute record
    assert sorted(len(c["tasks"]) for c in clips.values()) == [2, 2, 3, 3, 3, 3]


def test_the_numbers_equal_a_recomputation_from_the_files(eval_run, test_json):
    from uprm.metrics import (
        bleu4,
        f2_score,
        false_negative_rate,
        map_at_tiou,
        rouge_l,
        sbert_similarity,
        segments_to_frames,
    )

    report = json.loads((eval_run / "report.json").read_text())
    results = json.loads((eval_run / "predictions.json").read_text())["results"]
    truth = _truth(test_json)
    assert set(results) == set(truth)
    rows = [(v, *d["segment"], d["score"]) for v, ds in results.items() for d in ds]
    t = np.concatenate([segments_to_frames(segs, d) for d, _, segs in truth.values()])
    p = np.concatenate([segments_to_frames([r[1:3] for r in rows if r[0] == v], truth[v][0]) for v in truth])
    assert report["fnr"] == pytest.approx(100 * false_negative_rate(t, p))
    assert report["f2"] == pytest.approx(100 * f2_score(t, p))
    gt_rows = [(v, s, e) for v, (_, _, segs) in truth.items() for s, e in segs]
    want = map_at_tiou(rows, gt_rows, (0.1, 0.2, 0.3))
    assert report["map"] == pytest.approx({"0.1": want[0.1], "0.2": want[0.2], "0.3": want[0.3],
                                           "average": want["average"]})
    attributed = [json.loads(x) for x in (eval_run / "answers.jsonl").read_text().splitlines()]
    attributed = [a for a in attributed if a["task"] == "attribute"]
    preds, refs = [a["cause"] for a in attributed], [a["reference_cause"] for a in attributed]
    assert report["rouge_l"] == pytest.approx(rouge_l(preds, refs))
    assert report["bleu4"] == pytest.approx(bleu4(preds, refs))
    assert report["sbert"] == pytest.approx(sbert_similarity(preds, refs))


def _plain_loop_numbers(rows, truth) -> dict:
    """FNR, F2, mAP and per-category FNR of prediction ``rows`` ``(video, start, end,
    score)`` against ``truth`` (:func:`_truth`), by the plain loops of _reference.py."""
    labels, pred, by_category = [], [], {}
    for vid, (d, category, segs) in truth.items():
        t, p = per_second(segs, d), per_second([r[1:3] for r in rows if r[0] == vid], d)
        labels, pred = labels + t, pred + p
        by_category.setdefault(category, ([], []))
        by_category[category][0].extend(t)
        by_category[category][1].extend(p)
    gt_rows = [(v, s, e) for v, (_, _, segs) in truth.items() for s, e in segs]
    aps = {f"{t:g}": activitynet_ap(rows, gt_rows, t) for t in (0.1, 0.2, 0.3)}
    fnr, f2 = fnr_f2(labels, pred)
    return {"fnr": fnr, "f2": f2, "map": {**aps, "average": sum(aps.values()) / 3},
            "per_category": {c: fnr_f2(t, p)[0] for c, (t, p) in by_category.items()}}


def _scored(predictions, test_json) -> dict:
    return json.loads(invoke("eval", "--predictions", predictions, "--ground-truth", test_json, "--format", "json",
                             "--no-sbert").output)


def test_scoring_the_runs_predictions_again_gives_the_plain_loop_numbers(eval_run, test_json):
    """`uprm eval --predictions` on UPRM's own predictions.json, the records as ground
    truth: both that and the run's report equal an independent plain-loop computation.
    (The tiny checkpoint finds no threat, so these numbers are the degenerate FNR 100,
    F2 0, mAP 0; the next test scores predictions whose numbers were worked out by hand.)"""
    results = json.loads((eval_run / "predictions.json").read_text())["results"]
    rows = [(v, *d["segment"], d["score"]) for v, ds in results.items() for d in ds]
    want = _plain_loop_numbers(rows, _truth(test_json))
    report = json.loads((eval_run / "report.json").read_text())
    for numbers in (report, _scored(eval_run / "predictions.json", test_json)):
        assert (numbers["fnr"], numbers["f2"]) == pytest.approx((want["fnr"], want["f2"]))
        assert numbers["map"] == pytest.approx(want["map"])
        assert {c: v["fnr"] for c, v in numbers["per_category"].items()} == pytest.approx(want["per_category"])


def test_bad_inputs_are_named(eval_run, checkpoint, test_json, tmp_path):
    missing = tmp_path / "no-such-run"
    result = invoke("eval", "--checkpoint", missing, "--data", test_json, ok=False)
    assert result.exit_code == 1 and f"{missing}: no such checkpoint folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("eval", "--checkpoint", empty, "--data", test_json, ok=False)
    assert result.exit_code == 1 and "no UPRM config.json" in result.output and str(empty) in result.output
    result = invoke("eval", "--checkpoint", checkpoint, "--data", test_json, "--split", "val", ok=False)
    assert result.exit_code == 1 and f"{test_json}: no record of split 'val' (the records' splits: test)" in result.output
    assert invoke("eval", "--checkpoint", checkpoint, ok=False).exit_code == 2  # --data is needed
    # a run folder holding another evaluation's answers
    result = invoke("eval", "--checkpoint", checkpoint, "--data", test_json, "--out", eval_run, "--batch-size", "3",
                    ok=False)
    assert result.exit_code == 1 and "clips.jsonl: holds the answers of another evaluation (batch_size differ)" \
        in result.output


# --------------------------------------------------------------------------- scripted answers
def _row_key(features, i: int) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(features["coarse"].items()):
        h.update(name.encode())
        h.update(tensor[i].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class Scripted:
    """The tiny model (its experts, features and router run for real) answering what
    the test scripts for each clip, recognised by its features."""

    def __init__(self, model, by_features, script):
        self._model, self.by_features, self.script, self.batches = model, by_features, script, []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def eval(self):
        return self

    def answer(self, features, tasks, max_new_tokens=None):
        out = self._model.answer(features, ())  # the router's weights; no generation
        clips = [self.by_features[_row_key(features, i)] for i in range(len(out))]
        self.batches.append((clips, tuple(tasks)))
        for clip, ans in zip(clips, out):
            said = self.script[clip]
            for task in tasks:
                setattr(ans, task, said.get(task, ""))
            ans.p_yes = said["p_yes"]
        return out


SCRIPT = {
    "Fighting001_syn@0.000-3.000": {"identify": "Yes, there exists a threat.", "p_yes": 0.9,
                                    "locate": "The threat occurs between 2 and 3 seconds.",
                                    "attribute": "The threat is attributed to a person punching a person in the parking lot."},
    "Fighting001_syn@3.000-6.000": {"identify": "Yes, there exists a threat.", "p_yes": 0.8,
                                    "locate": "The threat occurs between 0 and 2.5 seconds.",
                                    "attribute": "The threat is attributed to two people fighting."},
    "Assault001_syn@0.000-3.000": {"identify": "No, there is no threat.", "p_yes": 0.2,
                                   "locate": "There is no threat in the video.",
                                   "attribute": "The threat is attributed to nothing."},
    "Assault001_syn@3.000-6.000": {"identify": "Yes, there exists a threat.", "p_yes": 0.7,
                                   "locate": "The threat occurs between 0 and 3 seconds.",
                                   "attribute": "The threat is attributed to a person in a purple shirt pushing a "
                                                "person to the ground in the plaza."},
    "Normal_Videos_001_syn@0.000-3.000": {"identify": "Yes, there exists a threat.", "p_yes": 0.6,
                                          "locate": "The threat occurs between 1 and 2 seconds."},
    "Normal_Videos_001_syn@3.000-6.000": {"identify": "No, there is no threat.", "p_yes": 0.1,
                                          "locate": "There is no threat in the video."},
}


@pytest.fixture(scope="module")
def tiny(checkpoint):
    from uprm.modeling import UPRMModel

    return UPRMModel.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def by_features(tiny, test_json, cache):
    from uprm.data import InstructionDataset

    dataset = InstructionDataset(test_json, tiny.block, cache, num_frames=tiny.config.num_frames)
    out = {}
    for key in dataset.clip_keys():
        features, _, _ = dataset.features_for(key)
        out[_row_key(tiny.collate([features]), 0)] = f"{key.video_id}@{key.window[0]:.3f}-{key.window[1]:.3f}"
    assert len(out) == 6
    return out


@pytest.fixture
def scripted(tiny, by_features):
    return lambda: Scripted(tiny, by_features, SCRIPT)


@pytest.fixture
def evaluate(cache):
    """uprm.evaluation.evaluate reading the features from the session's cache."""
    from uprm.evaluation import evaluate

    return lambda model, data, **kw: evaluate(model, data, cache, **kw)


def test_scripted_answers_give_the_numbers_computed_by_hand(scripted, evaluate, test_json, tmp_path):
    from rouge_score import rouge_scorer
    from sacrebleu import corpus_bleu

    model = scripted()
    report = evaluate(model, test_json, out=tmp_path / "run", sbert=False, system="scripted")
    # clips in (video, window) order, four per batch; the attribute question only where asked
    assert model.batches == [(sorted(SCRIPT)[:4], ("identify", "locate", "attribute")),
                             (sorted(SCRIPT)[4:], ("identify", "locate"))]
    # predictions in seconds of the video: window start + the answer's times, only after a yes
    results = json.loads((tmp_path / "run" / "predictions.json").read_text())["results"]
    assert {v: [(*d["segment"], d["score"]) for d in ds] for v, ds in results.items()} == {
        "Assault001_syn": [(3.0, 6.0, 0.7)], "Fighting001_syn": [(2.0, 3.0, 0.9), (3.0, 5.5, 0.8)],
        "Normal_Videos_001_syn": [(1.0, 2.0, 0.6)]}
    # truth: Fighting 2.187-5.687 and Assault 2.412-6 (unions over the windows): 4 threat
    # seconds each; predicted 3 of each and one false alarm -> TP 6, FN 2, FP 1
    assert report["fnr"] == pytest.approx(25.0) and report["f2"] == pytest.approx(100 * 30 / 39)
    assert report["per_category"]["Fighting"]["fnr"] == pytest.approx(25.0)
    assert report["per_category"]["Assault"]["fnr"] == pytest.approx(25.0)
    assert report["per_category"]["Normal"]["fnr"] is None
    truth = _truth(test_json)
    rows = [("Fighting001_syn", 2.0, 3.0, 0.9), ("Fighting001_syn", 3.0, 5.5, 0.8), ("Assault001_syn", 3.0, 6.0, 0.7),
            ("Normal_Videos_001_syn", 1.0, 2.0, 0.6)]
    gt_rows = [(v, s, e) for v, (_, _, segs) in truth.items() for s, e in segs]
    for t in (0.1, 0.2, 0.3):
        assert report["map"][f"{t:g}"] == pytest.approx(activitynet_ap(rows, gt_rows, t))
    labels, pred = [], []
    for vid, (d, _, segs) in truth.items():
        labels += per_second(segs, d)
        pred += per_second([r[1:3] for r in rows if r[0] == vid], d)
    assert (report["fnr"], report["f2"]) == pytest.approx(fnr_f2(labels, pred))
    # per-second scores: P(yes) inside the clip's predicted segment, 0.1 x P(yes) elsewhere in the clip
    scores = {"Assault001_syn": [.02, .02, .02, .7, .7, .7], "Fighting001_syn": [.09, .09, .9, .8, .8, .08],
              "Normal_Videos_001_syn": [.06, .6, .06, .01, .01, .01]}
    flat_scores = [s for v in truth for s in scores[v]]
    flat_labels = [y for v, (d, _, segs) in truth.items() for y in per_second(segs, d)]
    assert report["frame_roc_auc"] == pytest.approx(roc_auc(flat_labels, flat_scores))
    assert report["frame_ap"] == pytest.approx(average_precision(flat_labels, flat_scores))
    # video level: every video said yes in some window -> TP 2, FP 1
    assert report["video"] == pytest.approx({"fnr": 0.0, "f2": 100 * 10 / 11, "precision": 100 * 2 / 3,
                                             "recall": 100.0, "tp": 2, "fp": 1, "fn": 0, "tn": 0})
    # grounding: the k-th answered segment against the k-th annotated one, per locate record
    assert report["grounding"] == pytest.approx(grounding([((2, 3), (2.187, 3.0)), ((0, 2.5), (0.0, 2.687)),
                                                           (None, (2.412, 3.0)), ((0, 3), (0.0, 3.0))]))
    # text: the causes without "The threat is attributed to", against the annotated causes
    causes = {r["video_id"]: "; ".join(r["causes"]) for r in _records(test_json) if r.get("causes")}
    pairs = [(SCRIPT[c]["attribute"][len("The threat is attributed to "):-1], causes[c.split("@")[0]])
             for c in sorted(SCRIPT) if "attribute" in SCRIPT[c] and "Normal" not in c]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert report["rouge_l"] == pytest.approx(np.mean([scorer.score(r, p)["rougeL"].fmeasure for p, r in pairs]))
    assert report["bleu4"] == pytest.approx(corpus_bleu([p for p, _ in pairs], [[r for _, r in pairs]]).score)
    assert report["sbert"] is None
    # Fig. 5: the router's weights of each category's clips, averaged
    clips = [json.loads(x) for x in (tmp_path / "run" / "clips.jsonl").read_text().splitlines()[1:]]
    for category, prefix in (("Fighting", "Fighting"), ("Normal", "Normal")):
        mine = [c["expert_weights"] for c in clips if c["clip"].startswith(prefix)]
        want = {e: sum(w[e] for w in mine) / len(mine) for e in ("background", "coarse")}
        assert report["expert_weights_per_category"][category] == pytest.approx(want)
        assert math.isclose(sum(want.values()), 1.0, rel_tol=1e-5)


def test_scoring_the_scripted_predictions_gives_the_numbers_computed_by_hand(scripted, evaluate, test_json,
                                                                            tmp_path):
    """`uprm eval --predictions` on the scripted run's predictions.json, the records as
    ground truth: the numbers worked out by hand (the scripted test's figures).

    mAP by hand (ActivityNet AP, predictions by score): Fighting 2-3 (tIoU 0.813/3.687 =
    0.22 with the truth 2.187-5.687), Fighting 3-5.5 (0.714; the truth is taken), Assault
    3-6 (0.836), Normal 1-2 (no truth). At tIoU 0.1 and 0.2: hits 1 0 1 0, precision 1,
    1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1: AP = 1/2 × 1 + 1/2 × 2/3 = 5/6. At 0.3 the
    first misses: hits 0 1 1 0, AP = 1/2 × 2/3 + 1/2 × 2/3 = 2/3."""
    evaluate(scripted(), test_json, out=tmp_path / "run", sbert=False, system="scripted")
    again = _scored(tmp_path / "run" / "predictions.json", test_json)
    assert again["fnr"] == pytest.approx(25.0) and again["f2"] == pytest.approx(100 * 30 / 39)
    assert again["map"] == pytest.approx({"0.1": 500 / 6, "0.2": 500 / 6, "0.3": 200 / 3,
                                          "average": (500 / 6 + 500 / 6 + 200 / 3) / 3})
    assert {c: v["fnr"] for c, v in again["per_category"].items()} == {
        "Fighting": pytest.approx(25.0), "Assault": pytest.approx(25.0), "Normal": None}


def _cut(source, target, lines: int, partial: bool = False):
    """A clips.jsonl of ``lines`` lines (header included), plus half of the next one."""
    text = (source / "clips.jsonl").read_text().splitlines(keepends=True)
    target.mkdir(parents=True)
    (target / "clips.jsonl").write_text("".join(text[:lines]) + (text[lines][:40] if partial else ""))


def test_resume_answers_only_unfinished_batches_and_ends_with_the_same_files(scripted, evaluate, test_json, tmp_path):
    from uprm.evaluation import EvaluationError

    options = {"batch_size": 2, "sbert": False, "system": "scripted"}
    whole = tmp_path / "whole"
    first = scripted()
    report = evaluate(first, test_json, out=whole, **options)
    assert len(first.batches) == 3
    # killed after batch 1 and in the middle of writing batch 2's first line
    _cut(whole, tmp_path / "a", 3, partial=True)
    again = scripted()
    assert evaluate(again, test_json, out=tmp_path / "a", **options) == report
    assert [b[0] for b in again.batches] == [sorted(SCRIPT)[2:4], sorted(SCRIPT)[4:]]
    # killed in the middle of batch 1 (one of its two lines written): batch 1 again
    _cut(whole, tmp_path / "b", 2)
    third = scripted()
    evaluate(third, test_json, out=tmp_path / "b", **options)
    assert len(third.batches) == 3
    for name in OUTPUTS:
        for run in ("a", "b"):
            assert (tmp_path / run / name).read_bytes() == (whole / name).read_bytes(), (run, name)
    # a finished run is not answered again; other settings are refused, or overwrite
    done = scripted()
    assert evaluate(done, test_json, out=whole, **options) == report and done.batches == []
    with pytest.raises(EvaluationError, match=r"clips\.jsonl: holds the answers of another evaluation"):
        evaluate(scripted(), test_json, out=whole, **{**options, "batch_size": 4})
    fresh = scripted()
    evaluate(fresh, test_json, out=whole, **{**options, "batch_size": 4, "overwrite": True})
    assert len(fresh.batches) == 2


def test_the_python_api_writes_nothing_without_out(scripted, test_json, tmp_path, monkeypatch):
    from uprm.evaluation import evaluate

    monkeypatch.chdir(tmp_path)  # features extracted online (no cache), nothing written anywhere
    report = evaluate(scripted(), test_json, sbert=False)
    assert report["f2"] == pytest.approx(100 * 30 / 39) and report["system"] == "UPRM"
    assert list(tmp_path.iterdir()) == []
