"""The numbers of an evaluation report, from ground truth and predictions per video.

Numpy and :mod:`uprm.metrics` only (no torch): the same code scores UPRM's answers and
any other system's ActivityNet predictions. Units of the report are the paper's: FNR,
F2, mAP, precision, recall, ROC-AUC, AP and grounding in percent; SB and ROUGE-L 0-1;
BLEU-4 0-100; GPT 1-10. A number that is undefined (0/0, e.g. the FNR of a set without
threat) is ``None`` (``null`` in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uprm.evaluation.intervals import VideoUnits, report_intervals
from uprm.evaluation.truth import Prediction, VideoTruth, order_categories
from uprm.metrics import (
    f2_score,
    false_negative_rate,
    frame_average_precision,
    frame_roc_auc,
    map_at_tiou,
    num_samples,
    segments_to_frames,
    temporal_grounding,
    video_identification,
)
from uprm.metrics.uncertainty import Bootstrap

__all__ = [
    "OUTSIDE_FACTOR",
    "UNITS",
    "ClipScore",
    "ScoreInputs",
    "frame_scores_from_clips",
    "frame_scores_from_predictions",
    "percent",
    "resolve_durations",
    "score",
]

#: a second inside a clip but outside its predicted segments scores P(yes) × this
OUTSIDE_FACTOR = 0.1

UNITS = {
    "fnr": "percent", "f2": "percent", "map": "percent", "frame_roc_auc": "percent", "frame_ap": "percent",
    "video": "percent (counts as numbers)", "grounding": "percent", "per_category": "percent",
    "sbert": "0-1", "rouge_l": "0-1", "bleu4": "0-100", "gpt": "1-10", "expert_weights": "0-1",
}


@dataclass(frozen=True)
class ClipScore:
    """What one answered clip says about the seconds it covers: its window (seconds of
    the video), ``P(yes)`` and its predicted segments (seconds of the video)."""

    window: tuple[float, float]
    p_yes: float
    segments: tuple[tuple[float, float], ...] = ()


@dataclass
class ScoreInputs:
    """Everything :func:`score` reads.

    Attributes:
        truth: ``{video_id: VideoTruth}``: the videos evaluated.
        predictions: ``(video_id, start, end, score)`` rows, seconds of the video.
        thresholds: the mAP tIoU thresholds.
        rate: samples per second of the frame-level arrays (1: per second).
        clips: ``{video_id: [ClipScore]}`` when a model answered (per-second scores
            from P(yes), see :func:`frame_scores_from_clips`); ``None``: scores from
            the predictions' scores (:func:`frame_scores_from_predictions`).
        identified: ``{video_id: bool}``, the identify answer per video (any window
            said yes); ``None``: a video is identified when it has a predicted segment.
        texts: ``(predicted cause, reference cause)`` pairs of the attribute records.
        grounding: ``(predicted segment or None, annotated segment)`` queries.
        sbert: compute the Sentence-BERT similarity (needs its model).
        text_videos: the video id of each pair of ``texts`` (so that intervals resample
            the answers with their videos); empty: the text metrics get no interval.
        bootstrap: intervals over videos (:class:`uprm.metrics.Bootstrap`); ``None`` or
            0 samples: none. They add ``"ci"`` and ``"bootstrap"`` to the report.
        units: filled by :func:`score`: the per-video units of the metrics
            (:class:`uprm.evaluation.intervals.VideoUnits`, written as ``videos.json``).
        taxonomy: the site's :class:`~uprm.taxonomy.Taxonomy`: ``per_category`` lists
            the categories in its order (:func:`~uprm.evaluation.truth.order_categories`);
            ``None``: sorted by name.
    """

    truth: Mapping[str, VideoTruth]
    predictions: Sequence[Prediction]
    thresholds: Sequence[float]
    rate: float = 1.0
    clips: Mapping[str, Sequence[ClipScore]] | None = None
    identified: Mapping[str, bool] | None = None
    texts: Sequence[tuple[str, str]] = ()
    grounding: Sequence[tuple[tuple[float, float] | None, tuple[float, float]]] = ()
    sbert: bool = True
    notes: list[str] = field(default_factory=list)
    text_videos: Sequence[str] = ()
    bootstrap: Bootstrap | None = None
    units: VideoUnits | None = None
    taxonomy: Any = None


def percent(x: float | None) -> float | None:
    """A fraction in percent; ``None`` for NaN or ``None``."""
    return None if x is None or math.isnan(x) else 100.0 * float(x)


def _by_video(predictions: Sequence[Prediction]) -> dict[str, list[Prediction]]:
    out: dict[str, list[Prediction]] = {}
    for p in predictions:
        out.setdefault(p[0], []).append(p)
    return out


def resolve_durations(inputs: ScoreInputs) -> dict[str, float]:
    """Each video's duration: the ground truth's, else the largest end time of its
    ground-truth and predicted segments (a note says how many were estimated)."""
    preds = _by_video(inputs.predictions)
    out, estimated = {}, 0
    for vid, truth in inputs.truth.items():
        if truth.duration is not None:
            out[vid] = float(truth.duration)
            continue
        ends = [e for _, e in truth.segments] + [p[2] for p in preds.get(vid, [])]
        out[vid] = max(ends, default=0.0)
        estimated += 1
    if estimated:
        inputs.notes.append(f"{estimated} video(s) without a duration: the largest end time of their segments "
                            "was used (FNR and F2 do not depend on it)")
    return out


def _centres(n: int, duration: float, rate: float) -> np.ndarray:
    index = np.arange(n + 1, dtype=np.float64)
    return (index[:-1] / rate + np.minimum(index[1:] / rate, duration)) / 2


def _inside(centres: np.ndarray, segments: Sequence[Sequence[float]]) -> np.ndarray:
    mask = np.zeros(centres.size, bool)
    for s, e in segments:
        mask |= (centres >= s) & (centres < e)
    return mask


def frame_scores_from_predictions(predictions: Sequence[Prediction], duration: float, rate: float) -> np.ndarray:
    """Per-sample threat scores of one video from scored segments: each sample's
    (centre's) highest score among the predicted segments containing it, else 0."""
    centres = _centres(num_samples(duration, rate), duration, rate)
    out = np.zeros(centres.size)
    for _, s, e, sc in predictions:
        hit = (centres >= s) & (centres < e)
        out[hit] = np.maximum(out[hit], sc)
    return out


def frame_scores_from_clips(clips: Sequence[ClipScore], duration: float, rate: float) -> np.ndarray:
    """Per-sample threat scores of one video from the model's clips: each sample takes
    the highest, over the clips whose window covers its centre, of ``P(yes)`` when the
    centre lies in one of that clip's predicted segments, else ``P(yes) ×
    OUTSIDE_FACTOR`` (0.1); a sample no clip covers scores 0. So seconds rank first by
    whether the model located a threat there, then by how sure it was of a threat."""
    centres = _centres(num_samples(duration, rate), duration, rate)
    out = np.zeros(centres.size)
    for clip in clips:
        covered = (centres >= clip.window[0]) & (centres < clip.window[1])
        value = np.where(_inside(centres, clip.segments), clip.p_yes, clip.p_yes * OUTSIDE_FACTOR)
        out[covered] = np.maximum(out[covered], value[covered])
    return out


@dataclass
class _Frames:
    truth: dict[str, np.ndarray]
    pred: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]

    def cat(self, which: str, videos: Sequence[str]) -> np.ndarray:
        arrays = [getattr(self, which)[v] for v in videos]
        return np.concatenate(arrays) if arrays else np.zeros(0, bool)


def _frames(inputs: ScoreInputs, durations: Mapping[str, float]) -> _Frames:
    preds = _by_video(inputs.predictions)
    out = _Frames({}, {}, {})
    for vid, truth in inputs.truth.items():
        d, mine = durations[vid], preds.get(vid, [])
        out.truth[vid] = segments_to_frames(truth.segments, d, inputs.rate)
        out.pred[vid] = segments_to_frames([(p[1], p[2]) for p in mine], d, inputs.rate)
        if inputs.clips is not None:
            out.scores[vid] = frame_scores_from_clips(inputs.clips.get(vid, ()), d, inputs.rate)
        else:
            out.scores[vid] = frame_scores_from_predictions(mine, d, inputs.rate)
    return out


def _fnr_f2(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    return {"fnr": percent(false_negative_rate(y_true, y_pred)), "f2": percent(f2_score(y_true, y_pred))}


def _map(inputs: ScoreInputs) -> dict[str, float] | None:
    gt = [(vid, s, e) for vid, t in inputs.truth.items() for s, e in t.segments]
    if not gt:
        inputs.notes.append("no ground-truth threat segment: mAP@tIoU is undefined")
        return None
    result = map_at_tiou(list(inputs.predictions), gt, inputs.thresholds)
    return {("average" if k == "average" else f"{k:g}"): v for k, v in result.items()}


def _per_category(inputs: ScoreInputs, frames: _Frames) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for vid, truth in inputs.truth.items():
        groups.setdefault(truth.category, []).append(vid)
    out = {}
    for category in order_categories(groups, inputs.taxonomy):
        videos = groups[category]
        y_true = frames.cat("truth", videos)
        out[category] = {**_fnr_f2(y_true, frames.cat("pred", videos)), "videos": len(videos),
                         "positive_samples": int(np.count_nonzero(y_true))}
    return out


def _video_level(inputs: ScoreInputs) -> dict[str, Any]:
    preds = _by_video(inputs.predictions)
    videos = list(inputs.truth)
    said = inputs.identified if inputs.identified is not None else {v: bool(preds.get(v)) for v in videos}
    result = video_identification([bool(inputs.truth[v].segments) for v in videos],
                                  [bool(said.get(v, False)) for v in videos])
    return {k: (percent(v) if k in ("fnr", "f2", "precision", "recall") else int(v)) for k, v in result.items()}


@dataclass
class _Texts:
    rouge: np.ndarray | None = None
    sbert: np.ndarray | None = None


def _text_metrics(inputs: ScoreInputs, per_pair: _Texts) -> dict[str, float | None]:
    """SB, ROUGE-L and BLEU-4 of the attribute answers; ``per_pair`` gets each pair's
    ROUGE-L and SB (the intervals resample them)."""
    out: dict[str, float | None] = {"sbert": None, "rouge_l": None, "bleu4": None}
    if not inputs.texts:
        inputs.notes.append("no attribute record: SB, ROUGE-L and BLEU-4 are not computed")
        return out
    from uprm.metrics import bleu4, rouge_l_scores, sbert_similarities

    preds, refs = [p for p, _ in inputs.texts], [r for _, r in inputs.texts]
    per_pair.rouge = rouge_l_scores(preds, refs)
    out["rouge_l"], out["bleu4"] = float(np.mean(per_pair.rouge)), bleu4(preds, refs)
    if inputs.sbert:
        try:
            per_pair.sbert = sbert_similarities(preds, refs)
            out["sbert"] = float(np.mean(per_pair.sbert))
        except ImportError as exc:
            inputs.notes.append(f"SB not computed: {exc}")
    return out


def _units(inputs: ScoreInputs, frames: _Frames, per_pair: _Texts) -> VideoUnits:
    preds = _by_video(inputs.predictions)
    # videos in the order their first prediction is given, then those without: mAP ranks tied
    # scores in the order given, so the units of all the videos rank ties as the report did
    # (exactly when each video's predictions are given together, as every writer here does)
    first_seen = list(dict.fromkeys(p[0] for p in inputs.predictions if p[0] in inputs.truth))
    videos = first_seen + [v for v in inputs.truth if v not in set(first_seen)]
    counts = []
    for vid in videos:
        t, p = frames.truth[vid], frames.pred[vid]
        tp = int(np.count_nonzero(t & p))
        counts.append([tp, int(np.count_nonzero(t)) - tp, int(np.count_nonzero(p)) - tp])
    index = {v: i for i, v in enumerate(videos)}
    texts: list[tuple[int, str, str]] = []
    if inputs.texts and len(inputs.text_videos) == len(inputs.texts) and all(v in index for v in inputs.text_videos):
        texts = [(index[v], p, r) for v, (p, r) in zip(inputs.text_videos, inputs.texts)]
    elif inputs.texts and inputs.bootstrap is not None and inputs.bootstrap.enabled:
        inputs.notes.append("the attribute answers are not tied to videos here: SB, ROUGE-L and BLEU-4 get no "
                            "interval")
    return VideoUnits(
        videos=videos, categories=[inputs.truth[v].category for v in videos],
        counts=np.array(counts, dtype=np.int64).reshape(len(videos), 3),
        truth=[[(float(s), float(e)) for s, e in inputs.truth[v].segments] for v in videos],
        predictions=[[(float(s), float(e), float(sc)) for _, s, e, sc in preds.get(v, [])] for v in videos],
        thresholds=tuple(float(t) for t in inputs.thresholds), texts=texts,
        rouge=per_pair.rouge if texts else None, sbert=per_pair.sbert if texts else None)


def _frame_ranking(frames: _Frames, videos: Sequence[str]) -> dict[str, float | None]:
    y_true, scores = frames.cat("truth", videos), frames.cat("scores", videos)
    if y_true.size == 0:
        return {"frame_roc_auc": None, "frame_ap": None}
    return {"frame_roc_auc": percent(frame_roc_auc(y_true, scores)),
            "frame_ap": percent(frame_average_precision(y_true, scores))}


def score(inputs: ScoreInputs) -> dict[str, Any]:
    """The report's numbers (see the module docstring for the units)."""
    durations = resolve_durations(inputs)
    frames = _frames(inputs, durations)
    videos = list(inputs.truth)
    report: dict[str, Any] = _fnr_f2(frames.cat("truth", videos), frames.cat("pred", videos))
    report["map"] = _map(inputs)
    per_pair = _Texts()
    report.update(_text_metrics(inputs, per_pair))
    report["per_category"] = _per_category(inputs, frames)
    report.update(_frame_ranking(frames, videos))
    report["video"] = _video_level(inputs)
    report["grounding"] = (temporal_grounding([p for p, _ in inputs.grounding], [g for _, g in inputs.grounding])
                           if inputs.grounding else None)
    report["counts"] = {
        "videos": len(videos),
        "threat_videos": sum(bool(t.segments) for t in inputs.truth.values()),
        "samples": int(sum(a.size for a in frames.truth.values())),
        "positive_samples": int(sum(np.count_nonzero(a) for a in frames.truth.values())),
        "predicted_segments": len(inputs.predictions),
        "attribute_answers": len(inputs.texts),
    }
    inputs.units = _units(inputs, frames, per_pair)
    if inputs.bootstrap is not None and inputs.bootstrap.enabled and videos:
        report["ci"], _ = report_intervals(inputs.units, inputs.bootstrap)
        report["bootstrap"] = inputs.bootstrap.to_dict()
    return report
