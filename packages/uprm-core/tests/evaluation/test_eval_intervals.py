"""`uprm eval` and `score_predictions` / `evaluate` report 95 % intervals from a bootstrap
over videos (`--bootstrap N`, `--bootstrap-seed S`) and write the per-video units
(`videos.json`) that `uprm eval compare` reads; the intervals are checked against a
plain-loop recomputation of the same draws."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ._reference import counts, per_second
from .conftest import invoke
from .test_scoring import GT, write_gt, write_predictions

ROWS = [("v1", 2.0, 4.0, 0.9), ("v2", 1.0, 3.0, 0.8), ("v3", 0.0, 2.0, 0.5), ("v4", 0.0, 0.4, 0.7)]


def answers_file(path, with_videos: bool = True):
    from uprm.evaluation.answers import answer_line, write_answers

    lines = [answer_line(id=f"{v}/attribute", task="attribute", question="Why?", answer=f"The threat is attributed "
                         f"to {cause}.", reference=f"The threat is attributed to {ref}.",
                         video_id=v if with_videos else None)
             for v, cause, ref in [("v1", "a man hits another man", "a man hits another man in the face"),
                                   ("v2", "fire on a car", "a man sets fire to a parked car"),
                                   ("v4", "people walk", "a man punches a woman")]]
    return write_answers(path, lines)


def plain_fnr_interval(videos: list[str], samples: int, seed: int) -> list[float]:
    """The FNR interval by plain loops: per-video frame counts from the ground truth and
    ROWS, the same draws of videos as the bootstrap (numpy's default_rng), percentiles."""
    per_video = {}
    for vid, (d, _, segs) in GT.items():
        per_video[vid] = counts(per_second(segs, d), per_second([(s, e) for v, s, e, _ in ROWS if v == vid], d))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        drawn = [videos[i] for i in rng.integers(0, len(videos), len(videos))]
        tp = sum(per_video[v][0] for v in drawn)
        fn = sum(per_video[v][1] for v in drawn)
        if tp + fn:
            values.append(100.0 * fn / (tp + fn))
    return [float(x) for x in np.quantile(values, [0.025, 0.975])]


def test_score_predictions_reports_intervals_over_videos_and_writes_the_units(tmp_path):
    from uprm.evaluation import score_predictions

    gt = write_gt(tmp_path / "gt.json")
    out = tmp_path / "scored"
    report = score_predictions(write_predictions(tmp_path / "p.json", ROWS), gt, out, sbert=False,
                               bootstrap=300, bootstrap_seed=5, answers=answers_file(tmp_path / "answers.jsonl"))
    assert report["bootstrap"] == {"samples": 300, "seed": 5, "confidence": 0.95, "unit": "video"}
    units = json.loads((out / "videos.json").read_text())
    videos = [row["video_id"] for row in units["videos"]]
    assert sorted(videos) == sorted(GT)
    assert report["ci"]["fnr"] == pytest.approx(plain_fnr_interval(videos, 300, 5), abs=1e-4)
    assert report["ci"]["fnr"][0] <= report["fnr"] <= report["ci"]["fnr"][1]
    for key in ("rouge_l", "bleu4"):  # the answers name their videos: the texts are resampled with them
        low, high = report["ci"][key]
        assert low <= report[key] <= high and low < high
    assert set(report["ci"]["map"]) == {"0.1", "0.2", "0.3", "average"}
    assert json.loads((out / "report.json").read_text())["ci"] == report["ci"]


def test_answers_without_video_ids_leave_the_text_metrics_without_an_interval(tmp_path):
    from uprm.evaluation import score_predictions

    gt = write_gt(tmp_path / "gt.json")
    report = score_predictions(write_predictions(tmp_path / "p.json", ROWS), gt, sbert=False, bootstrap=50,
                               answers=answers_file(tmp_path / "answers.jsonl", with_videos=False))
    assert report["rouge_l"] is not None and report["ci"]["rouge_l"] is None and report["ci"]["bleu4"] is None
    assert report["ci"]["fnr"] is not None
    assert any("not tied to videos" in n for n in report["notes"])


def test_bootstrap_zero_turns_the_intervals_off_but_still_writes_the_units(tmp_path):
    from uprm.evaluation import score_predictions

    gt = write_gt(tmp_path / "gt.json")
    out = tmp_path / "scored"
    report = score_predictions(write_predictions(tmp_path / "p.json", ROWS), gt, out, sbert=False, bootstrap=0)
    assert "ci" not in report and "bootstrap" not in report
    assert (out / "videos.json").is_file()


@pytest.mark.parametrize(("options", "field"), [({"bootstrap": -1}, "bootstrap"), ({"bootstrap": True}, "bootstrap"),
                                                ({"bootstrap": 1.5}, "bootstrap"),
                                                ({"bootstrap_seed": "x"}, "bootstrap_seed")])
def test_bad_bootstrap_options_are_named(options, field):
    from uprm.evaluation import EvalOptions, EvaluationError

    with pytest.raises(EvaluationError, match=rf"^{field}: "):
        EvalOptions(**options)


def test_the_cli_takes_the_bootstrap_options(tmp_path):
    gt = write_gt(tmp_path / "gt.json")
    preds = write_predictions(tmp_path / "p.json", ROWS)
    invoke("eval", "--predictions", preds, "--ground-truth", gt, "--out", tmp_path / "a", "--format", "none",
           "--no-sbert", "--bootstrap", 40, "--bootstrap-seed", 7)
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["bootstrap"] == {"samples": 40, "seed": 7, "confidence": 0.95, "unit": "video"}
    invoke("eval", "--predictions", preds, "--ground-truth", gt, "--out", tmp_path / "b", "--format", "none",
           "--no-sbert", "--bootstrap", 0)
    assert "ci" not in json.loads((tmp_path / "b" / "report.json").read_text())
    assert (tmp_path / "b" / "videos.json").is_file()
    result = invoke("eval", "--predictions", preds, "--ground-truth", gt, "--bootstrap", -1, ok=False)
    assert result.exit_code == 2 and "--bootstrap" in result.output


def test_the_cli_bootstraps_by_default(tmp_path):
    gt = write_gt(tmp_path / "gt.json")
    invoke("eval", "--predictions", write_predictions(tmp_path / "p.json", ROWS), "--ground-truth", gt, "--out",
           tmp_path / "a", "--format", "none", "--no-sbert")
    assert json.loads((tmp_path / "a" / "report.json").read_text())["bootstrap"]["samples"] == 1000


def test_a_model_evaluation_writes_intervals_and_units_with_the_answers_videos(eval_run):
    from uprm.evaluation.intervals import VideoUnits

    report = json.loads((eval_run / "report.json").read_text())
    assert report["bootstrap"] == {"samples": 1000, "seed": 0, "confidence": 0.95, "unit": "video"}
    units = VideoUnits.read(eval_run)
    answers = [json.loads(x) for x in (eval_run / "answers.jsonl").read_text().splitlines()]
    attribute = [a for a in answers if a["task"] == "attribute"]
    assert sorted(units.videos[v] for v, _, _ in units.texts) == sorted(a["video_id"] for a in attribute)
    assert units.rouge is not None and units.rouge.mean() == pytest.approx(report["rouge_l"])
    flat = units.statistic(np.arange(len(units)))
    assert flat["fnr"] == report["fnr"] or flat["fnr"] == pytest.approx(report["fnr"])
    for key in ("fnr", "f2", "rouge_l", "bleu4", "sbert"):
        assert key in report["ci"]


def test_bleu_on_a_resample_equals_sacrebleus_corpus_bleu_of_the_drawn_pairs():
    """The resampled BLEU-4 counts each pair's n-grams once; it must equal the plain
    metric recomputed on the drawn pairs (a video drawn twice: its answers twice)."""
    from uprm.evaluation.intervals import VideoUnits
    from uprm.metrics import bleu4

    rng = np.random.default_rng(4)
    words = np.array(["a", "man", "woman", "hits", "kicks", "steals", "the", "bag", "car", "fire", "sets", "parked",
                      "street", ".", ",", "runs", "away"])
    texts = [(int(rng.integers(0, 12)), " ".join(rng.choice(words, int(rng.integers(0, 9)))),
              " ".join(rng.choice(words, int(rng.integers(1, 10))))) for _ in range(30)]
    texts.append((0, "a man sets fire to a parked car", "a man sets fire to a parked car"))
    units = VideoUnits(videos=[f"v{i}" for i in range(12)], categories=["Arson"] * 12,
                       counts=np.zeros((12, 3), dtype=np.int64), truth=[[] for _ in range(12)],
                       predictions=[[] for _ in range(12)], thresholds=(0.5,), texts=texts)
    for _ in range(25):
        drawn = rng.integers(0, 12, 12)
        pairs = [(p, r) for u in drawn for v, p, r in texts if v == u]
        fast = units.statistic(drawn)["bleu4"]
        if not pairs:
            assert fast is None
            continue
        assert fast == pytest.approx(bleu4([p for p, _ in pairs], [r for _, r in pairs]), abs=1e-9)


def test_the_texts_are_tokenised_once_not_on_every_resample(monkeypatch):
    from sacrebleu.metrics import BLEU

    from uprm.evaluation.intervals import VideoUnits

    calls = []
    real = BLEU.corpus_score
    monkeypatch.setattr(BLEU, "corpus_score", lambda self, h, r: calls.append(len(h)) or real(self, h, r))
    texts = [(v, f"a man hits a woman {v}", "a man hits a woman") for v in range(4)]
    units = VideoUnits(videos=list("abcd"), categories=["Fighting"] * 4, counts=np.zeros((4, 3), dtype=np.int64),
                       truth=[[]] * 4, predictions=[[]] * 4, thresholds=(0.5,), texts=texts)
    units.statistic(np.arange(4))
    first = len(calls)
    for drawn in ([0, 0, 1, 2], [3, 3, 3, 1], [1, 2, 3, 0]):
        units.statistic(np.array(drawn))
    assert first >= 1 and len(calls) == first


def test_map_on_a_resample_equals_map_at_tiou_of_the_drawn_videos():
    """The resampled mAP decides each prediction's match once per video; it must equal
    ActivityNet's AP (map_at_tiou) recomputed on the drawn rows, a video drawn twice
    being two videos: tied scores, tIoU ties, several ground truths and overlapping
    predictions per video, videos without ground truth or without predictions."""
    from uprm.evaluation.intervals import VideoUnits
    from uprm.metrics import map_at_tiou

    rng = np.random.default_rng(7)
    truth, preds = [], []
    for i in range(15):
        truth.append([] if i % 5 == 0 else sorted((float(s), float(s + rng.integers(1, 6)))
                                                  for s in rng.integers(0, 15, int(rng.integers(1, 4)))))
        preds.append([] if i % 7 == 3 else [(float(s), float(s + rng.integers(0, 6)), float(rng.choice([0.2, 0.5, 0.9])))
                                            for s in rng.integers(0, 15, int(rng.integers(1, 6)))])
    truth[1], preds[1] = [(0.0, 4.0), (4.0, 8.0)], [(2.0, 6.0, 0.5), (2.0, 6.0, 0.5)]  # a tIoU tie between truths
    thresholds = (0.0, 0.1, 0.3, 0.5, 0.7)
    units = VideoUnits(videos=[f"v{i}" for i in range(15)], categories=["Arson"] * 15,
                       counts=np.zeros((15, 3), dtype=np.int64), truth=truth, predictions=preds,
                       thresholds=thresholds)
    draws = [np.arange(15), np.array([1, 1, 1]), np.array([0, 5, 10]), np.array([3, 3, 2])]
    draws += [rng.integers(0, 15, 15) for _ in range(40)]
    for drawn in draws:
        fast = units.statistic(drawn)
        gt = [(k, s, e) for k, u in enumerate(drawn) for s, e in truth[u]]
        if not gt:
            assert fast["map/average"] is None
            continue
        want = map_at_tiou([(k, s, e, sc) for k, u in enumerate(drawn) for s, e, sc in preds[u]], gt, thresholds)
        assert fast["map/average"] == want["average"]  # the same floats
        for t in thresholds:
            assert fast[f"map/{t:g}"] == want[t]
