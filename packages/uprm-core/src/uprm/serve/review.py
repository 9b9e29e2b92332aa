"""Reviews of finished jobs, and the labels they make (docs/serve.md, "Review and labels").

An operator reviews a finished job: each detected segment is ``confirmed`` or
``rejected`` (its boundaries possibly moved, its category picked from the site's
taxonomy, its cause edited) and each threat the model missed is ``added``.
:func:`check_review` validates a review against the video's duration and the taxonomy;
the store keeps every review with who and when (the latest is the current one).

The labels (``GET /v1/labels``) are every reviewed video's current review:

- **ActivityNet ground truth** (:func:`activitynet_labels`, through
  :func:`uprm.data.write_activitynet`): the confirmed and added segments are the threats,
  with their category; a video whose segments were all rejected, and none added, is
  Normal. What ``uprm adapt --labels`` and ``uprm eval`` read.
- **instruction JSON** (:func:`instruction_labels`, through
  :func:`uprm.data.build_instructions`): identify / locate / attribute conversations over
  windows of each video; the windows outside the confirmed and added segments — the
  reviewed normal time — are the negatives.

A video's annotation comes from :func:`uprm.data.labels.annotation_from_spans`, as the
label imports make theirs: spans of a category merged, the category covering the most
time is the video's. Its id is the video file's stem (``cam1/0800.mp4`` → ``0800``), so
``--videos DIR`` finds the file; when several reviewed jobs share a video id, the latest
review wins.

Plain Python: no torch (the API process runs it).
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from pathlib import Path
from typing import Any

from uprm.data.annotations import VideoAnnotation
from uprm.serve.errors import ApiError
from uprm.serve.schemas import ReviewIn
from uprm.serve.store import Job
from uprm.taxonomy import Taxonomy

__all__ = ["activitynet_labels", "check_review", "instruction_labels", "review_annotation", "review_json",
           "video_id_of"]

#: how far past the video's end a segment may end (float rounding of the page's times)
END_SLACK = 1e-3


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _category(taxonomy: Taxonomy, label: str | None, where: str) -> str | None:
    """The taxonomy's name of ``label``; 422 naming it and listing the categories."""
    if label is None:
        return None
    category = taxonomy.get(label)
    if category is None:
        names = list(taxonomy.names)
        raise ApiError(422, "unknown_category", f"{where}: category {label!r} is not in the taxonomy; its "
                       f"categories are {', '.join(names)}", category=label, categories=names)
    return category.name


def check_review(review: ReviewIn, duration: float, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The review's segments, checked and in the taxonomy's names, ordered by start:
    ``0 <= start < end <= duration``; a category of the taxonomy; a threat category for a
    confirmed or added segment (a rejected one may have none). Raises :class:`ApiError`
    422 naming the segment (``segments[i]``) and the problem."""
    out = []
    for i, seg in enumerate(review.segments):
        where = f"segments[{i}]"
        if seg.end > duration + END_SLACK:
            raise ApiError(422, "segment_outside_video", f"{where}: {seg.start:g}-{seg.end:g} s ends after the "
                           f"video's end ({duration:g} s)", duration=duration, segment=i)
        category = _category(taxonomy, seg.category, where)
        if seg.verdict != "rejected" and (category is None or not taxonomy.is_threat(category)):
            threats = list(taxonomy.threats)
            raise ApiError(422, "threat_category_needed", f"{where}: a segment {seg.verdict} as a threat needs a "
                           f"threat category, one of {', '.join(threats)}", categories=threats, segment=i)
        out.append({"start": round(seg.start, 3), "end": round(min(seg.end, duration), 3), "category": category,
                    "cause": seg.cause, "verdict": seg.verdict})
    return sorted(out, key=lambda s: (s["start"], s["end"]))


def video_id_of(job: Job) -> str:
    """The labels' id of a job's video: its file's stem (what ``--videos DIR`` looks up)."""
    return Path(job.name.replace("\\", "/")).stem or job.id


def _severity(taxonomy: Taxonomy, category: str | None) -> str | None:
    found = taxonomy.get(category) if category is not None else None
    return found.severity if found is not None else None


def review_annotation(job: Job, review: dict[str, Any], taxonomy: Taxonomy) -> VideoAnnotation:
    """The video's annotation that a review makes (module doc). A category the taxonomy
    no longer has (it changed since the review) is a 409 naming the job."""
    from uprm.data.labels import FrameClock, LabelledSpan, annotation_from_spans

    spans = []
    for seg in review["segments"]:
        if seg["verdict"] == "rejected":
            continue
        if taxonomy.get(seg["category"]) is None:
            raise ApiError(409, "unknown_category", f"job {job.id} ({job.name}) was reviewed with category "
                           f"{seg['category']!r}, which the server's taxonomy no longer has: review it again",
                           job=job.id, category=seg["category"])
        spans.append(LabelledSpan(taxonomy.check(seg["category"]), seg["start"], seg["end"], seg.get("cause")))
    clock = FrameClock(fps=None, duration=job.duration, fps_source="review")
    extra = {"job": job.id, "reviewer": review["reviewer"], "reviewed": _iso(review["at"]), "model": job.model}
    return annotation_from_spans(video_id_of(job), spans, taxonomy, clock=clock, path=Path(f"job {job.id}"),
                                 where="review", video=job.name, extra=extra)


def review_json(job: Job, review: dict[str, Any], revision: int, taxonomy: Taxonomy) -> dict[str, Any]:
    """The public view of one review: segments with their category's severity, the
    video's label, the revision (1 for the job's first review)."""
    segments = [{**seg, "severity": _severity(taxonomy, seg["category"])} for seg in review["segments"]]
    try:
        label = review_annotation(job, review, taxonomy).category
    except ApiError:  # a category the taxonomy no longer has: the labels say so
        label = "unknown"
    return {"job": job.id, "revision": revision, "reviewer": review["reviewer"], "at": _iso(review["at"]),
            "segments": segments, "label": label}


def _latest_per_video(reviewed: list[tuple[Job, dict[str, Any]]]) -> list[tuple[Job, dict[str, Any]]]:
    """One review per video id, the latest; in the order the jobs were accepted."""
    latest: dict[str, tuple[Job, dict[str, Any]]] = {}
    for job, review in reviewed:
        vid = video_id_of(job)
        if vid not in latest or review["at"] >= latest[vid][1]["at"]:
            latest[vid] = (job, review)
    keep = {id(pair[1]) for pair in latest.values()}
    return [(job, review) for job, review in reviewed if id(review) in keep]


def activitynet_labels(reviewed: list[tuple[Job, dict[str, Any]]], taxonomy: Taxonomy) -> dict[str, Any]:
    """Every reviewed video as ActivityNet ground truth (:func:`uprm.data.write_activitynet`;
    each video also names its ``job``, which ActivityNet readers ignore)."""
    from uprm.data.annotations import write_activitynet

    pairs = _latest_per_video(reviewed)
    annotations = [review_annotation(job, review, taxonomy) for job, review in pairs]
    with tempfile.TemporaryDirectory(prefix="uprm-labels-") as tmp:
        path = Path(tmp) / "activitynet.json"
        write_activitynet(annotations, path, version="UPRM serve reviews")
        data = json.loads(path.read_text(encoding="utf-8"))
    for ann in annotations:
        data["database"][ann.video_id]["job"] = ann.extra["job"]
    return data


def instruction_labels(reviewed: list[tuple[Job, dict[str, Any]]], taxonomy: Taxonomy, *, window: float,
                       stride: float, min_overlap: float = 0.0) -> list[dict[str, Any]]:
    """Every reviewed video as identify / locate / attribute conversations over windows
    (:func:`uprm.data.build_instructions`); the windows outside the threats are the
    negatives. A record's ``video`` is the job's video name (relative: save the JSON where
    that name resolves, e.g. in the media root)."""
    from uprm.data.instructions import build_instructions

    annotations = [review_annotation(job, review, taxonomy) for job, review in _latest_per_video(reviewed)]
    records = build_instructions(annotations, None, window_s=window, stride_s=stride, min_overlap_s=min_overlap,
                                 missing="keep", taxonomy=taxonomy)
    return list(records)
