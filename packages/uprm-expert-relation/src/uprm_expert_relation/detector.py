"""The frozen object detector: an ultralytics detection model, run on a clip's frames.

Where the model comes from:

* ``weights`` — an ultralytics ``.pt`` checkpoint (``yolo11n.pt``, a fine-tuned
  ``best.pt``): a local path, or a bare asset name that ultralytics downloads when the
  machine is online (offline it is an error naming the file). It is loaded in **safe
  mode**: ``torch.load(weights_only=True)`` against ultralytics' allow-list of model
  classes (``torch_safe_load(..., safe_only=True)``), whatever ``ULTRALYTICS_SAFE_LOAD``
  says, so a checkpoint cannot run code. A model whose task is not ``detect`` (pose,
  segment, classify, obb) is refused: it would give boxes of another meaning, or none.
  The loading is :mod:`uprm.integrations.ultralytics`, shared with the pose expert.
* ``model_config`` — an ultralytics model YAML (``"yolo11n.yaml"``) built with random
  weights (seeded): the real architecture and code path for tests and benchmarks, no
  download. A YAML model of 80 classes is given the COCO class names, as a COCO
  checkpoint has.

:func:`detect` letterboxes the frames as ultralytics' predictor does (long side to
``imgsz``, bilinear, padded with grey 114 to a multiple of the model's stride, centred),
runs them in batches, applies ultralytics' own NMS, and maps the boxes back to the
frame, normalised to ``[0, 1]``.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from uprm.errors import UPRMError
from uprm.experts.preprocess import to_float
from uprm.integrations import ultralytics as ul
from uprm.integrations.ultralytics import UltralyticsModelError
from uprm.offline import prepare_ultralytics
from uprm_expert_relation.graph import FrameGraph, GraphObject
from uprm_expert_relation.vocab import COCO_LABELS

__all__ = ["MISSING_WEIGHTS", "DetectorError", "detect", "letterbox", "load_detector"]

#: the start of the error for detector weights that are not there (``{}``: the path)
MISSING_WEIGHTS = (
    "relation expert: detector weights '{}' are not a local file; pass the path of an ultralytics detection "
    "checkpoint such as yolo11n.pt"
)


class DetectorError(UPRMError, ValueError):
    """A detector file or configuration that cannot be used; names the file."""


def _detector_error(err: UltralyticsModelError, shown: str) -> DetectorError:
    """The shared loader's refusal, worded for the relation expert's users."""
    problems = {
        "suffix": "an ultralytics detector checkpoint is a .pt file",
        "unreadable": f"not a loadable ultralytics checkpoint in safe mode (weights_only): {err.detail}",
        "no_model": f"the checkpoint holds no ultralytics model (it holds {err.detail})",
        "task": f"is a {err.detail} model; the relation expert needs an object detection model (task 'detect', "
        "e.g. yolo11n.pt)",
    }
    return DetectorError(f"{shown}: {problems.get(err.kind, err.problem)}")


def _names(model: nn.Module, from_yaml: bool) -> list[str]:
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        names = [str(names[i]) for i in sorted(names)]
    elif isinstance(names, (list, tuple)):
        names = [str(n) for n in names]
    else:
        nc = int(getattr(model, "nc", 0) or getattr(model.model[-1], "nc", 0))
        names = [str(i) for i in range(nc)]
    if from_yaml and len(names) == len(COCO_LABELS) and all(n == str(i) for i, n in enumerate(names)):
        names = list(COCO_LABELS)
    return names


def load_detector(
    weights: str | os.PathLike | None = None, model_config: str | None = None, seed: int = 0
) -> tuple[nn.Module, list[str]]:
    """Load a detection model and its class names (a frozen module in eval mode, fused).

    ``weights`` is a local ``.pt``, or a bare ultralytics asset name (``"yolo11n.pt"``)
    that ultralytics downloads when the machine is online
    (:func:`uprm.integrations.ultralytics.resolve_weights`). Each call returns its own
    copy; the loaded original is kept (for the two most recent files or configs, keyed
    by path, modification time and size), so building several experts on one checkpoint
    reads it once.

    Raises:
        FileNotFoundError: ``weights`` is not a local file and cannot be downloaded.
        DetectorError: the file is not a loadable ultralytics checkpoint in safe mode,
            holds no model, or holds a model of another task.
    """
    if (weights is None) == (model_config is None):
        raise ValueError("load_detector needs exactly one of weights (a local .pt) and model_config (a YAML)")
    if weights is not None:
        path = ul.resolve_weights(weights, MISSING_WEIGHTS.format(Path(weights).expanduser()))
        st = path.stat()
        model, names = _load_checkpoint(str(path.resolve()), str(path), st.st_mtime_ns, st.st_size)
    else:
        model, names = _build_from_yaml(str(model_config), int(seed))
    return copy.deepcopy(model), list(names)


@functools.lru_cache(maxsize=2)
def _load_checkpoint(resolved: str, shown: str, mtime_ns: int, size: int) -> tuple[nn.Module, tuple[str, ...]]:
    try:
        model = ul.load_checkpoint(resolved)
        ul.check_model(model, shown, "detect")
    except UltralyticsModelError as err:
        raise _detector_error(err, shown) from err
    model = ul.freeze(model)
    return model, tuple(_names(model, from_yaml=False))


@functools.lru_cache(maxsize=2)
def _build_from_yaml(model_config: str, seed: int) -> tuple[nn.Module, tuple[str, ...]]:
    try:
        model = ul.load_model(model_config=model_config, task="detect", seed=seed)
    except UltralyticsModelError as err:
        if err.kind == "build":
            raise FileNotFoundError(f"relation expert: model_config {model_config!r}: {err.detail}") from err
        raise _detector_error(err, model_config) from err
    return model, tuple(_names(model, from_yaml=True))


def letterbox(frames: torch.Tensor, imgsz: int, stride: int) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """Resize the long side to ``imgsz`` and pad (grey 114, centred) to a multiple of
    ``stride``, as ultralytics' predictor does for a batch of same-sized frames.

    Shapes: uint8 ``[F, 3, H, W]`` → float32 ``[F, 3, H', W']`` in ``[0, 1]``; also returns
    the scale and the ``(left, top)`` padding.
    """
    x = to_float(frames)
    h, w = x.shape[-2:]
    scale = imgsz / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False).clamp_(0, 1)
    ph = math.ceil(nh / stride) * stride - nh
    pw = math.ceil(nw / stride) * stride - nw
    top, left = ph // 2, pw // 2
    x = F.pad(x, (left, pw - left, top, ph - top), value=114 / 255)
    return x, scale, (left, top)


def detect(
    model: nn.Module,
    names: Sequence[str],
    frames: torch.Tensor,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 16,
    batch_size: int = 8,
) -> list[FrameGraph]:
    """Objects in each frame (no relations yet): label, box normalised to the frame,
    score; at most ``max_det`` per frame, best first.

    Shapes: ``frames`` uint8 ``[F, 3, H, W]`` → ``F`` graphs.
    """
    prepare_ultralytics()  # offline switches before any ultralytics import
    from ultralytics.utils import nms

    param = next(model.parameters())
    stride = int(max(int(torch.as_tensor(getattr(model, "stride", 32)).max()), 32))
    h, w = frames.shape[-2:]
    graphs: list[FrameGraph] = []
    for start in range(0, frames.shape[0], batch_size):
        x, scale, (left, top) = letterbox(frames[start : start + batch_size], imgsz, stride)
        preds = model(x.to(device=param.device, dtype=param.dtype))
        dets = nms.non_max_suppression(
            preds, conf, iou, max_det=max_det, end2end=bool(getattr(model, "end2end", False))
        )
        for det in dets:
            det = det.detach().double().cpu()
            graph = FrameGraph()
            for x1, y1, x2, y2, score, cls in det[:, :6].tolist():
                bx1 = min(max((x1 - left) / scale, 0.0), w) / w
                by1 = min(max((y1 - top) / scale, 0.0), h) / h
                bx2 = min(max((x2 - left) / scale, 0.0), w) / w
                by2 = min(max((y2 - top) / scale, 0.0), h) / h
                if bx2 <= bx1 or by2 <= by1:
                    continue
                c = int(cls)
                label = names[c] if 0 <= c < len(names) else str(c)
                graph.objects.append(GraphObject(label, (bx1, by1, bx2, by2), float(score)))
            graphs.append(graph)
    return graphs
