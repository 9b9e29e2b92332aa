"""Labels from Label Studio: the JSON export of a video project → :class:`~uprm.data.VideoAnnotation`.

**The layout read** (Label Studio's documentation: the task format,
labelstud.io/guide/task_format and docs/source/guide/export.md; the ``TimelineLabels``
tag, docs/source/tags/timelinelabels.md; the region code
web/libs/editor/src/regions/TimelineRegion.js and VideoRegion.js, HumanSignal/label-studio)::

    [{"id": 7,
      "data": {"video": "/data/upload/3/1a2b3c4d-clip.mp4"},
      "annotations": [{"id": 12, "was_cancelled": false, "ground_truth": false,
                       "updated_at": "2025-01-05T10:00:00Z",
                       "result": [{"id": "r1", "type": "timelinelabels", "from_name": "timeline", "to_name": "video",
                                   "value": {"ranges": [{"start": 31, "end": 90}],
                                             "timelinelabels": ["Fighting"]}},
                                  {"id": "r1", "type": "textarea", "from_name": "cause", "to_name": "video",
                                   "value": {"text": ["two men trading punches"]}}]}]}]

The JSON export (not JSON-MIN or CSV) of a project with ``<Video name="video"
value="$video"/>`` and ``<TimelineLabels name="timeline" toName="video">``:

- **Timeline labels** (``value.ranges`` + ``value.timelinelabels``): each range is
  ``{start, end}`` in **frames, counted from 1** (Label Studio's first frame is 1), both
  ends included; frame ``n`` shows from ``(n - 1) / fps`` to ``n / fps``, so the range
  ``[s, e]`` is ``[(s - 1) / fps, e / fps]`` seconds.
- **Video rectangles with labels** (the older ``<VideoRectangle>`` + ``<Labels>``
  projects, ``type: "videorectangle"``, ``value.labels`` and ``value.sequence`` of
  keyframes ``{frame, enabled}``): the box is on screen, as Label Studio draws it, from
  an enabled keyframe through the next disabled one (included); after its last keyframe,
  when that is enabled, to the video's last frame (``value.framesCount``, else that
  keyframe).
- **Causes**: a ``<TextArea>`` result with the same ``id`` as a labelled region is that
  region's cause; one that belongs to no region is a cause of the whole video (both
  feed the attribute questions). Other results without labels (choices, ratings...) are
  ignored; a result that carries labels of another kind (image rectangles, text spans)
  is an error rather than a silently dropped label.
- **The annotation used**: the task's annotations that were not cancelled (skipped);
  among them the ground-truth one, else the most recently updated. A task nobody
  submitted an annotation for is left out (with a warning); a submitted annotation
  without threat labels makes the video Normal for its whole length.
- **The video**: ``data.video`` (else the one value of ``data`` that names a video file).
  Its id is the file's stem: Label Studio stores an upload as
  ``/data/upload/<project>/<8 hex digits>-<name>``, so that prefix is removed from
  uploads (``1a2b3c4d-clip.mp4`` → ``clip``); a local-storage URL
  ``/data/local-files/?d=videos/clip.mp4`` gives ``clip``; for other URLs the last path
  part. With a videos folder, the file of that stem (or of the stem with the prefix) is
  used.

**Frame rate**: Label Studio counts frames at the ``<Video frameRate>`` of the labelling
configuration (its default is 24; Label Studio advises setting it to the video's own
rate). ``fps`` (``--fps``) is that rate; without it each video's own rate is read from its
file in ``videos`` (right when the configuration's rate matched the videos).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from uprm.data.annotations import VIDEO_EXTENSIONS, AnnotationError, VideoAnnotation, _read_json, _video_stem
from uprm.data.labels import LabelledSpan, annotation_from_spans, frame_clock, videos_folder
from uprm.taxonomy import Taxonomy, load_taxonomy

__all__ = ["label_studio_video_name", "read_label_studio"]

#: the prefix Label Studio gives an uploaded file: 8 hex digits of a UUID and a dash
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")


def label_studio_video_name(value: str) -> tuple[str, str | None]:
    """``(file name, name with Label Studio's upload prefix)`` of a task's video value.

    >>> label_studio_video_name("/data/upload/3/1a2b3c4d-clip.mp4")
    ('clip.mp4', '1a2b3c4d-clip.mp4')
    >>> label_studio_video_name("/data/local-files/?d=cams%2Fgate%2Fclip.mp4")
    ('clip.mp4', None)
    """
    url = urlparse(value)
    local = parse_qs(url.query).get("d")
    path = local[0] if local else unquote(url.path or value)
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if "/data/upload/" in f"/{url.path.lstrip('/')}" and _UPLOAD_PREFIX.match(name):
        return _UPLOAD_PREFIX.sub("", name), name
    return name, None


def read_label_studio(path: str | os.PathLike, taxonomy: Taxonomy | str | os.PathLike | None = None, *,
                      fps: float | None = None, videos: str | os.PathLike | None = None) -> list[VideoAnnotation]:
    """Read a Label Studio JSON export of a video project (module doc) into one
    :class:`~uprm.data.VideoAnnotation` per labelled task.

    Args:
        path: the export (``project-3-at-2025-01-05.json``).
        taxonomy: a :class:`~uprm.taxonomy.Taxonomy` or its YAML file (default: UCF-Crime's
            13 categories and Normal); labels become its names.
        fps: the rate Label Studio counted frames at (the ``<Video frameRate>``); default:
            each video's own, from ``videos``.
        videos: the folder of the videos (their frame rates and durations, and the
            records' paths).

    Raises:
        AnnotationError: the file is not a JSON list of tasks, a task has no video, a
            range is not two frame numbers in order, a video has no frame rate, a span
            starts after the video's end, two tasks name the same video;
            :class:`~uprm.taxonomy.UnknownCategoryError` (an ``AnnotationError``) for a
            label not in the taxonomy, naming it, the task and the file.
    """
    path = Path(path)
    tax = load_taxonomy(taxonomy)
    tasks = _tasks(path)
    files = videos_folder(videos)
    out: list[VideoAnnotation] = []
    seen: dict[str, str] = {}
    unlabelled: list[str] = []
    for index, task in enumerate(tasks):
        ann = _task_annotation(task, index, path, tax, files, fps)
        if ann is None:
            unlabelled.append(str(task.get("id", f"#{index}")))
            continue
        where = ann.extra["task"]
        if ann.video_id in seen:
            raise AnnotationError(path, f"video {ann.video_id!r} is labelled twice (also in {seen[ann.video_id]})",
                                  where=f"task {where}")
        seen[ann.video_id] = f"task {where}"
        out.append(ann)
    if unlabelled:
        shown = ", ".join(unlabelled[:10]) + (", ..." if len(unlabelled) > 10 else "")
        warnings.warn(f"{path}: {len(unlabelled)} task(s) without a submitted annotation left out (task {shown})",
                      stacklevel=2)
    return out


def _tasks(path: Path) -> list[Mapping[str, Any]]:
    data = _read_json(path)
    if isinstance(data, Mapping) and "data" in data:
        data = [data]  # one task
    if not isinstance(data, list):
        raise AnnotationError(path, "expected Label Studio's JSON export: a list of tasks with 'data' and "
                              "'annotations' (not JSON-MIN or CSV)")
    for index, task in enumerate(data):
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            raise AnnotationError(path, "a task must be an object with a 'data' object (Label Studio's JSON export, "
                                  "not JSON-MIN)", where=f"task #{index}")
    return data


def _task_annotation(task: Mapping[str, Any], index: int, path: Path, tax: Taxonomy, files: Mapping[str, Path],
                     fps: float | None) -> VideoAnnotation | None:
    task_id = task.get("id", f"#{index}")
    value = _video_value(task["data"], path, f"task {task_id}")
    name, uploaded = label_studio_video_name(value)
    video_id = _video_stem(name)
    if video_id not in files and uploaded is not None and _video_stem(uploaded) in files:
        video_id = _video_stem(uploaded)  # the folder holds the file as Label Studio stored it
    where = f"task {task_id} (video {name})"
    annotation = _chosen_annotation(task.get("annotations"), path, where)
    if annotation is None:
        return None
    where += f", annotation {annotation.get('id', '?')}"
    results = annotation.get("result") or []
    if not isinstance(results, list):
        raise AnnotationError(path, "'result' must be a list", where=where)
    frames, causes = _frame_spans(results, tax, path, where)
    clock = frame_clock(video_id, files, fps, path=path, where=where, first=1, needed=bool(frames))
    spans = [LabelledSpan(label, *clock.seconds(f0, f1), cause=cause) for label, f0, f1, cause in frames]
    return annotation_from_spans(video_id, spans, tax, clock=clock, path=path, where=where, video=name, causes=causes,
                                 extra={"source": "label-studio", "task": task_id, "video_url": value})


def _video_value(data: Mapping[str, Any], path: Path, where: str) -> str:
    value = data.get("video")
    if isinstance(value, str) and value:
        return value
    named = [v for v in data.values() if isinstance(v, str) and _looks_like_video(v)]
    if len(named) == 1:
        return named[0]
    raise AnnotationError(path, "the task names no video: expected 'data.video' (<Video value=\"$video\">) or one "
                          f"value naming a video file, got keys {sorted(data)}", where=where)


def _looks_like_video(value: str) -> bool:
    name, _ = label_studio_video_name(value)
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def _chosen_annotation(annotations: Any, path: Path, where: str) -> Mapping[str, Any] | None:
    """The ground-truth annotation, else the most recently updated one; cancelled
    (skipped) annotations do not count. ``None`` when there is none."""
    if annotations is None:
        return None
    if not isinstance(annotations, list):
        raise AnnotationError(path, "'annotations' must be a list", where=where)
    usable = [a for a in annotations if isinstance(a, Mapping) and not a.get("was_cancelled")]
    if not usable:
        return None
    pool = [a for a in usable if a.get("ground_truth")] or usable
    ranked = sorted(enumerate(pool), key=lambda ia: (str(ia[1].get("updated_at") or ia[1].get("created_at") or ""),
                                                     ia[0]))
    return ranked[-1][1]


def _frame_spans(results: Sequence[Any], tax: Taxonomy, path: Path,
                 where: str) -> tuple[list[tuple[str, int, int, str | None]], list[str]]:
    """The labelled frame spans of one annotation, ``(label, first, last, cause)`` (the
    taxonomy's name, inclusive frames, the region's cause), and the causes that belong
    to no region."""
    texts: dict[str, list[str]] = {}
    for r in results:
        if isinstance(r, Mapping) and r.get("type") == "textarea" and isinstance(r.get("value"), Mapping):
            lines = r["value"].get("text") or []
            texts.setdefault(str(r.get("id")), []).extend(str(t) for t in (lines if isinstance(lines, list) else [lines]))
    spans: list[tuple[str, int, int, str | None]] = []
    regions: set[str] = set()
    for j, r in enumerate(results):
        if not isinstance(r, Mapping) or not isinstance(r.get("value"), Mapping):
            raise AnnotationError(path, "a result must be an object with a 'value' object", where=f"{where}, result #{j}")
        here = f"{where}, result {r.get('id', f'#{j}')!r}"
        labels, frames = _region(r, path, here)
        if not labels:
            continue
        regions.add(str(r.get("id")))
        cause = "; ".join(texts.get(str(r.get("id")), [])) or None
        for label in labels:
            name = tax.check(label, here, path=path)
            spans += [(name, f0, f1, cause) for f0, f1 in frames]
    loose = [t for rid, items in texts.items() if rid not in regions for t in items]
    return spans, loose


def _region(result: Mapping[str, Any], path: Path, where: str) -> tuple[list[str], list[tuple[int, int]]]:
    """``(labels, inclusive frame spans)`` of one result; ``([], [])`` for a result
    without labels (a text area, a choice)."""
    value = result["value"]
    if "timelinelabels" in value or result.get("type") == "timelinelabels":
        return _labels(value.get("timelinelabels"), path, where), _ranges(value.get("ranges"), path, where)
    if result.get("type") == "videorectangle":
        labels = _labels(value.get("labels") or [], path, where)
        return labels, (_lifespans(value, path, where) if labels else [])
    carried = [k for k, v in value.items() if k.endswith("labels") and v]
    if carried:
        raise AnnotationError(path, f"a {result.get('type')!r} result carries labels ({carried[0]}) but is not a video "
                              "timeline label; label videos with <TimelineLabels> (or <VideoRectangle> with <Labels>)",
                              where=where)
    return [], []


def _labels(labels: Any, path: Path, where: str) -> list[str]:
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise AnnotationError(path, f"the labels must be a list of names, got {labels!r}", where=where)
    return labels


def _frame(value: Any, path: Path, where: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < 0):
        raise AnnotationError(path, f"a frame number must be a whole number >= 0, got {value!r}", where=where)
    return max(int(value), 1)  # frames count from 1; a 0 is read as the first frame


def _ranges(ranges: Any, path: Path, where: str) -> list[tuple[int, int]]:
    if not isinstance(ranges, list) or not ranges:
        raise AnnotationError(path, f"'ranges' must be a non-empty list of {{start, end}} frames, got {ranges!r}",
                              where=where)
    out = []
    for k, rng in enumerate(ranges):
        if not isinstance(rng, Mapping) or "start" not in rng:
            raise AnnotationError(path, f"a range must be {{start, end}} in frames, got {rng!r}", where=f"{where}, "
                                  f"range {k}")
        start = _frame(rng["start"], path, where)
        end = _frame(rng.get("end") if rng.get("end") is not None else rng["start"], path, where)
        if end < start:
            raise AnnotationError(path, f"the range ends (frame {end}) before it starts (frame {start})",
                                  where=f"{where}, range {k}")
        out.append((start, end))
    return out


def _lifespans(value: Mapping[str, Any], path: Path, where: str) -> list[tuple[int, int]]:
    """The frames a video rectangle is on screen, as Label Studio's ``isInLifespan``
    decides: from an enabled keyframe through the next disabled one; after an enabled
    last keyframe, to ``framesCount``."""
    sequence = value.get("sequence")
    if not isinstance(sequence, list) or not sequence:
        raise AnnotationError(path, "a video rectangle needs a non-empty 'sequence' of keyframes", where=where)
    keyframes = sorted((_frame(k.get("frame") if isinstance(k, Mapping) else k, path, where),
                        bool(k.get("enabled", True))) for k in sequence if isinstance(k, Mapping))
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for frame, enabled in keyframes:
        if enabled and start is None:
            start = frame
        elif not enabled:
            spans.append((frame if start is None else start, frame))
            start = None
    if start is not None:
        last = value.get("framesCount")
        end = int(last) if isinstance(last, (int, float)) and not isinstance(last, bool) and last >= start else None
        spans.append((start, end if end is not None else keyframes[-1][0]))
    return spans
