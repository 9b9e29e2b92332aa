"""Reading RelTR-style scene-graph JSON (docs/formats.md, "Scene graphs") for a clip.

One file per video; boxes ``[x1, y1, x2, y2]`` in pixels of the source video::

    {"video_id": "Stealing001", "width": 320, "height": 240,
     "frames": [{"frame_index": 12, "timestamp": 0.4,
                 "objects": [{"label": "person", "box": [10, 20, 60, 200], "score": 0.9}],
                 "triplets": [{"subject": {"label": "person", "box": [10, 20, 60, 200]},
                               "predicate": "holding",
                               "object": {"label": "bag", "box": [50, 120, 80, 160]},
                               "score": 0.87}]}]}

What the reader does, and what it refuses:

* **Validation.** Anything not in this layout is a :class:`SceneGraphError` naming the
  file and the field (``frames[3].triplets[0].object.box``): malformed JSON (with line
  and column), a missing or mistyped field, a non-integer or negative ``frame_index``,
  a ``frame_index`` given twice, a box that is not four finite numbers, a box of
  negative size (``x2 < x1`` or ``y2 < y1``), a score outside ``[0, 1]``.
* **Boxes outside the frame** are clamped to it with a :class:`SceneGraphWarning`
  naming the fields; a box wholly outside is dropped (with its triplets), also with a
  warning. The frame size is the file's ``width``/``height``, else the clip's
  ``meta["source_size"]``, else the clip's own frame size.
* **Nodes.** ``objects`` and the subjects/objects of ``triplets`` are merged into one
  node when they have the same label and IoU ≥ 0.7 (RelTR gives each triplet its own,
  slightly different boxes for the same thing); a node keeps its first box and the
  best score. An entity without a ``score`` takes its triplet's (objects: 1.0).
* **Frame matching.** Clip frame ``i`` (``clip.meta["frame_indices"][i]``, else
  ``round(timestamp × meta["fps"])``) takes the file's frame of the same index, else
  the nearest one within half the clip's sampling step; without either meta key the
  frames are matched by ``timestamp``. A clip frame with no graph has no objects —
  that is normal; a clip none of whose frames is in the file gets a warning (a wrong
  file, most likely).

Parsed files are cached by (path, modification time, size), so the windows of one long
video read their file once.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
import os
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.errors import UPRMError
from uprm.types import VideoClip
from uprm.utils import atomic_write_json
from uprm_expert_relation.graph import FrameGraph, GraphObject, Relation, iou
from uprm_expert_relation.vocab import normalise

__all__ = [
    "SceneGraphError",
    "SceneGraphFile",
    "SceneGraphNotFoundError",
    "SceneGraphWarning",
    "clip_frame_graphs",
    "match_frames",
    "read_scene_graph",
    "write_scene_graph",
]

#: IoU above which two boxes of the same label in one frame are one node
MERGE_IOU = 0.7


class SceneGraphError(UPRMError, ValueError):
    """A scene-graph file that does not follow docs/formats.md. Names the file and the field."""

    def __init__(self, path: str | os.PathLike, field: str | None, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {problem}")


class SceneGraphNotFoundError(SceneGraphError, FileNotFoundError):
    """A scene-graph file that is not there (a :class:`SceneGraphError` and a
    :class:`FileNotFoundError`)."""


class SceneGraphWarning(UserWarning):
    """Something in a scene-graph file was repaired (a clamped box) or looks wrong."""


@dataclass(frozen=True)
class Entity:
    label: str
    box: tuple[float, float, float, float]  # pixels
    score: float | None
    field: str


@dataclass(frozen=True)
class Triplet:
    subject: Entity
    predicate: str
    object: Entity
    score: float
    field: str


@dataclass(frozen=True)
class SceneFrame:
    frame_index: int
    timestamp: float | None
    objects: tuple[Entity, ...]
    triplets: tuple[Triplet, ...]
    field: str


@dataclass(frozen=True)
class SceneGraphFile:
    """A validated scene-graph file: ``frames`` by frame index (boxes still in pixels)."""

    path: str
    video_id: str | None
    width: float | None
    height: float | None
    frames: dict[int, SceneFrame]

    @functools.cached_property
    def sorted_indices(self) -> tuple[list[int], list[float]]:
        """The frame indices in order, and the same as floats (for nearest-frame search),
        computed once per file: matching a clip then costs O(F log N), not O(N)."""
        keys = sorted(self.frames)
        return keys, [float(k) for k in keys]

    @functools.cached_property
    def sorted_times(self) -> tuple[list[float], dict[float, int]]:
        """The frames' timestamps in order, and timestamp -> frame index."""
        timed = {f.timestamp: i for i, f in self.frames.items() if f.timestamp is not None}
        return sorted(timed), timed


# ---------------------------------------------------------------------- validation
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(path: str, field: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise SceneGraphError(path, field, f"must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise SceneGraphError(path, field, f"must lie in {bounds}, got {value!r}")
    return float(value)


def _string(path: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not normalise(value):
        raise SceneGraphError(path, field, f"must be a non-empty string, got {value!r}")
    return value


def _list(path: str, field: str, value: Any) -> list:
    if not isinstance(value, list):
        raise SceneGraphError(path, field, f"must be a list, got {type(value).__name__}")
    return value


def _object(path: str, field: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise SceneGraphError(path, field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _box(path: str, field: str, value: Any) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4:
        raise SceneGraphError(path, field, f"must be [x1, y1, x2, y2] (four numbers), got {value!r}")
    x1, y1, x2, y2 = (_number(path, f"{field}[{i}]", v) for i, v in enumerate(value))
    if x2 < x1:
        raise SceneGraphError(path, field, f"x2 < x1 (negative width): {value!r}; boxes are [x1, y1, x2, y2]")
    if y2 < y1:
        raise SceneGraphError(path, field, f"y2 < y1 (negative height): {value!r}; boxes are [x1, y1, x2, y2]")
    return (x1, y1, x2, y2)


def _entity(path: str, field: str, value: Any, score_required: bool = False) -> Entity:
    obj = _object(path, field, value)
    if "label" not in obj:
        raise SceneGraphError(path, f"{field}.label", "is missing")
    if "box" not in obj:
        raise SceneGraphError(path, f"{field}.box", "is missing")
    label = _string(path, f"{field}.label", obj["label"])
    box = _box(path, f"{field}.box", obj["box"])
    score = obj.get("score")
    if score is not None:
        score = _number(path, f"{field}.score", score, 0.0, 1.0)
    return Entity(label, box, score, field)


def _parse_triplet(path: str, field: str, t: Any) -> Triplet:
    t = _object(path, field, t)
    for key in ("subject", "predicate", "object"):
        if key not in t:
            raise SceneGraphError(path, f"{field}.{key}", "is missing")
    score = 1.0 if t.get("score") is None else _number(path, f"{field}.score", t["score"], 0.0, 1.0)
    return Triplet(
        _entity(path, f"{field}.subject", t["subject"]),
        _string(path, f"{field}.predicate", t["predicate"]),
        _entity(path, f"{field}.object", t["object"]),
        score,
        field,
    )


def _parse_frame(path: str, field: str, frame: Any) -> SceneFrame:
    frame = _object(path, field, frame)
    if "frame_index" not in frame:
        raise SceneGraphError(path, f"{field}.frame_index", "is missing")
    index = frame["frame_index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise SceneGraphError(path, f"{field}.frame_index", f"must be a non-negative integer, got {index!r}")
    timestamp = frame.get("timestamp")
    if timestamp is not None:
        timestamp = _number(path, f"{field}.timestamp", timestamp, 0.0)
    objects = _list(path, f"{field}.objects", frame.get("objects", []))
    triplets = _list(path, f"{field}.triplets", frame.get("triplets", []))
    return SceneFrame(
        index,
        timestamp,
        tuple(_entity(path, f"{field}.objects[{i}]", o) for i, o in enumerate(objects)),
        tuple(_parse_triplet(path, f"{field}.triplets[{i}]", t) for i, t in enumerate(triplets)),
        field,
    )


def _parse(path: str, data: Any) -> SceneGraphFile:
    top = _object(path, "top level", data)
    if "frames" not in top:
        raise SceneGraphError(path, "frames", "is missing (a scene-graph file holds {'frames': [...]})")
    video_id = top.get("video_id")
    if video_id is not None and not isinstance(video_id, str):
        raise SceneGraphError(path, "video_id", f"must be a string, got {video_id!r}")
    size = {key: _number(path, key, top[key], 1.0) for key in ("width", "height") if top.get(key) is not None}
    frames: dict[int, SceneFrame] = {}
    for fi, raw in enumerate(_list(path, "frames", top["frames"])):
        frame = _parse_frame(path, f"frames[{fi}]", raw)
        index = frame.frame_index
        if index in frames:
            raise SceneGraphError(
                path, f"{frame.field}.frame_index", f"frame {index} is given twice (also in {frames[index].field})"
            )
        frames[index] = frame
    return SceneGraphFile(path, video_id, size.get("width"), size.get("height"), frames)


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int, size: int) -> SceneGraphFile:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as e:
        raise SceneGraphError(path, None, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise SceneGraphError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise SceneGraphError(path, None, f"cannot be read ({e.strerror or e})") from None
    return _parse(path, data)


def read_scene_graph(path: str | os.PathLike) -> SceneGraphFile:
    """Read and validate a scene-graph file (cached while the file is unchanged).

    Raises:
        SceneGraphNotFoundError: (also a ``FileNotFoundError``) naming the path.
        SceneGraphError: naming the file and the field at fault, or why it cannot be read.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SceneGraphNotFoundError(p, None, "no such scene-graph file") from None
    except OSError as e:
        raise SceneGraphError(p, None, f"cannot be read ({e.strerror or e})") from None
    if not p.is_file():
        raise SceneGraphError(p, None, "is not a file")
    return _read_cached(str(p), st.st_mtime_ns, st.st_size)


# ---------------------------------------------------------------------- matching
def _nearest(keys: list[float], target: float, tolerance: float) -> int | None:
    """Index into sorted ``keys`` of the value nearest ``target`` within ``tolerance``
    (ties: the earlier)."""
    pos = bisect.bisect_left(keys, target)
    best = None
    for cand in (pos - 1, pos):
        if 0 <= cand < len(keys):
            d = abs(keys[cand] - target)
            if d <= tolerance and (best is None or d < abs(keys[best] - target)):
                best = cand
    return best


def _half_step(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    return statistics.median(b - a for a, b in itertools.pairwise(values)) / 2.0


def match_frames(clip: VideoClip, graph_file: SceneGraphFile) -> list[SceneFrame | None]:
    """The file's frame for each of the clip's frames (``None`` = no graph, no objects)."""
    meta = clip.meta or {}
    frames = graph_file.frames
    if "frame_indices" in meta and meta["frame_indices"] is not None:
        targets = meta["frame_indices"]
        if (
            not isinstance(targets, (list, tuple))
            or len(targets) != clip.num_frames
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in targets)
        ):
            raise ValueError(
                f"clip {clip.video_id!r}: meta['frame_indices'] must list one integer per frame "
                f"({clip.num_frames}), got {targets!r}"
            )
        targets = [float(t) for t in targets]
    elif _is_number(meta.get("fps")) and meta["fps"] > 0:
        targets = [float(round(float(t) * float(meta["fps"]))) for t in clip.timestamps]
    else:
        keys, timed = graph_file.sorted_times
        if frames and not timed:
            raise SceneGraphError(
                graph_file.path,
                "frames[*].timestamp",
                f"cannot match clip {clip.video_id!r}: the clip has neither meta['frame_indices'] nor meta['fps'], "
                "and the file's frames have no timestamp",
            )
        targets = [float(t) for t in clip.timestamps]
        tolerance = max(_half_step(targets), 1e-3)
        out = []
        for t in targets:
            k = _nearest(keys, t, tolerance)
            out.append(None if k is None else frames[timed[keys[k]]])
        _warn_if_unmatched(clip, graph_file, out)
        return out
    keys, float_keys = graph_file.sorted_indices
    tolerance = _half_step(targets)
    out = []
    for t in targets:
        k = _nearest(float_keys, t, tolerance)
        out.append(None if k is None else frames[keys[k]])
    _warn_if_unmatched(clip, graph_file, out)
    return out


def _warn_if_unmatched(clip: VideoClip, graph_file: SceneGraphFile, matched: list) -> None:
    if graph_file.frames and all(m is None for m in matched):
        lo, hi = min(graph_file.frames), max(graph_file.frames)
        warnings.warn(
            f"{graph_file.path}: none of the {clip.num_frames} frames of clip {clip.video_id!r} is in this "
            f"scene-graph file (it has frames {lo}..{hi}); is it the clip's file?",
            SceneGraphWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------- graphs
def _frame_size(clip: VideoClip, graph_file: SceneGraphFile) -> tuple[float, float]:
    meta_size = (clip.meta or {}).get("source_size")
    if graph_file.width is not None and graph_file.height is not None:
        if (
            isinstance(meta_size, (list, tuple))
            and len(meta_size) == 2
            and (abs(meta_size[0] - graph_file.width) > 0.5 or abs(meta_size[1] - graph_file.height) > 0.5)
        ):
            warnings.warn(
                f"{graph_file.path}: width/height {graph_file.width:g}x{graph_file.height:g} differ from clip "
                f"{clip.video_id!r}'s source_size {meta_size[0]}x{meta_size[1]}; using the file's",
                SceneGraphWarning,
                stacklevel=3,
            )
        return graph_file.width, graph_file.height
    if isinstance(meta_size, (list, tuple)) and len(meta_size) == 2 and all(_is_number(v) and v > 0 for v in meta_size):
        return float(meta_size[0]), float(meta_size[1])
    return float(clip.width), float(clip.height)


class _Boxes:
    """Pixel boxes of one file → boxes normalised to the frame, clamped to it (or dropped
    when wholly outside), remembering which fields were clamped or dropped."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = width, height
        self.clamped: list[str] = []
        self.dropped: list[str] = []

    def __call__(self, entity: Entity) -> tuple[float, float, float, float] | None:
        w, h = self.width, self.height
        x1, y1, x2, y2 = entity.box
        if x1 >= w or y1 >= h or x2 <= 0 or y2 <= 0:
            self.dropped.append(f"{entity.field}.box")
            return None
        clamped = (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))
        if clamped != (x1, y1, x2, y2):
            self.clamped.append(f"{entity.field}.box")
        return (clamped[0] / w, clamped[1] / h, clamped[2] / w, clamped[3] / h)

    def warn(self, path: str) -> None:
        for fields_, what in (
            (self.clamped, "clamped to the frame"),
            (self.dropped, "dropped: it lies wholly outside the frame"),
        ):
            if fields_:
                shown = ", ".join(fields_[:3]) + (f" and {len(fields_) - 3} more" if len(fields_) > 3 else "")
                warnings.warn(
                    f"{path}: {len(fields_)} box(es) outside the {self.width:g}x{self.height:g} frame {what} ({shown})",
                    SceneGraphWarning,
                    stacklevel=3,
                )


def _node(graph: FrameGraph, entity: Entity, box: tuple[float, float, float, float], score: float) -> int:
    """The index of ``entity`` in ``graph``: an object of the same label with IoU ≥
    ``MERGE_IOU`` is the same node (its score the higher one), else a new one."""
    key = normalise(entity.label)
    for i, other in enumerate(graph.objects):
        if normalise(other.label) == key and iou(other.box, box) >= MERGE_IOU:
            other.score = max(other.score, score)
            return i
    graph.objects.append(GraphObject(entity.label, box, score))
    return len(graph.objects) - 1


def _frame_graph(frame: SceneFrame | None, boxes: _Boxes) -> FrameGraph:
    graph = FrameGraph()
    if frame is None:
        return graph

    def node(entity: Entity, fallback_score: float) -> int | None:
        box = boxes(entity)
        score = entity.score if entity.score is not None else fallback_score
        return None if box is None else _node(graph, entity, box, score)

    for entity in frame.objects:
        node(entity, 1.0)
    for t in frame.triplets:
        s, o = node(t.subject, t.score), node(t.object, t.score)
        if s is not None and o is not None and s != o:
            graph.relations.append(Relation(s, t.predicate, o, t.score))
    return graph


def clip_frame_graphs(clip: VideoClip, path: str | os.PathLike) -> list[FrameGraph]:
    """The object graph of each of the clip's frames from the scene-graph file at
    ``path``, boxes normalised to ``[0, 1]`` (see the module doc for the rules)."""
    graph_file = read_scene_graph(path)
    boxes = _Boxes(*_frame_size(clip, graph_file))
    graphs = [_frame_graph(frame, boxes) for frame in match_frames(clip, graph_file)]
    boxes.warn(graph_file.path)
    return graphs


# ---------------------------------------------------------------------- writing
def write_scene_graph(
    path: str | os.PathLike,
    graphs: list[FrameGraph],
    width: int,
    height: int,
    frame_indices: list[int] | None = None,
    timestamps: list[float] | None = None,
    video_id: str | None = None,
) -> Path:
    """Write frame graphs (boxes normalised to the frame) as a scene-graph file in the
    layout above, atomically; objects in no relation go to ``objects``, relations to
    ``triplets``. ``frame_indices`` default to ``0, 1, ...``. Returns the path."""
    indices = list(range(len(graphs))) if frame_indices is None else list(frame_indices)
    if len(indices) != len(graphs) or (timestamps is not None and len(timestamps) != len(graphs)):
        raise ValueError("write_scene_graph: one frame index (and timestamp) per graph")

    def entity(obj: GraphObject) -> dict[str, Any]:
        x1, y1, x2, y2 = obj.box
        box = [round(x1 * width, 3), round(y1 * height, 3), round(x2 * width, 3), round(y2 * height, 3)]
        return {"label": obj.label, "box": box, "score": round(float(obj.score), 6)}

    frames = []
    for n, (index, graph) in enumerate(zip(indices, graphs)):
        related = {r.subject for r in graph.relations} | {r.object for r in graph.relations}
        frame: dict[str, Any] = {"frame_index": int(index)}
        if timestamps is not None:
            frame["timestamp"] = float(timestamps[n])
        frame["objects"] = [entity(o) for i, o in enumerate(graph.objects) if i not in related]
        frame["triplets"] = [
            {
                "subject": entity(graph.objects[r.subject]),
                "predicate": r.predicate,
                "object": entity(graph.objects[r.object]),
                "score": round(float(r.score), 6),
            }
            for r in graph.relations
        ]
        frames.append(frame)
    data: dict[str, Any] = {"width": width, "height": height, "frames": frames}
    if video_id is not None:
        data = {"video_id": video_id, **data}
    atomic_write_json(path, data)
    return Path(path)
