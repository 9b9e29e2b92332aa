"""Ground truth and predictions of an evaluation, per video, in absolute seconds.

Plain Python (no torch, no numpy). The ground truth comes from instruction records
(each record's ``segments`` are relative to its ``window`` start; a video's threat
segments are the union over its windows) or from an ActivityNet ground-truth file.
Predictions come from the model's answers or from an ActivityNet results file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.errors import AnnotationError, RecordError
from uprm.evaluation.errors import EvaluationError
from uprm.prompts import STAGE2_TASKS, strip_cause
from uprm.taxonomy import Taxonomy

__all__ = [
    "EXTRA_VIDEO_POLICIES",
    "Prediction",
    "VideoTruth",
    "apply_extra_policy",
    "check_labels",
    "merge_segments",
    "order_categories",
    "read_ground_truth",
    "read_predictions",
    "record_video_id",
    "reference_cause",
    "select_records",
    "truth_from_records",
]

#: what to do with predictions of videos the ground truth does not have
EXTRA_VIDEO_POLICIES = ("error", "ignore", "false-positive")

#: ``(video_id, start, end, score)``: one predicted threat segment, seconds of the video
Prediction = tuple[str, float, float, float]


@dataclass
class VideoTruth:
    """What is known about one evaluated video.

    Attributes:
        video_id: the video's id.
        duration: seconds (``None`` when no source says; then the largest end time of
            its ground-truth and predicted segments is used and a note is reported).
        segments: threat segments ``(start, end)`` in seconds of the video, merged.
        category: the threat class (``"Normal"`` for a video without threat).
        causes: the annotated causes.
        split: the split the source gives, if any.
    """

    video_id: str
    duration: float | None = None
    segments: list[tuple[float, float]] = field(default_factory=list)
    category: str = "unknown"
    causes: list[str] = field(default_factory=list)
    split: str | None = None


def merge_segments(segments: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """The union of segments as sorted, disjoint ``(start, end)`` pairs (touching
    segments are joined; zero-length ones dropped)."""
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in segments):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


# --------------------------------------------------------------------------- records
def record_video_id(record: Mapping[str, Any]) -> str:
    """A record's ``video_id``, else its video file's stem (as :class:`uprm.data.ClipKey`)."""
    media = record.get("video", record.get("image", ""))
    return str(record.get("video_id") or Path(str(media)).stem)


def select_records(files: Sequence[str | os.PathLike], split: str | None = None) -> list:
    """The identify/locate/attribute records of the instruction files (of ``split``
    when given). An :class:`EvaluationError` names the files when none is left."""
    from uprm.data.records import load_records

    if not files:
        raise EvaluationError("no instruction file given (--data)")
    try:
        records = [r for f in files for r in load_records(f)]
    except RecordError as exc:
        raise EvaluationError(str(exc)) from None
    stage2 = [r for r in records if r.get("task") in STAGE2_TASKS]
    chosen = [r for r in stage2 if split is None or r.get("split") == split]
    if not chosen:
        names = ", ".join(str(f) for f in files)
        if not stage2:
            raise EvaluationError(f"{names}: no {'/'.join(STAGE2_TASKS)} record to evaluate")
        found = sorted({str(r.get("split")) for r in stage2})
        raise EvaluationError(f"{names}: no record of split {split!r} (the records' splits: {', '.join(found)})")
    return chosen


def _window(record: Mapping[str, Any]) -> tuple[float, float | None]:
    window = record.get("window")
    if window:
        return float(window[0]), float(window[1])
    duration = record.get("duration")
    return 0.0, float(duration) if duration is not None else None


def _record_segments(record: Mapping[str, Any], offset: float) -> list[tuple[float, float]]:
    out = []
    for i, seg in enumerate(record.get("segments") or []):
        if not (isinstance(seg, (list, tuple)) and len(seg) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seg) and seg[1] >= seg[0]):
            where = getattr(record, "where", repr(record.get("id")))
            raise EvaluationError(f"{where}: segments[{i}] must be [start, end] seconds, got {seg!r}")
        out.append((offset + float(seg[0]), offset + float(seg[1])))
    return out


def truth_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, VideoTruth]:
    """One :class:`VideoTruth` per video of the records, segments in seconds of the
    video (window start + relative time), the union over the video's windows. The
    duration is the records' ``duration``, else the largest window end."""
    out: dict[str, VideoTruth] = {}
    for rec in records:
        vid = record_video_id(rec)
        start, end = _window(rec)
        truth = out.setdefault(vid, VideoTruth(vid, split=rec.get("split")))
        truth.segments += _record_segments(rec, start)
        ends = [d for d in (rec.get("duration"), end, truth.duration) if d is not None]
        truth.duration = float(max(ends)) if ends else None
        if rec.get("category"):
            truth.category = str(rec["category"])
        truth.causes += [str(c) for c in rec.get("causes") or [] if str(c) not in truth.causes]
    for truth in out.values():
        truth.segments = merge_segments(truth.segments)
        if truth.category == "unknown" and not truth.segments:
            truth.category = "Normal"
    return dict(sorted(out.items()))


def reference_cause(record: Mapping[str, Any]) -> str:
    """The reference an attribution answer is scored against: the record's ``causes``
    joined with ``"; "`` (as the instruction builder joins them), else the cause in its
    gpt answer (``strip_cause``), else ``""``."""
    causes = [" ".join(str(c).split()).rstrip(" .;") for c in record.get("causes") or []]
    causes = [c for c in causes if c]
    if causes:
        return "; ".join(causes)
    for turn in record.get("conversations") or []:
        if isinstance(turn, Mapping) and turn.get("from") == "gpt" and isinstance(turn.get("value"), str):
            return strip_cause(turn["value"])
    return ""


# --------------------------------------------------------------------------- files
def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise EvaluationError(f"{path}: is a folder; give the {what} JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{path}: not a readable JSON file ({exc})") from None


def read_ground_truth(path: str | os.PathLike, split: str | None = None) -> dict[str, VideoTruth]:
    """Ground truth from an ActivityNet file (``{"database": {vid: {"annotations":
    [{"segment": [s, e], "label": L}], "duration": d, "subset": s}}}``) or an instruction
    JSON (a list of records). ``split`` keeps the videos of that subset / split."""
    path = Path(path)
    data = _load_json(path, "ground-truth")
    if isinstance(data, list):
        return truth_from_records(select_records([path], split))
    if not (isinstance(data, Mapping) and isinstance(data.get("database"), Mapping)):
        raise EvaluationError(
            f"{path}: neither ActivityNet ground truth (an object with a 'database' object) nor an instruction "
            "JSON (a list of records)")
    from uprm.data.annotations import read_activitynet

    try:
        annotations = read_activitynet(path)
    except AnnotationError as exc:
        raise EvaluationError(str(exc)) from None
    out = {}
    for ann in annotations:
        if split is not None and ann.split != split:
            continue
        out[ann.video_id] = VideoTruth(ann.video_id, ann.duration, merge_segments(ann.segments), ann.category,
                                       list(ann.causes), ann.split)
    if not out:
        raise EvaluationError(f"{path}: no video{f' of split {split!r}' if split else ''} in the ground truth")
    return dict(sorted(out.items()))


def read_predictions(path: str | os.PathLike) -> list[Prediction]:
    """``(video_id, start, end, score)`` rows of an ActivityNet results file
    (``{"results": {vid: [{"segment": [s, e], "score": x}]}}``; a missing score is 1).
    A file in another layout, a segment that is not ``[start, end]`` with finite
    ``start <= end``, or a non-numeric score is an :class:`EvaluationError` naming the
    file and the place."""
    import math

    from uprm.data.annotations import read_activitynet_predictions

    path = Path(path)
    _load_json(path, "predictions")  # a clear error for a missing or unreadable file
    try:
        rows = read_activitynet_predictions(path)
    except AnnotationError as exc:
        raise EvaluationError(f"{exc} (the ActivityNet results layout is "
                              '{"results": {video_id: [{"segment": [start, end], "score": x}]}})') from None
    for vid, start, end, score in rows:
        if not (math.isfinite(start) and math.isfinite(end) and start <= end) or math.isnan(score):
            raise EvaluationError(f"{path}: results.{vid}: segment [{start}, {end}] with score {score} is not a "
                                  "finite [start, end] with start <= end and a number score")
    return rows


#: the categories a ground truth gets from no label: a threat video without a category,
#: and a predicted video the ground truth lacks (``extra_videos="false-positive"``)
PLACEHOLDER_CATEGORIES = ("unknown", "(not in ground truth)")


def check_labels(truth: Mapping[str, VideoTruth], taxonomy: Taxonomy, source: str | os.PathLike) -> None:
    """Every video's category must be a category of ``taxonomy`` (compared ignoring case,
    spaces, ``-`` and ``_``); the first that is not raises
    :class:`~uprm.taxonomy.UnknownCategoryError` naming the label, the video, ``source``
    (the ground-truth file) and the taxonomy's file. The placeholders of videos without a
    label (:data:`PLACEHOLDER_CATEGORIES`) are not labels and are not checked."""
    for vid, t in truth.items():
        if t.category not in PLACEHOLDER_CATEGORIES:
            taxonomy.check(t.category, where=f"video {vid!r}", path=source)


def order_categories(names: Iterable[str], taxonomy: Taxonomy | None = None) -> list[str]:
    """Category names as a per-category table lists them: sorted without a taxonomy; with
    one, in the taxonomy's order (each name where the category it names stands; the names
    are kept as given), then the names it does not know, sorted. Categories of the
    taxonomy that are not among ``names`` are not listed."""
    names = sorted(set(names))
    if taxonomy is None:
        return names
    rank = {cat.name: i for i, cat in enumerate(taxonomy)}
    known = [n for n in names if taxonomy.get(n) is not None]
    known.sort(key=lambda n: rank[taxonomy.category(n).name])
    return known + [n for n in names if taxonomy.get(n) is None]


def apply_extra_policy(predictions: list[Prediction], truth: Mapping[str, VideoTruth], policy: str,
                       source: str) -> tuple[list[Prediction], list[str]]:
    """Predictions of videos the ground truth lacks: ``"error"`` raises an
    :class:`EvaluationError` naming them and ``source``; ``"ignore"`` drops them;
    ``"false-positive"`` keeps them (they count as false positives in mAP, and their
    seconds as false alarms of an all-negative video). Returns the predictions kept
    and the extra video ids."""
    if policy not in EXTRA_VIDEO_POLICIES:
        raise ValueError(f"extra_videos must be one of {EXTRA_VIDEO_POLICIES}, got {policy!r}")
    extra = sorted({p[0] for p in predictions} - set(truth))
    if extra and policy == "error":
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise EvaluationError(
            f"{source}: predictions name {len(extra)} video(s) the ground truth does not have: {shown}; "
            "check the files match (same split), or pass --extra-videos ignore / false-positive")
    if extra and policy == "ignore":
        keep = set(truth)
        predictions = [p for p in predictions if p[0] in keep]
    return predictions, extra
