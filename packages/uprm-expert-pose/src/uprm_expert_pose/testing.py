"""Synthetic people and keypoint files for tests, demos and benchmarks.

:func:`synthetic_people` makes plausible COCO-17 poses (a standing template, scaled,
placed and jittered); :func:`write_results_json` and :func:`write_dataset_json` write
them in the two layouts of docs/formats.md (atomically); :func:`pose_clip` returns a
:class:`~uprm.VideoClip` whose ``meta`` points at such a file, as ``uprm.data.load_clip``
plus a dataset would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uprm.coco import skeleton_1based
from uprm.offline import prepare_ultralytics
from uprm.testing import synthetic_clip
from uprm.types import VideoClip
from uprm.utils import atomic_write_json
from uprm_expert_pose.skeleton import COCO_JOINTS, NUM_JOINTS

__all__ = [
    "STANDING_POSE",
    "pose_clip",
    "random_pose_checkpoint",
    "synthetic_people",
    "write_dataset_json",
    "write_results_json",
]

#: a standing person facing the camera, ``(x, y)`` in the unit box (y down), COCO order
STANDING_POSE = np.array(
    [
        (0.50, 0.08), (0.53, 0.06), (0.47, 0.06), (0.56, 0.08), (0.44, 0.08),
        (0.65, 0.22), (0.35, 0.22), (0.72, 0.38), (0.28, 0.38), (0.75, 0.52), (0.25, 0.52),
        (0.60, 0.55), (0.40, 0.55), (0.62, 0.75), (0.38, 0.75), (0.63, 0.95), (0.37, 0.95),
    ]
)

Person = dict[str, Any]


def synthetic_people(
    counts: Sequence[int],
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> list[list[Person]]:
    """``counts[f]`` people for each frame ``f``: ``{"keypoints": [51 floats], "bbox":
    [x, y, w, h], "score": s}`` in pixels of a ``size = (width, height)`` frame. Some
    joints are marked absent (``c = 0``, ``x = y = 0``)."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames = []
    for count in counts:
        people = []
        for _ in range(count):
            ph = rng.uniform(0.35, 0.8) * h
            pw = ph * rng.uniform(0.35, 0.55)
            x0 = rng.uniform(0, max(1.0, w - pw))
            y0 = rng.uniform(0, max(1.0, h - ph))
            xy = STANDING_POSE + rng.normal(0, 0.04, STANDING_POSE.shape)
            px = x0 + xy[:, 0] * pw
            py = y0 + xy[:, 1] * ph
            c = rng.uniform(0.3, 1.0, NUM_JOINTS)
            c[rng.random(NUM_JOINTS) < 0.1] = 0.0
            px, py = np.where(c > 0, px, 0.0), np.where(c > 0, py, 0.0)
            kp = np.stack([px, py, c], axis=1).round(2)
            people.append(
                {
                    "keypoints": kp.reshape(-1).tolist(),
                    "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(pw), 2), round(float(ph), 2)],
                    "score": round(float(rng.uniform(0.2, 1.0)), 4),
                }
            )
        frames.append(people)
    return frames


def write_results_json(path: str | os.PathLike, people_by_frame: Mapping[int, Sequence[Person]]) -> Path:
    """The COCO results list (HigherHRNet/mmpose): one entry per person, ``image_id`` =
    the frame index in the video."""
    entries = [
        {"image_id": int(frame), "category_id": 1, **person}
        for frame in sorted(people_by_frame)
        for person in people_by_frame[frame]
    ]
    atomic_write_json(path, entries)
    return Path(path)


def write_dataset_json(
    path: str | os.PathLike,
    frame_indices: Sequence[int],
    people: Sequence[Sequence[Person]],
    size: tuple[int, int] = (320, 240),
    fps: float | None = None,
) -> Path:
    """The COCO dataset layout (UPRM's synthetic world): one image per frame (with
    ``frame_index``, ``timestamp`` when ``fps`` is given, ``width``, ``height``), one
    annotation per person, the COCO person category with its joints and skeleton."""
    images, annotations = [], []
    for i, (frame, frame_people) in enumerate(zip(frame_indices, people, strict=True)):
        image: dict[str, Any] = {"id": i, "frame_index": int(frame), "width": size[0], "height": size[1]}
        if fps:
            image["timestamp"] = round(frame / fps, 6)
        images.append(image)
        for person in frame_people:
            kp = np.asarray(person["keypoints"]).reshape(NUM_JOINTS, 3)
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": i,
                    "category_id": 1,
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                    **person,
                }
            )
    categories = [
        {
            "id": 1,
            "name": "person",
            "keypoints": list(COCO_JOINTS),
            "skeleton": skeleton_1based(),
        }
    ]
    atomic_write_json(path, {"images": images, "annotations": annotations, "categories": categories})
    return Path(path)


def pose_clip(
    directory: str | os.PathLike,
    counts: Sequence[int],
    seed: int = 0,
    layout: str = "dataset",
    fps: float = 10.0,
    stride: int = 5,
    size: tuple[int, int] = (320, 240),
    frame_size: int = 64,
) -> VideoClip:
    """A synthetic clip of ``len(counts)`` frames sampled every ``stride`` frames of a
    ``fps`` video, with a keypoint file (``layout`` ``"dataset"``: every frame of the
    video; ``"results"``: only the frames with people) giving ``counts[f]`` people to
    sampled frame ``f``. ``meta`` holds ``frame_indices``, ``fps``, ``source_size`` and
    ``keypoints`` as ``uprm.data.load_clip`` plus a dataset would."""
    num = len(counts)
    clip = synthetic_clip(num_frames=num, size=frame_size, seed=seed, fps=fps / stride)
    indices = [f * stride for f in range(num)]
    total = indices[-1] + stride  # the video's frame count
    sampled_people = synthetic_people(counts, size=size, seed=seed)
    path = Path(directory) / f"{clip.video_id}-{layout}.json"
    if layout == "dataset":
        people: list[list[Person]] = [[] for _ in range(total)]
        for f, frame in enumerate(indices):
            people[frame] = sampled_people[f]
        write_dataset_json(path, range(total), people, size=size, fps=fps)
    elif layout == "results":
        write_results_json(path, {frame: sampled_people[f] for f, frame in enumerate(indices)})
    else:
        raise ValueError(f"layout must be 'dataset' or 'results', got {layout!r}")
    clip.duration = total / fps
    clip.meta.update(frame_indices=indices, fps=fps, source_size=list(size), keypoints=str(path))
    return clip


def random_pose_checkpoint(
    path: str | os.PathLike,
    config: str = "yolo11n-pose.yaml",
    seed: int = 0,
    calibration_size: int = 96,
) -> Path:
    """Save a randomly initialised ultralytics model (``config``, e.g. the real
    yolo11n-pose architecture) as an ultralytics ``.pt`` checkpoint, with its BatchNorm
    statistics calibrated on a few synthetic frames.

    Freshly initialised BatchNorm layers (mean 0, variance 1) let the random network's
    output collapse to its biases: every image gives the same "people". One pass in
    training mode with cumulative statistics makes the output depend on the image, as a
    trained model's does — what tests of a real pipeline need. Nothing is downloaded.
    """
    prepare_ultralytics()
    from ultralytics import YOLO

    torch.manual_seed(seed)
    yolo = YOLO(str(config))
    model = yolo.model
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
    frames = torch.cat([synthetic_clip(4, calibration_size, seed=seed + s).frames for s in range(3)])
    model.train()
    with torch.no_grad():
        model(frames.float() / 255)
    for norm in norms:
        norm.momentum = 0.03  # ultralytics' default
    model.eval()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    yolo.save(str(path))
    return Path(path)
