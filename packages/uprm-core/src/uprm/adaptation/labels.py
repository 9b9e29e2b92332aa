"""A site's labels, read and checked before anything runs: the ActivityNet ground truth,
every label against the taxonomy, every video's file, every video's duration.

The labels are ActivityNet ground truth (``{"database": {video_id: {"annotations":
[{"segment": [s, e], "label": L}], "duration": d}}}``), as ``uprm data label-studio`` /
``cvat`` and the service's ``GET /v1/labels?format=activitynet`` write it
(:func:`uprm.data.read_activitynet`). Each label is checked with
:meth:`uprm.taxonomy.Taxonomy.check` (a label not in the taxonomy is an error naming it,
the video and the file) and becomes the taxonomy's name; a video without annotations is
Normal; segments under a label that is not a threat (Normal) are not threat time. The
file's own ``subset`` is ignored: the adaptation makes its own split
(:mod:`uprm.adaptation.split`).

Plain Python: a video is opened (``probe_video``) only when its duration is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from uprm.data.annotations import NORMAL, VideoAnnotation, find_videos, read_activitynet
from uprm.errors import AnnotationError
from uprm.taxonomy import Taxonomy

__all__ = ["LabelledVideos", "read_labels"]

#: where the labels come from, said in the errors
_SOURCES = "ActivityNet ground truth, as `uprm data label-studio`/`cvat` or GET /v1/labels?format=activitynet write it"


@dataclass(frozen=True)
class LabelledVideos:
    """The checked labels: one annotation per video (the taxonomy's category names,
    durations filled in) and each video's file."""

    annotations: list[VideoAnnotation]
    files: dict[str, Path]

    @property
    def categories(self) -> dict[str, list[str]]:
        """``{category: [video ids]}`` in the labels' order."""
        out: dict[str, list[str]] = {}
        for ann in self.annotations:
            out.setdefault(ann.category, []).append(ann.video_id)
        return out


def _checked(ann: VideoAnnotation, taxonomy: Taxonomy, path: Path) -> VideoAnnotation:
    """``ann`` with its labels checked and named as the taxonomy names them."""
    where = f"database.{ann.video_id}"
    if not ann.segments:  # no annotation: nothing happens in this video
        return replace(ann, category=NORMAL, split=None)
    for label in ann.extra.get("labels") or [ann.category]:
        taxonomy.check(label, f"{where}.annotations", path=path)
    category = taxonomy.check(ann.category, f"{where}.annotations", path=path)
    threat = taxonomy.is_threat(category)
    return replace(ann, category=category if threat else NORMAL, segments=list(ann.segments) if threat else [],
                   split=None)


def _files(annotations: list[VideoAnnotation], videos: Path, labels: Path) -> dict[str, Path]:
    """Each labelled video's file in ``videos``; all the missing ones named at once."""
    if not videos.is_dir():
        raise AnnotationError(videos, "no such videos folder (give --videos DIR, the folder of the labelled videos)")
    found = find_videos(videos)
    missing = [a.video_id for a in annotations if a.video_id not in found]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise AnnotationError(labels, f"{len(missing)} labelled video(s) have no file in {videos} (looked for "
                              f"<video_id>.mp4/.avi/.mkv/... in it and its sub-folders): {shown}")
    return {a.video_id: found[a.video_id] for a in annotations}


def _with_duration(ann: VideoAnnotation, file: Path) -> VideoAnnotation:
    if ann.duration is not None and ann.duration > 0:
        return ann
    from uprm.data.video import probe_video

    return replace(ann, duration=float(probe_video(file).duration))


def read_labels(labels: str | os.PathLike, videos: str | os.PathLike, taxonomy: Taxonomy) -> LabelledVideos:
    """The labels of ``labels`` checked against ``taxonomy``, with each video's file
    from ``videos`` and its duration (from the labels, else the file).

    Raises:
        uprm.errors.AnnotationError: the file is missing, is not ActivityNet ground truth
            or labels no video; a video has no file in ``videos`` (all such videos named).
        uprm.taxonomy.UnknownCategoryError: a label is not in the taxonomy (names the
            label, the video and the file).
        uprm.errors.VideoError: a video whose duration had to be read is not a video.
    """
    path = Path(labels)
    if not path.is_file():
        raise AnnotationError(path, f"no such labels file (expected {_SOURCES})")
    annotations = [_checked(a, taxonomy, path) for a in read_activitynet(path)]
    if not annotations:
        raise AnnotationError(path, f"no labelled video in the labels (expected {_SOURCES})")
    files = _files(annotations, Path(videos), path)
    annotations = [_with_duration(a, files[a.video_id]) for a in annotations]
    return LabelledVideos(annotations, files)
