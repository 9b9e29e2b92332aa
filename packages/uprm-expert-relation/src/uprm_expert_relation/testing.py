"""Offline stand-ins for tests and benchmarks: a random detector that behaves like one,
and scene-graph documents.

A detector built from its YAML with random weights finds nothing useful: activations
vanish through the untrained network, every score is ~1e-4 and every box covers the
whole frame, the same for every image. :func:`plausible_random_detector` keeps the real
architecture and code path but (1) recalibrates batch norm on a few synthetic frames
(cumulative running statistics, as one does after changing a network), so features
depend on the image, and (2) shifts the head's biases so boxes are a few strides wide
and some scores pass a normal confidence threshold. Boxes, classes and scores then
differ from clip to clip — enough to test extraction, not a trained model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from uprm.utils import atomic_path
from uprm_expert_relation.vocab import COCO_LABELS

__all__ = ["plausible_random_detector", "save_detector_checkpoint", "scene_graph_document"]


def plausible_random_detector(model_config: str = "yolo11n.yaml", imgsz: int = 64, seed: int = 0):
    """An ultralytics ``DetectionModel`` from ``model_config`` with random weights made to
    give image-dependent boxes (see the module doc), named with the COCO classes when it
    has 80. Deterministic for a seed."""
    from uprm.offline import prepare_ultralytics

    prepare_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    from uprm.testing import synthetic_clip
    from uprm_expert_relation.detector import letterbox

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DetectionModel(cfg=model_config, verbose=False)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
        frames = torch.cat([synthetic_clip(4, imgsz, seed=10_000 + seed + s).frames for s in range(4)])
        model.train()
        with torch.no_grad():
            model(letterbox(frames, imgsz, 32)[0])
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        head = model.model[-1]
        with torch.no_grad():
            for seq in head.cv2:  # box distances: a few strides, mostly from the bias
                seq[-1].weight.mul_(0.2)
                seq[-1].bias.copy_(torch.linspace(3.0, -3.0, head.reg_max).repeat(4))
            for seq in head.cv3:  # class scores: some pass conf 0.25
                seq[-1].bias.add_(6.0)
    if len(model.names) == len(COCO_LABELS):  # as a COCO checkpoint names its classes
        model.names = dict(enumerate(COCO_LABELS))
    return model.eval()


def save_detector_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model`` as an ultralytics checkpoint (``{"model": ...}``), atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"model": model, "train_args": {"task": "detect"}}, tmp)
    return Path(path)


def scene_graph_document(frames: list[dict[str, Any]], width: int = 64, height: int = 64, video_id: str = "clip"):
    """A scene-graph document (docs/formats.md) with these ``frames``; each frame dict
    needs ``frame_index`` and may hold ``objects``/``triplets`` in the file layout, or
    the shorthand ``"objects": [(label, [x1, y1, x2, y2]), ...]`` and
    ``"triplets": [(subject_label, subject_box, predicate, object_label, object_box), ...]``."""

    def entity(item):
        if isinstance(item, dict):
            return item
        label, box = item[:2]
        out = {"label": label, "box": list(box)}
        if len(item) > 2:
            out["score"] = item[2]
        return out

    out_frames = []
    for frame in frames:
        f = {k: v for k, v in frame.items() if k not in ("objects", "triplets")}
        f["objects"] = [entity(o) for o in frame.get("objects", [])]
        triplets = []
        for t in frame.get("triplets", []):
            if isinstance(t, dict):
                triplets.append(t)
                continue
            s_label, s_box, predicate, o_label, o_box, *score = t
            triplets.append(
                {
                    "subject": {"label": s_label, "box": list(s_box)},
                    "predicate": predicate,
                    "object": {"label": o_label, "box": list(o_box)},
                    "score": score[0] if score else 1.0,
                }
            )
        f["triplets"] = triplets
        out_frames.append(f)
    return {"video_id": video_id, "width": width, "height": height, "frames": out_frames}
