"""Labels from CVAT: the "CVAT for video 1.1" XML export → :class:`~uprm.data.VideoAnnotation`.

**The layout read** (CVAT's documentation, "XML annotation format", version 1.1,
site/content/en/docs/other/xml_format.md; its exporter and importer,
cvat/apps/dataset_manager/formats/cvat.py and bindings.py, cvat-ai/cvat)::

    <annotations>
      <version>1.1</version>
      <meta>
        <task>
          <id>5</id><name>gate camera</name><size>300</size><mode>interpolation</mode>
          <start_frame>0</start_frame><stop_frame>299</stop_frame><frame_filter></frame_filter>
          <original_size><width>640</width><height>480</height></original_size>
          <source>gate.mp4</source>
        </task>
      </meta>
      <track id="0" label="Fighting" source="manual">
        <box frame="30" outside="0" occluded="0" keyframe="1" xtl="..." .../>
        <box frame="90" outside="1" occluded="0" keyframe="1" xtl="..." .../>
      </track>
      <tag frame="120" label="Vandalism" source="manual"/>
    </annotations>

The export is the ``annotations.xml`` file or the ZIP CVAT downloads (which holds it).

- **Frames** are the video's own frame numbers, counted from 0 (CVAT writes a task frame
  ``k`` as ``start_frame + k × step``, ``step`` from ``<frame_filter>step=N</frame_filter>``).
  A frame shows for ``step / fps`` seconds, so the frames ``[f0, f1]`` are
  ``[f0 / fps, (f1 + step) / fps]`` seconds.
- **A track** (``<track label=...>`` with ``<box>``, ``<polygon>``, ``<points>``,
  ``<skeleton>``... children, any shape) is on screen, as CVAT interpolates it, from a
  shape with ``outside="0"`` up to the frame before the next shape with
  ``outside="1"``; after its last shape, when that one is not outside, to the task's
  last frame (``<stop_frame>``). A skeleton is outside when all its points are.
- **Tags**: ``<tag frame=... label=...>`` elements, and the tags (and shapes) of the
  ``<image>`` elements of a "CVAT for images 1.1" export of the same task (frame from
  the image's ``frame_NNNNNN`` name, else its id), label those frames. Frames of one
  label that follow each other (one ``step`` apart) become one segment.
- **The video** is ``<source>`` (CVAT writes the video's file name there), else the
  task's ``<name>``; its id is the file's stem. A project export (``<meta><project>``
  with its ``<tasks>``) gives one video per task: each ``<track>`` names its
  ``task_id``.
- A task without labels is Normal for the whole video (labels named Normal are not
  threat time).

**Frame rate**: the XML does not carry it. ``fps`` (``--fps``) when given, else each
video's own rate read from its file in ``videos``; neither is an error naming the video.

The XML is read with defusedxml when it is installed (it refuses entity expansion and
external references); otherwise with the standard library's ``xml.etree`` (its expat
does not fetch external entities; an export is a file the user made with CVAT).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.data.annotations import AnnotationError, VideoAnnotation, _video_stem
from uprm.data.labels import LabelledSpan, annotation_from_spans, frame_clock, videos_folder
from uprm.taxonomy import Taxonomy, load_taxonomy

try:  # refuses entity expansion ("billion laughs") and external references
    from defusedxml.ElementTree import ParseError, fromstring
except ImportError:  # pragma: no cover - the standard library; expat fetches no external entity
    from xml.etree.ElementTree import ParseError, fromstring

__all__ = ["read_cvat"]

_SHAPES = ("box", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton")
_FRAME_NAME = re.compile(r"frame_(\d+)")


@dataclass
class _Task:
    """One CVAT task (one video) and the labelled frames found for it."""

    id: str
    name: str
    start: int
    stop: int | None
    step: int
    size: int | None
    tracks: list[tuple[str, str, list[tuple[int, bool]]]] = field(default_factory=list)  # (label, track id, shapes)
    frames: dict[str, set[int]] = field(default_factory=dict)  # label -> tagged frames
    where: dict[str, str] = field(default_factory=dict)  # label -> where it was first seen

    @property
    def last_frame(self) -> int | None:
        if self.stop is not None:
            return self.stop
        return self.start + (self.size - 1) * self.step if self.size else None


def read_cvat(path: str | os.PathLike, taxonomy: Taxonomy | str | os.PathLike | None = None, *,
              fps: float | None = None, videos: str | os.PathLike | None = None) -> list[VideoAnnotation]:
    """Read a CVAT for video 1.1 export (module doc) into one
    :class:`~uprm.data.VideoAnnotation` per task (video).

    Args:
        path: ``annotations.xml`` or the ZIP CVAT downloads.
        taxonomy: a :class:`~uprm.taxonomy.Taxonomy` or its YAML file (default: UCF-Crime's
            13 categories and Normal); labels become its names.
        fps: the videos' frame rate; default: each video's own, from ``videos``.
        videos: the folder of the videos (frame rates, durations, the records' paths).

    Raises:
        AnnotationError: not a CVAT XML export, a task that is not a video, a frame that
            is not a number, a video without a frame rate, a span after the video's end,
            two tasks of one video; :class:`~uprm.taxonomy.UnknownCategoryError` (an
            ``AnnotationError``) for a label not in the taxonomy, naming it, the track or
            tag and the file.
    """
    path = Path(path)
    tax = load_taxonomy(taxonomy)
    root = _root(path)
    tasks = _tasks(root, path)
    _collect(root, tasks, tax, path)
    files = videos_folder(videos)
    out: list[VideoAnnotation] = []
    seen: dict[str, str] = {}
    for task in tasks.values():
        ann = _annotation(task, tax, files, fps, path)
        if ann.video_id in seen:
            raise AnnotationError(path, f"video {ann.video_id!r} is the video of two tasks ({seen[ann.video_id]} and "
                                  f"{task.id})", where=f"task {task.id}")
        seen[ann.video_id] = task.id
        out.append(ann)
    return out


def _root(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(path, "no such file") from None
    except IsADirectoryError:
        raise AnnotationError(path, "is a folder; give CVAT's annotations.xml or the ZIP it downloads") from None
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "annotations.xml"]
            if not names:
                raise AnnotationError(path, "the ZIP holds no annotations.xml (is it a CVAT export?)")
            raw = zf.read(sorted(names, key=len)[0])
    try:
        root = fromstring(raw)
    except ParseError as exc:
        line = getattr(exc, "position", (None,))[0]
        raise AnnotationError(path, f"not valid XML ({exc})", line=line) from None
    except Exception as exc:  # defusedxml's refusals (entities, external references)
        raise AnnotationError(path, f"refused to read the XML ({type(exc).__name__}: {exc})") from None
    if root.tag != "annotations" or root.find("meta") is None:
        raise AnnotationError(path, f"not a CVAT XML export (the root is <{root.tag}>, expected <annotations> with "
                              "<meta>)")
    return root


def _int(text: Any, path: Path, where: str, default: int | None = None) -> int | None:
    if text is None or not str(text).strip():
        return default
    try:
        return int(str(text).strip())
    except ValueError:
        raise AnnotationError(path, f"expected a whole number, got {text!r}", where=where) from None


def _tasks(root: Any, path: Path) -> dict[str, _Task]:
    """The export's tasks by id: ``<meta><task>``, ``<meta><job>`` or the tasks of
    ``<meta><project>``."""
    meta = root.find("meta")
    nodes = meta.findall("project/tasks/task") or [n for n in (meta.find("task"), meta.find("job")) if n is not None]
    if not nodes:
        raise AnnotationError(path, "the <meta> names no <task> (nor a <project> with <tasks>)")
    tasks: dict[str, _Task] = {}
    for node in nodes:
        task = _task(node, path)
        tasks[task.id] = task
    return tasks


def _task(node: Any, path: Path) -> _Task:
    task_id = (node.findtext("id") or "").strip() or "?"
    where = f"task {task_id}"
    mode = (node.findtext("mode") or "interpolation").strip()
    if mode != "interpolation":
        raise AnnotationError(path, f"the task is an image task (mode {mode!r}), not a video", where=where)
    name = (node.findtext("source") or "").strip() or (node.findtext("name") or "").strip()
    if not name:
        raise AnnotationError(path, "the task names no video (<source> or <name>)", where=where)
    step_text = node.findtext("frame_filter") or ""
    match = re.search(r"step\s*=\s*(\d+)", step_text)
    step = int(match.group(1)) if match else 1
    if step < 1:
        raise AnnotationError(path, f"the frame step must be >= 1, got {step_text!r}", where=where)
    return _Task(id=task_id, name=name, start=_int(node.findtext("start_frame"), path, where, 0) or 0,
                 stop=_int(node.findtext("stop_frame"), path, where), step=step,
                 size=_int(node.findtext("size"), path, where))


def _task_of(el: Any, tasks: Mapping[str, _Task], path: Path, where: str) -> _Task:
    task_id = el.get("task_id")
    if task_id is None:
        if len(tasks) == 1:
            return next(iter(tasks.values()))
        raise AnnotationError(path, "a project export's element names no task_id", where=where)
    task = tasks.get(task_id)
    if task is None:
        raise AnnotationError(path, f"task_id {task_id} is not a task of the <meta>", where=where)
    return task


def _collect(root: Any, tasks: Mapping[str, _Task], tax: Taxonomy, path: Path) -> None:
    """Every track's shapes and every tagged frame, per task, labels checked."""
    for i, el in enumerate(root.findall("track")):
        where = f"track {el.get('id', i)}"
        task = _task_of(el, tasks, path, where)
        label = tax.check(el.get("label", ""), f"{where} (task {task.id}, video {task.name})", path=path)
        shapes = [(_int(s.get("frame"), path, f"{where}, <{s.tag}>"), _outside(s)) for s in el if s.tag in _SHAPES]
        task.tracks.append((label, where, sorted((f, out) for f, out in shapes if f is not None)))
    for i, el in enumerate(root.findall("tag")):
        where = f"tag #{i} (frame {el.get('frame')})"
        task = _task_of(el, tasks, path, where)
        frame = _int(el.get("frame"), path, where)
        if frame is None:
            raise AnnotationError(path, "a <tag> needs a frame", where=where)
        _tag(task, el.get("label", ""), frame, tax, path, where)
    for image in root.findall("image"):
        where = f"image {image.get('id')} ({image.get('name')})"
        task = _task_of(image, tasks, path, where)
        frame = _image_frame(image, task, path, where)
        for el in image:
            if el.tag == "tag" or el.tag in _SHAPES:
                _tag(task, el.get("label", ""), frame, tax, path, f"{where}, <{el.tag}>")


def _outside(shape: Any) -> bool:
    if shape.tag == "skeleton" and shape.get("outside") is None:
        points = [p for p in shape if p.tag == "points"]
        return bool(points) and all(p.get("outside") == "1" for p in points)
    return shape.get("outside") == "1"


def _image_frame(image: Any, task: _Task, path: Path, where: str) -> int:
    match = _FRAME_NAME.fullmatch(os.path.splitext(image.get("name") or "")[0])
    if match:
        return int(match.group(1))
    index = _int(image.get("id"), path, where)
    if index is None:
        raise AnnotationError(path, "an <image> needs an id", where=where)
    return task.start + index * task.step


def _tag(task: _Task, label: str, frame: int, tax: Taxonomy, path: Path, where: str) -> None:
    name = tax.check(label, f"{where} (task {task.id}, video {task.name})", path=path)
    task.frames.setdefault(name, set()).add(frame)
    task.where.setdefault(name, where)


def _track_frames(shapes: list[tuple[int, bool]], last: int | None, step: int) -> list[tuple[int, int]]:
    """The inclusive frame spans a track is on screen (module doc)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for frame, outside in shapes:
        if not outside and start is None:
            start = frame
        elif outside and start is not None:
            if frame > start:
                spans.append((start, frame - step))
            start = None
    if start is not None:
        end = last if last is not None and last >= start else shapes[-1][0]
        spans.append((start, end))
    return spans


def _runs(frames: Iterable[int], step: int) -> list[tuple[int, int]]:
    """Tagged frames grouped into runs of frames one ``step`` apart."""
    runs: list[tuple[int, int]] = []
    for f in sorted(frames):
        if runs and f - runs[-1][1] <= step:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def _annotation(task: _Task, tax: Taxonomy, files: Mapping[str, Path], fps: float | None,
                path: Path) -> VideoAnnotation:
    frames = [(label, f0, f1) for label, _, shapes in task.tracks for f0, f1 in
              _track_frames(shapes, task.last_frame, task.step)]
    frames += [(label, f0, f1) for label, tagged in task.frames.items() for f0, f1 in _runs(tagged, task.step)]
    name = task.name.replace("\\", "/").rsplit("/", 1)[-1]
    video_id = _video_stem(name)
    where = f"task {task.id} (video {name})"
    last = task.last_frame
    clock = frame_clock(video_id, files, fps, path=path, where=where, step=task.step, needed=bool(frames))
    if clock.duration is None and clock.fps is not None and last is not None:  # no file: the task's last frame
        clock = dataclasses.replace(clock, duration=(last + task.step) / clock.fps)
    spans = [LabelledSpan(label, *clock.seconds(f0, f1)) for label, f0, f1 in frames]
    return annotation_from_spans(video_id, spans, tax, clock=clock, path=path, where=where, video=name,
                                 extra={"source": "cvat", "task": task.id})
