"""What the label imports share (:mod:`uprm.data.labelstudio`, :mod:`uprm.data.cvat`):
frame numbers to seconds, spans merged, one :class:`~uprm.data.VideoAnnotation` per video.

A labelling tool gives, for each video, labels on spans of frames. Here:

- **frames become seconds** (:class:`FrameClock`): a frame shows from its time until the
  next frame's, so the inclusive frame span ``[f0, f1]`` is ``[t(f0), t(f1) + step/fps]``.
  The frame rate is ``fps`` when given (the rate the tool counted frames at), else the
  video file's own, read from the ``videos`` folder (:func:`~uprm.data.probe_video`);
  with neither the import stops, naming the video. The duration comes from the file when
  there is one (else from what the export says), and segments are cut at it.
- **labels are checked** against the taxonomy (:meth:`uprm.taxonomy.Taxonomy.check`: a
  label not in it is an error naming the label, where it was and the export file) and
  become the taxonomy's names.
- **one annotation per video** (:func:`annotation_from_spans`): spans of a threat label
  that overlap or touch are merged; the video's ``segments`` are the union of its threat
  spans; its ``category`` is the threat label that covers the most time (ties: the
  taxonomy's order); ``extra["spans"]`` keeps every span with its own label and cause.
  A video without a threat label is ``Normal`` for the whole video (spans labelled
  Normal are not threat time).

This module is plain Python (no torch); it opens a video only to read its frame rate and
duration, through ``probe_video`` inside the function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.data.annotations import NORMAL, AnnotationError, VideoAnnotation, find_videos
from uprm.taxonomy import Taxonomy

__all__ = ["FrameClock", "LabelledSpan", "annotation_from_spans", "frame_clock", "merge_spans", "videos_folder"]


@dataclass(frozen=True)
class LabelledSpan:
    """One labelled span of a video, in seconds; ``label`` is the taxonomy's name."""

    label: str
    start: float
    end: float
    cause: str | None = None


@dataclass(frozen=True)
class FrameClock:
    """How one video's frame numbers become seconds.

    Attributes:
        fps: frames per second the tool counted at (``None``: unknown, for a video
            without labelled frames).
        first: the number of the video's first frame (Label Studio: 1, CVAT: 0).
        step: video frames per labelled frame (CVAT's frame step; 1 elsewhere).
        duration: the video's length in seconds, when known.
        fps_source: ``"fps"`` (given) or ``"video"`` (read from the file).
        file: the video file found in the videos folder, if any.
    """

    fps: float | None
    first: int = 0
    step: int = 1
    duration: float | None = None
    fps_source: str = "fps"
    file: Path | None = None

    def seconds(self, f0: int, f1: int) -> tuple[float, float]:
        """The inclusive frame span ``[f0, f1]`` in seconds: from the first frame's time
        to the end of the last one."""
        if self.fps is None:
            raise ValueError("this clock has no frame rate")
        return (f0 - self.first) / self.fps, (f1 - self.first + self.step) / self.fps


def videos_folder(videos: str | os.PathLike | None) -> dict[str, Path]:
    """``{stem: path}`` of the videos under ``videos`` (``{}`` without a folder)."""
    return find_videos(videos) if videos is not None else {}


def frame_clock(video_id: str, files: Mapping[str, Path], fps: float | None, *, path: Path, where: str,
                first: int = 0, step: int = 1, duration: float | None = None, needed: bool = True) -> FrameClock:
    """The clock of one video: ``fps`` when given, else its file's own rate; the file's
    duration when there is a file, else ``duration``.

    Raises:
        AnnotationError: the video has labelled frames (``needed``) but neither ``fps``
            nor a file with a frame rate (names the video).
    """
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    file = files.get(video_id)
    rate, source = fps, "fps"
    if file is not None:
        from uprm.data.video import probe_video

        info = probe_video(file)
        duration = info.duration if info.duration > 0 else duration
        if rate is None and info.fps > 0:
            rate, source = info.fps, "video"
    if rate is None and not needed:
        return FrameClock(fps=None, first=first, step=step, duration=duration, fps_source="none", file=file)
    if rate is None:
        found = f"{file} has no frame rate" if file is not None else (
            f"no file named {video_id}.* in the videos folder" if files else "no videos folder")
        raise AnnotationError(path, f"cannot turn frame numbers into seconds for video {video_id!r} ({found}): give "
                              "the frame rate the tool counted frames at (--fps / fps=) or a folder holding the "
                              "video (--videos / videos=)", where=where)
    return FrameClock(fps=float(rate), first=first, step=step, duration=duration, fps_source=source, file=file)


def merge_spans(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Spans that overlap or touch merged, in order of start."""
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _within(spans: Sequence[LabelledSpan], duration: float | None, path: Path, where: str) -> list[LabelledSpan]:
    """Spans cut at the video's end; one that starts at or after it is an error."""
    if duration is None:
        return list(spans)
    out = []
    for span in spans:
        if span.start >= duration:
            raise AnnotationError(path, f"the {span.label} span {span.start:.2f}-{span.end:.2f} s starts at or after "
                                  f"the video's end ({duration:.2f} s): is the frame rate right?", where=where)
        out.append(LabelledSpan(span.label, span.start, min(span.end, duration), span.cause))
    return out


def annotation_from_spans(video_id: str, spans: Sequence[LabelledSpan], taxonomy: Taxonomy, *, clock: FrameClock,
                          path: Path, where: str, video: str | None = None, causes: Sequence[str] = (),
                          extra: Mapping[str, Any] | None = None) -> VideoAnnotation:
    """One video's annotation (module doc): threat spans merged per label, the union as
    segments, the label covering the most time as the category, Normal without threats.
    ``causes`` are the video's own (e.g. a free-text field of the whole task); each threat
    span's cause comes first."""
    spans = _within(spans, clock.duration, path, where)
    threats = [s for s in spans if taxonomy.is_threat(s.label)]
    per_label: dict[str, list[tuple[float, float]]] = {}
    for span in threats:
        per_label.setdefault(span.label, []).append((span.start, span.end))
    merged = {label: merge_spans(items) for label, items in per_label.items()}
    order = {name: i for i, name in enumerate(taxonomy.names)}
    total = {label: sum(e - s for s, e in items) for label, items in merged.items()}
    category = min(total, key=lambda lb: (-total[lb], order[lb])) if total else NORMAL
    reasons = [s.cause for s in threats if s.cause] + [c for c in causes if c]
    info: dict[str, Any] = {
        "fps": clock.fps, "fps_source": clock.fps_source,
        "spans": [{"label": s.label, "start": round(s.start, 3), "end": round(s.end, 3),
                   **({"cause": s.cause} if s.cause else {})} for s in sorted(spans, key=lambda s: s.start)],
        **(extra or {}),
    }
    if len(merged) > 1:
        info["labels"] = sorted(merged, key=lambda lb: order[lb])
    return VideoAnnotation(
        video_id=video_id,
        category=category,
        segments=[(round(s, 3), round(e, 3)) for s, e in merge_spans(x for items in merged.values() for x in items)],
        causes=list(dict.fromkeys(reasons)) if threats else [],
        duration=clock.duration,
        video=str(clock.file) if clock.file is not None else video,
        extra=info,
    )
