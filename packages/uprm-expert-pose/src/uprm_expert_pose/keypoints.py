"""Keypoint JSON (docs/formats.md, "Keypoints"): read it, check it, match it to a clip.

Two layouts are read, both with pixel coordinates of the source video:

* the COCO **results list** that HigherHRNet and mmpose write — ``[{"image_id": <frame
  index>, "category_id": 1, "score": s, "keypoints": [x1, y1, c1, ...], "bbox": [x, y, w,
  h]}, ...]``; a frame with no entry has no people;
* the COCO **dataset layout** that UPRM's synthetic world writes — ``images`` carry
  ``frame_index`` (and optionally ``timestamp``, ``width``, ``height``), ``annotations``
  the people (``image_id`` = an image's ``id``), ``categories`` the person category. An
  image without annotations is a frame without people; the file lists every frame.

A sampled frame is matched to the annotated frame with the same index, else to the
nearest annotated frame within half the sampling interval (docs/formats.md). The clip
says which frames were sampled through ``clip.meta["frame_indices"]``; without it,
``meta["fps"]`` × timestamps; without that, a dataset file's image timestamps.

Anything else is an error naming the file and the field (:class:`KeypointFileError`):
unreadable JSON, a missing field, a joint count other than 17, NaN or infinite values,
negative confidences, annotations for frames the video does not have, a dataset file
that does not cover the clip, coordinates far outside the frame size they claim.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from uprm.types import VideoClip
from uprm_expert_pose.errors import KeypointFileError, PoseSourceError
from uprm_expert_pose.skeleton import COCO_JOINTS, NUM_JOINTS

__all__ = [
    "KeypointFile",
    "Person",
    "clear_keypoint_cache",
    "empty_pose_features",
    "match_frames",
    "pose_features",
    "read_keypoint_file",
]

#: how far outside the frame (as a fraction of its size) a visible joint may lie before
#: the file's coordinates are taken to be for another frame size
_OUTSIDE_TOLERANCE = 0.5


@dataclass(frozen=True)
class Person:
    """One person of one annotated frame, as written in the file.

    Attributes:
        keypoints: ``[17, 3]`` float64, ``(x, y)`` in source pixels and ``c`` (confidence
            or COCO visibility; ``0`` = absent).
        bbox: ``(x, y, w, h)`` in source pixels, or ``None`` when the file gives none.
        score: the person's score (``None`` when the file gives none).
        field: where the person sits in the file, e.g. ``annotations[3]`` (for errors).
    """

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float] | None
    score: float | None
    field: str

    @property
    def visible(self) -> np.ndarray:
        return self.keypoints[:, 2] > 0

    @property
    def confidence(self) -> float:
        """The ranking score: ``score`` when given, else the mean confidence of the
        visible joints (COCO visibility 2 counts as 1)."""
        if self.score is not None:
            return self.score
        vis = self.visible
        return float(np.clip(self.keypoints[vis, 2], 0, 1).mean()) if vis.any() else 0.0


@dataclass(frozen=True)
class KeypointFile:
    """A parsed, checked keypoint file.

    Attributes:
        path: the file.
        layout: ``"results"`` or ``"dataset"``.
        people: frame index → the people of that frame, in file order.
        frames: sorted frame indices the file annotates (results: frames with people;
            dataset: every image).
        timestamps: frame index → seconds (dataset images that carry a ``timestamp``).
        sizes: frame index → ``(width, height)`` in pixels (dataset images that carry them).
        frame_fields: frame index → the field naming it (``images[4]`` / ``[17].image_id``).
    """

    path: str
    layout: Literal["results", "dataset"]
    people: Mapping[int, tuple[Person, ...]]
    frames: np.ndarray
    timestamps: Mapping[int, float]
    sizes: Mapping[int, tuple[float, float]]
    frame_fields: Mapping[int, str]

    @property
    def num_people(self) -> int:
        return sum(len(p) for p in self.people.values())


# ---------------------------------------------------------------------------- reading
def read_keypoint_file(path: str | os.PathLike) -> KeypointFile:
    """Read and check a keypoint JSON file in either layout.

    Parsed files are cached by path, modification time and size, so the windows of one
    long video share a single parse.

    Raises:
        KeypointFileError: the file is missing, not JSON, or breaks the format.
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError as err:
        raise KeypointFileError(p, "file", f"cannot be read ({err.strerror or err})") from err
    if not p.is_file():
        raise KeypointFileError(p, "file", "is not a regular file")
    return _read_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def clear_keypoint_cache() -> None:
    """Forget every parsed file (the next read parses again)."""
    _read_cached.cache_clear()


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, _mtime_ns: int, _size: int) -> KeypointFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise KeypointFileError(path, "file", f"is not UTF-8 text ({err.reason} at byte {err.start})") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise KeypointFileError(path, f"line {err.lineno} column {err.colno}", f"is not valid JSON ({err.msg})") from err
    if isinstance(data, list):
        return _parse_results(path, data)
    if isinstance(data, dict) and "annotations" in data:
        return _parse_dataset(path, data)
    kind = "object without 'annotations'" if isinstance(data, dict) else type(data).__name__
    raise KeypointFileError(
        path,
        "top level",
        f"is a JSON {kind}; expected a COCO results list [{{'image_id', 'keypoints', ...}}] or a COCO "
        "dataset object with 'images' and 'annotations' (docs/formats.md)",
    )


def _number(path: str, field: str, value: Any, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KeypointFileError(path, field, f"is {value!r}; expected {what}")
    v = float(value)
    if not math.isfinite(v):
        raise KeypointFileError(path, field, f"is {value!r}; expected {what} (finite)")
    return v


def _index(path: str, field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KeypointFileError(path, field, f"is {value!r}; expected a 0-based frame index (an integer >= 0)")
    return value


def _parse_keypoints(path: str, field: str, values: Any) -> np.ndarray:
    """A flat ``[x, y, c] × 17`` list → ``[17, 3]``, every value checked."""
    if values is None:
        raise KeypointFileError(path, field, "is missing")
    if not isinstance(values, list):
        raise KeypointFileError(path, field, f"is a {type(values).__name__}; expected a flat list")
    if len(values) != 3 * NUM_JOINTS:
        joints = f"{len(values) / 3:g} joints" if len(values) % 3 == 0 else "not a multiple of 3"
        raise KeypointFileError(
            path, field, f"has {len(values)} values ({joints}); expected {3 * NUM_JOINTS} = the 17 COCO joints × (x, y, c)"
        )
    for j, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise KeypointFileError(
                path,
                f"{field}[{j}]",
                f"is {v!r} (joint {COCO_JOINTS[j // 3]}, {'xyc'[j % 3]}); coordinates and confidences must be finite "
                "numbers",
            )
    kp = np.asarray(values, dtype=np.float64).reshape(NUM_JOINTS, 3)
    negative = np.flatnonzero(kp[:, 2] < 0)
    if negative.size:
        j = int(negative[0])
        raise KeypointFileError(
            path, f"{field}[{3 * j + 2}]", f"is {kp[j, 2]:g} (joint {COCO_JOINTS[j]}, c); confidences must be >= 0"
        )
    return kp


def _parse_bbox(path: str, field: str, raw: Any) -> tuple[float, float, float, float] | None:
    """COCO's ``[x, y, w, h]`` (or ``None`` when absent)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 4:
        raise KeypointFileError(path, field, f"is {raw!r}; expected [x, y, w, h]")
    x, y, w, h = (_number(path, f"{field}[{i}]", v) for i, v in enumerate(raw))
    if w < 0 or h < 0:
        raise KeypointFileError(path, field, f"is {raw!r}; width and height must be >= 0 ([x, y, w, h])")
    return (x, y, w, h)


def _parse_person(path: str, field: str, entry: Mapping[str, Any]) -> Person:
    kp = _parse_keypoints(path, f"{field}.keypoints", entry.get("keypoints"))
    score = None if entry.get("score") is None else _number(path, f"{field}.score", entry["score"])
    return Person(kp, _parse_bbox(path, f"{field}.bbox", entry.get("bbox")), score, field)


def _freeze(
    path: str,
    layout: Literal["results", "dataset"],
    people: dict[int, list[Person]],
    frames: Sequence[int],
    timestamps: dict[int, float],
    sizes: dict[int, tuple[float, float]],
    fields: dict[int, str],
) -> KeypointFile:
    return KeypointFile(
        path=path,
        layout=layout,
        people={k: tuple(v) for k, v in people.items()},
        frames=np.array(sorted(frames), dtype=np.int64),
        timestamps=timestamps,
        sizes=sizes,
        frame_fields=fields,
    )


def _parse_results(path: str, data: list) -> KeypointFile:
    people: dict[int, list[Person]] = {}
    fields: dict[int, str] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise KeypointFileError(path, f"[{i}]", f"is a {type(entry).__name__}; expected an object per person")
        if "image_id" not in entry:
            raise KeypointFileError(path, f"[{i}].image_id", "is missing (the 0-based frame index in the video)")
        frame = _index(path, f"[{i}].image_id", entry["image_id"])
        if entry.get("category_id", 1) != 1:  # keypoint results are of COCO's person category
            continue
        people.setdefault(frame, []).append(_parse_person(path, f"[{i}]", entry))
        fields.setdefault(frame, f"[{i}].image_id")
    return _freeze(path, "results", people, list(people), {}, {}, fields)


def _person_category_ids(path: str, categories: Any) -> set[Any]:
    """The category ids of people (``{1}`` without a ``categories`` list); a person
    category that names its joints must name 17."""
    if categories is None:
        return {1}
    if not isinstance(categories, list):
        raise KeypointFileError(path, "categories", f"is a {type(categories).__name__}; expected a list")
    named = set()
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict):
            raise KeypointFileError(path, f"categories[{i}]", "is not an object")
        if cat.get("name") != "person" and cat.get("id") != 1:
            continue
        named.add(cat.get("id"))
        names = cat.get("keypoints")
        if names is not None and (not isinstance(names, list) or len(names) != NUM_JOINTS):
            count = len(names) if isinstance(names, list) else names
            raise KeypointFileError(path, f"categories[{i}].keypoints", f"lists {count} joints; expected the 17 COCO joints")
    return named or {1}


def _image_id(path: str, field: str, image: Any) -> Any:
    if not isinstance(image, dict):
        raise KeypointFileError(path, field, "is not an object")
    if "id" not in image:
        raise KeypointFileError(path, f"{field}.id", "is missing")
    image_id = image["id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise KeypointFileError(path, f"{field}.id", f"is {image_id!r}; expected an integer or a string")
    if "frame_index" not in image:
        raise KeypointFileError(path, f"{field}.frame_index", "is missing (the 0-based frame index in the video)")
    return image_id


def _image_time_and_size(path: str, field: str, image: dict) -> tuple[float | None, tuple[float, float] | None]:
    """An image's ``timestamp`` (seconds ≥ 0) and ``(width, height)`` (> 0), each optional."""
    t = size = None
    if image.get("timestamp") is not None:
        t = _number(path, f"{field}.timestamp", image["timestamp"], "seconds")
        if t < 0:
            raise KeypointFileError(path, f"{field}.timestamp", f"is {t:g}; expected seconds >= 0")
    if image.get("width") is not None or image.get("height") is not None:
        w = _number(path, f"{field}.width", image.get("width"), "a width in pixels")
        h = _number(path, f"{field}.height", image.get("height"), "a height in pixels")
        if w <= 0 or h <= 0:
            raise KeypointFileError(path, field, f"has size {w:g}×{h:g}; width and height must be > 0")
        size = (w, h)
    return t, size


@dataclass
class _Images:
    """The ``images`` of a dataset-layout file: image id → frame, and per frame its field,
    timestamp and size."""

    by_id: dict[Any, int] = dc_field(default_factory=dict)
    fields: dict[int, str] = dc_field(default_factory=dict)
    timestamps: dict[int, float] = dc_field(default_factory=dict)
    sizes: dict[int, tuple[float, float]] = dc_field(default_factory=dict)


def _parse_images(path: str, images: list) -> _Images:
    out = _Images()
    for i, image in enumerate(images):
        where = f"images[{i}]"
        image_id = _image_id(path, where, image)
        if image_id in out.by_id:
            raise KeypointFileError(path, f"{where}.id", f"repeats id {image_id!r}")
        frame = _index(path, f"{where}.frame_index", image["frame_index"])
        if frame in out.fields:
            raise KeypointFileError(path, f"{where}.frame_index", f"repeats frame {frame} of {out.fields[frame]}")
        out.by_id[image_id], out.fields[frame] = frame, where
        t, size = _image_time_and_size(path, where, image)
        if t is not None:
            out.timestamps[frame] = t
        if size is not None:
            out.sizes[frame] = size
    return out


def _parse_annotations(
    path: str, annotations: list, person_ids: set[Any], by_id: dict[Any, int]
) -> dict[int, list[Person]]:
    people: dict[int, list[Person]] = {}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise KeypointFileError(path, where, "is not an object")
        if ann.get("category_id", 1) not in person_ids:
            continue
        if "image_id" not in ann:
            raise KeypointFileError(path, f"{where}.image_id", "is missing")
        if ann["image_id"] not in by_id:
            raise KeypointFileError(
                path, f"{where}.image_id", f"refers to image id {ann['image_id']!r}, which 'images' does not list"
            )
        people.setdefault(by_id[ann["image_id"]], []).append(_parse_person(path, where, ann))
    return people


def _parse_dataset(path: str, data: dict) -> KeypointFile:
    images = data.get("images")
    if not isinstance(images, list):
        raise KeypointFileError(
            path, "images", "is missing or not a list; the COCO dataset layout lists every frame with its frame_index"
        )
    annotations = data["annotations"]
    if not isinstance(annotations, list):
        raise KeypointFileError(path, "annotations", f"is a {type(annotations).__name__}; expected a list")
    person_ids = _person_category_ids(path, data.get("categories"))
    parsed = _parse_images(path, images)
    people = _parse_annotations(path, annotations, person_ids, parsed.by_id)
    return _freeze(path, "dataset", people, list(parsed.fields), parsed.timestamps, parsed.sizes, dict(parsed.fields))


# ---------------------------------------------------------------------------- matching
def _clip_frame_indices(clip: VideoClip, kf: KeypointFile) -> tuple[np.ndarray, str]:
    """The sampled frames' positions (``"frame"`` indices or ``"s"`` seconds)."""
    meta = clip.meta
    if meta.get("frame_indices") is not None:
        idx = meta["frame_indices"]
        if isinstance(idx, torch.Tensor):
            idx = idx.tolist()
        ok = isinstance(idx, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in idx)
        if not ok or len(idx) != clip.num_frames:
            raise PoseSourceError(
                f"clip {clip.video_id!r}: meta['frame_indices'] must list one integer frame index per sampled frame "
                f"({clip.num_frames}), got {idx!r}"
            )
        return np.asarray(idx, dtype=np.int64), "frame"
    fps = meta.get("fps")
    if fps:
        return np.rint(clip.timestamps.numpy() * float(fps)).astype(np.int64), "frame"
    if kf.layout == "dataset" and len(kf.frames) and all(int(f) in kf.timestamps for f in kf.frames):
        return clip.timestamps.numpy().astype(np.float64), "s"
    raise PoseSourceError(
        f"clip {clip.video_id!r}: cannot match its frames to keypoint file {kf.path}: clip.meta has neither "
        "'frame_indices' nor 'fps' (uprm.data.load_clip sets both)"
        + (", and the file's images carry no 'timestamp'" if kf.layout == "dataset" else "")
    )


def _check_video_range(kf: KeypointFile, clip: VideoClip) -> None:
    """Annotated frames beyond the end of the video: the file belongs to another video."""
    fps = clip.meta.get("fps")
    if not fps or clip.duration <= 0 or not len(kf.frames):
        return
    total = clip.duration * float(fps)
    last = int(kf.frames[-1])
    if last > math.floor(total + 0.5):  # one frame of slack for rounding of the duration
        field = kf.frame_fields.get(last, "frames")
        raise KeypointFileError(
            kf.path,
            f"{field}.frame_index" if kf.layout == "dataset" else field,
            f"annotates frame {last}, but video {clip.video_id!r} has about {total:.0f} frames "
            f"({clip.duration:.2f} s at {float(fps):g} fps): is the file for another video?",
        )


def match_frames(kf: KeypointFile, clip: VideoClip) -> list[int | None]:
    """For each sampled frame of ``clip``, the annotated frame index of ``kf`` it takes its
    people from, or ``None`` (no people).

    Exact index first, else the nearest annotated frame within half the sampling
    interval (ties go to the earlier frame). A dataset-layout file lists every frame, so
    a sampled frame it does not cover is an error; in a results list it means "nobody".

    Raises:
        KeypointFileError: the file annotates frames the video does not have, or a
            dataset file does not cover the clip's frames.
        PoseSourceError: the clip's meta does not say which frames were sampled.
    """
    _check_video_range(kf, clip)
    sampled, unit = _clip_frame_indices(clip, kf)
    if unit == "frame":
        annotated = kf.frames.astype(np.float64)
        keys = kf.frames
    else:
        order = np.argsort([kf.timestamps[int(f)] for f in kf.frames], kind="stable")
        keys = kf.frames[order]
        annotated = np.array([kf.timestamps[int(f)] for f in keys], dtype=np.float64)
    if len(sampled) > 1:
        tolerance = 0.5 * float(np.median(np.abs(np.diff(sampled.astype(np.float64)))))
    else:
        tolerance = 0.0 if unit == "frame" else 1e-3
    matched: list[int | None] = []
    for f, s in enumerate(sampled.astype(np.float64)):
        hit = None
        if len(annotated):
            pos = int(np.searchsorted(annotated, s))
            candidates = [c for c in (pos - 1, pos) if 0 <= c < len(annotated)]
            best = min(candidates, key=lambda c: (abs(annotated[c] - s), annotated[c]))
            if abs(annotated[best] - s) <= tolerance + 1e-9:
                hit = int(keys[best])
        if hit is None and kf.layout == "dataset":
            where = f"frame {int(s)}" if unit == "frame" else f"t = {s:.3f} s"
            cover = f"frames {int(kf.frames[0])}–{int(kf.frames[-1])}" if len(kf.frames) else "no frames"
            raise KeypointFileError(
                kf.path,
                "images",
                f"has no image for {where} (sampled frame {f}) of clip {clip.video_id!r}: it covers {cover} "
                f"({len(kf.frames)} images) and the dataset layout must list every frame "
                "(an image without annotations is a frame without people)",
            )
        matched.append(hit)
    return matched


# ---------------------------------------------------------------------------- features
def _frame_size(kf: KeypointFile, frame: int, clip: VideoClip) -> tuple[float, float, str]:
    if frame in kf.sizes:
        w, h = kf.sizes[frame]
        return w, h, f"{kf.frame_fields.get(frame, 'images')}.width/height"
    size = clip.meta.get("source_size")
    if size is not None:
        ok = (
            isinstance(size, (list, tuple))
            and len(size) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in size)
        )
        if not ok:
            raise PoseSourceError(
                f"clip {clip.video_id!r}: meta['source_size'] must be [width, height] in pixels, got {size!r}"
            )
        return float(size[0]), float(size[1]), "clip.meta['source_size']"
    return float(clip.width), float(clip.height), "the clip's frame size"


def _normalise(kf: KeypointFile, person: Person, w: float, h: float, size_from: str) -> tuple[np.ndarray, np.ndarray]:
    kp = person.keypoints.copy()
    vis = kp[:, 2] > 0
    kp[:, 0] /= w
    kp[:, 1] /= h
    lo, hi = -_OUTSIDE_TOLERANCE, 1 + _OUTSIDE_TOLERANCE
    outside = vis & ((kp[:, 0] < lo) | (kp[:, 0] > hi) | (kp[:, 1] < lo) | (kp[:, 1] > hi))
    if outside.any():
        j = int(np.flatnonzero(outside)[0])
        x, y = person.keypoints[j, :2]
        raise KeypointFileError(
            kf.path,
            f"{person.field}.keypoints[{3 * j}]",
            f"joint {COCO_JOINTS[j]} at ({x:g}, {y:g}) px lies far outside the {w:g}×{h:g} frame (size from "
            f"{size_from}); are the coordinates for another frame size?",
        )
    kp[:, :2] = kp[:, :2].clip(0, 1)
    kp[:, 2] = kp[:, 2].clip(0, 1)  # COCO visibility 2 ("visible") → 1
    kp[~vis, :2] = 0
    if person.bbox is not None:
        x, y, bw, bh = person.bbox
        box = np.array([x / w, y / h, (x + bw) / w, (y + bh) / h])
    else:
        pts = kp[vis, :2]
        box = np.concatenate([pts.min(0), pts.max(0)])
    return kp, box.clip(0, 1)


def empty_pose_features(num_frames: int, max_people: int) -> dict[str, torch.Tensor]:
    """Features of a clip with nobody in it.

    Shapes: ``keypoints [F, K, 17, 3]``, ``boxes [F, K, 4]``, ``scores [F, K]`` (float32,
    zeros) and ``person_mask [F, K]`` (bool, all False).
    """
    return {
        "keypoints": torch.zeros(num_frames, max_people, NUM_JOINTS, 3),
        "boxes": torch.zeros(num_frames, max_people, 4),
        "scores": torch.zeros(num_frames, max_people),
        "person_mask": torch.zeros(num_frames, max_people, dtype=torch.bool),
    }


def pose_features(kf: KeypointFile, clip: VideoClip, max_people: int) -> dict[str, torch.Tensor]:
    """The pose expert's features of ``clip`` from a keypoint file: per sampled frame up
    to ``K = max_people`` people (the most confident; people without a visible joint are
    dropped), padded to ``K`` with a mask.

    Shapes:
        keypoints: ``[F, K, 17, 3]`` — ``x, y`` normalised to the source frame (``[0, 1]``),
            ``c`` in ``[0, 1]``; absent joints (``c = 0``) have ``x = y = 0``
        boxes: ``[F, K, 4]`` — ``x1, y1, x2, y2`` normalised (from ``bbox``, else the
            visible joints' extent)
        scores: ``[F, K]`` — person score clipped to ``[0, 1]``
        person_mask: bool ``[F, K]`` — True for a real person
    """
    matched = match_frames(kf, clip)
    out = empty_pose_features(clip.num_frames, max_people)
    kp_out, box_out = out["keypoints"].numpy(), out["boxes"].numpy()
    score_out, mask_out = out["scores"].numpy(), out["person_mask"].numpy()
    for f, frame in enumerate(matched):
        if frame is None:
            continue
        people = [p for p in kf.people.get(frame, ()) if p.visible.any()]
        if not people:
            continue
        w, h, size_from = _frame_size(kf, frame, clip)
        people.sort(key=lambda p: -p.confidence)  # stable: ties keep file order
        for k, person in enumerate(people[:max_people]):
            kp, box = _normalise(kf, person, w, h, size_from)
            kp_out[f, k] = kp
            box_out[f, k] = box
            score_out[f, k] = min(max(person.confidence, 0.0), 1.0)
            mask_out[f, k] = True
    return out
