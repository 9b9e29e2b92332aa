"""The demo's Table 1: each model's detections on the test videos scored with the
paper's metrics (``uprm.evaluation.score_predictions``: FNR, F2, mAP@tIoU; SB,
ROUGE-L, BLEU-4 on the explanations)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uprm.demo.detect import Detections, write_predictions

__all__ = ["CI_KEYS", "ROW_KEYS", "explanations", "row_intervals", "score_detections", "tiou"]

#: the keys of a row of ``results.json`` (a row also has ``"ci"``: :data:`CI_KEYS`)
ROW_KEYS = ("model", "fnr", "f2", "map", "rouge_l", "bleu4", "sbert")

#: the metrics of a row that get a 95 % interval (``row["ci"]``): ``map`` is the mAP average
CI_KEYS = ("fnr", "f2", "map")


def tiou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _best_cause(segments: list[dict[str, Any]], truth: tuple[float, float]) -> str:
    """The cause of the detected segment that overlaps the true one most ('' if none does)."""
    scored = [(tiou(tuple(s["segment"]), truth), s["score"], s.get("cause") or "") for s in segments]
    scored = [item for item in scored if item[0] > 0]
    return max(scored)[2] if scored else ""


def explanations(detections: Detections, truth: Mapping[str, Any],
                 videos: Mapping[str, str | os.PathLike] | None = None) -> list[dict[str, Any]]:
    """One attribute line per true threat segment of the test split, in the one
    ``answers.jsonl`` layout (:func:`uprm.evaluation.answers.answer_line`, as ``uprm eval``
    writes it): the cause ``uprm detect`` gave for the segment that best overlaps the true
    one, as the attribution answer, against the video's causes; a threat not found is an
    empty answer. The clip is the true segment (``window``) of the video file in
    ``videos`` (``{video_id: path}``), so ``uprm eval sheets`` shows its frames."""
    from uprm.data.instructions import attribute_answer
    from uprm.evaluation.answers import answer_line, clip_name
    from uprm.prompts import CAUSE_PREFIX, QUESTIONS

    lines = []
    for vid, t in truth.items():
        if not t.segments or not t.causes:
            continue
        for k, segment in enumerate(t.segments):
            cause = _best_cause(detections.get(vid, []), tuple(segment))
            lines.append(answer_line(
                id=f"{vid}/{k}", task="attribute", question=QUESTIONS["attribute"],
                answer=f"{CAUSE_PREFIX} {cause}." if cause else "", reference=attribute_answer(t.causes),
                video_id=vid, clip=clip_name(vid, segment), category=t.category, video=(videos or {}).get(vid),
                window=segment, cause=cause, reference_cause="; ".join(t.causes)))
    return lines


def row_intervals(report: Mapping[str, Any]) -> dict[str, list[float] | None]:
    """``{"fnr", "f2", "map"}``: the 95 % intervals of a row's metrics from the report's
    ``"ci"`` (``map``: the mAP average's); ``None`` where there is none (no bootstrap, or a
    metric undefined on the videos)."""
    ci = report.get("ci") or {}
    maps = ci.get("map") if isinstance(ci.get("map"), Mapping) else {}
    return {"fnr": ci.get("fnr"), "f2": ci.get("f2"), "map": maps.get("average")}


def score_detections(name: str, detections: Detections | None, ground_truth: Path, out: Path, *,
                     explain: bool = True, sbert: bool = True,
                     videos: Mapping[str, str | os.PathLike] | None = None,
                     bootstrap: int = 0, bootstrap_seed: int = 0) -> dict[str, Any]:
    """The report of ``uprm eval --predictions`` for one model's detections on the
    test split (written to ``out``, with ``answers.jsonl`` in ``uprm eval``'s layout:
    :func:`explanations`, and the per-video units ``videos.json`` the paired comparisons
    read), and its row of the table. ``explain=False``: a model that gives no causes (the
    always-yes baseline): no answers, SB, ROUGE, BLEU are ``None``. ``videos``:
    ``{video_id: file}`` of the test videos, for the answers' ``video``. ``bootstrap``:
    resamples of the test videos for the row's 95 % intervals (``row["ci"]``, see
    :func:`row_intervals`; 0: none)."""
    from uprm.evaluation import score_predictions
    from uprm.evaluation.answers import ANSWERS_FILE, write_answers
    from uprm.evaluation.truth import read_ground_truth

    out.mkdir(parents=True, exist_ok=True)
    truth = read_ground_truth(ground_truth, "test")
    detections = {vid: (detections or {}).get(vid, []) for vid in truth}
    predictions = write_predictions(detections, out / "predictions.json")
    answers = None
    if explain:
        answers = write_answers(out / ANSWERS_FILE, explanations(detections, truth, videos))
    report = score_predictions(predictions, ground_truth, out, answers=answers, split="test", dataset="ucf",
                               sbert=sbert and explain, system=name, bootstrap=bootstrap,
                               bootstrap_seed=bootstrap_seed)
    row = {key: report.get(key) for key in ROW_KEYS[1:]}
    return {"model": name, **row, "ci": row_intervals(report), "video": report.get("video"),
            "counts": report.get("counts")}
