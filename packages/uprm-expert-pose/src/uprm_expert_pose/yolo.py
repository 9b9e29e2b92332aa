"""Frozen pose estimation with ultralytics YOLO-pose, batched over a clip's frames.

* :func:`load_pose_model` reads a ``.pt`` in safe mode — ultralytics'
  ``torch_safe_load(..., safe_only=True)``: ``torch.load(weights_only=True)`` against an
  allow-list of ultralytics/torch classes, whatever ``ULTRALYTICS_SAFE_LOAD`` says — and
  refuses anything that is not a 17-joint pose model. A local path loads as it is; a bare
  asset name (``"yolo11n-pose.pt"``) is downloaded by ultralytics when the machine is
  online, and is an error naming the file offline (``UPRM_OFFLINE``/``YOLO_OFFLINE``).
  The loading is :mod:`uprm.integrations.ultralytics`, shared with the relation expert.
* :func:`build_pose_model` builds a randomly initialised model from an ultralytics YAML
  name (``"yolo11n-pose.yaml"``) — the real architecture for tests and benchmarks.
* :class:`YoloPoseEstimator` runs ultralytics' own pose predictor (letterbox, NMS with
  ``max_det = K``, keypoint rescaling) on all frames of a clip in one call per
  ``batch_size`` frames and returns fixed-shape tensors.

``uprm.offline.prepare_ultralytics()`` runs before ultralytics is first imported (offline
switches, a project-owned config directory, the fonts it would otherwise download).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uprm.integrations import ultralytics as ul
from uprm.integrations.ultralytics import UltralyticsModelError
from uprm.offline import prepare_ultralytics
from uprm_expert_pose.errors import PoseWeightsError
from uprm_expert_pose.keypoints import empty_pose_features
from uprm_expert_pose.skeleton import NUM_JOINTS

__all__ = ["YoloPoseEstimator", "build_pose_model", "check_pose_model", "load_pose_model", "resolve_pose_weights"]


def _ultralytics() -> None:
    prepare_ultralytics()  # before the first `import ultralytics`


@contextlib.contextmanager
def _keep_torch_threads() -> Iterator[None]:
    """ultralytics' device selection sets ``torch.set_num_threads(cpu_count - 1)`` for the
    whole process (1 thread on a 2-core machine); keep the caller's setting."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


_WANTED = "a YOLO-pose checkpoint (task 'pose', kpt_shape [17, 3], e.g. yolo11n-pose.pt)"


def _pose_error(err: UltralyticsModelError) -> PoseWeightsError:
    """The shared loader's refusal, worded for the pose expert's users."""
    problems = {
        "suffix": f"has suffix {err.detail!r}; the pose expert loads ultralytics .pt checkpoints",
        "no_model": "holds no ultralytics model (a bare state dict or another framework's checkpoint?)",
        "task": f"is an ultralytics {err.detail!r} model, not a pose model; pass {_WANTED}",
        "kpt_shape": f"is a pose model with kpt_shape {err.detail}; the pose expert needs the 17 COCO joints with a "
        "confidence each, kpt_shape [17, 3]",
    }
    return PoseWeightsError(err.path, problems.get(err.kind, err.problem))


def check_pose_model(model: nn.Module, where: str | os.PathLike) -> None:
    """Refuse a model that is not an ultralytics pose model with COCO's 17 joints.

    Raises:
        PoseWeightsError: ``task != "pose"`` or ``kpt_shape != [17, 3]``.
    """
    try:
        ul.check_model(model, where, "pose", kpt_shape=(NUM_JOINTS, 3))
    except UltralyticsModelError as err:
        raise _pose_error(err) from err


def resolve_pose_weights(weights: str | os.PathLike) -> Path:
    """The local file of ``weights``: a path as it is, or a bare ultralytics asset name
    (``"yolo11n-pose.pt"``) downloaded by ultralytics when the machine is online
    (:func:`uprm.integrations.ultralytics.resolve_weights`).

    Raises:
        FileNotFoundError: no such file, and nothing to download (offline, or a path).
    """
    return ul.resolve_weights(
        weights,
        f"pose expert: weights file {str(Path(weights).expanduser())!r} (option weights=) does not exist; pass the "
        "local path of an ultralytics YOLO-pose checkpoint such as yolo11n-pose.pt",
    )


def load_pose_model(weights: str | os.PathLike) -> nn.Module:
    """Load an ultralytics YOLO-pose ``.pt`` (:func:`resolve_pose_weights`) in safe
    (weights-only) mode, checked and frozen.

    Raises:
        FileNotFoundError: no such file, and nothing to download (offline, or a path).
        PoseWeightsError: not a ``.pt``; unreadable in safe mode (damaged, or it refers to
            classes outside ultralytics' allow-list, e.g. code to run); no model inside;
            not a 17-joint pose model.
    """
    path = resolve_pose_weights(weights)
    try:
        return ul.load_model(path, task="pose", kpt_shape=(NUM_JOINTS, 3))
    except UltralyticsModelError as err:
        raise _pose_error(err) from err


def build_pose_model(model_config: str) -> nn.Module:
    """A randomly initialised YOLO-pose from an ultralytics YAML (name of a packaged
    config such as ``"yolo11n-pose.yaml"``, or a local path). For tests and benchmarks:
    random weights find no people at the default confidence; use a tiny ``conf``.

    Raises:
        PoseWeightsError: not a YAML, unknown name, or not a 17-joint pose config.
    """
    if not str(model_config).lower().endswith((".yaml", ".yml")):
        raise PoseWeightsError(model_config, "model_config must be an ultralytics YAML such as 'yolo11n-pose.yaml'")
    try:
        return ul.load_model(model_config=model_config, task="pose", kpt_shape=(NUM_JOINTS, 3))
    except UltralyticsModelError as err:
        raise _pose_error(err) from err


class YoloPoseEstimator(nn.Module):
    """A frozen YOLO-pose model and the ultralytics predictor that runs it.

    Args:
        model: a pose model from :func:`load_pose_model` / :func:`build_pose_model`.
        max_people: ``K``; NMS keeps the ``K`` most confident people of a frame.
        conf: person confidence threshold.
        iou: NMS IoU threshold.
        imgsz: inference size (the long side; letterboxed).
        batch_size: frames per predictor call (one call for a whole ordinary clip).

    Shapes:
        forward: ``frames [F, 3, H, W]`` uint8 RGB → ``keypoints [F, K, 17, 3]`` (``x, y``
        normalised to the frame, ``c`` the joint confidence), ``boxes [F, K, 4]``
        (normalised ``x1, y1, x2, y2``), ``scores [F, K]``, ``person_mask [F, K]`` bool;
        people sorted by score.
    """

    def __init__(
        self,
        model: nn.Module,
        max_people: int,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        batch_size: int = 16,
    ) -> None:
        super().__init__()
        self.model = model
        self.max_people = int(max_people)
        self.conf, self.iou, self.imgsz, self.batch_size = float(conf), float(iou), int(imgsz), int(batch_size)
        self._predictor: Any = None
        self._predictor_key: tuple | None = None

    def _get_predictor(self):
        param = next(self.model.parameters())
        key = (str(param.device), param.dtype)
        if self._predictor is None or key != self._predictor_key:
            _ultralytics()
            from ultralytics.models.yolo.pose import PosePredictor

            overrides = dict(
                conf=self.conf,
                iou=self.iou,
                imgsz=self.imgsz,
                max_det=self.max_people,
                batch=self.batch_size,
                device=str(param.device),
                rect=True,  # minimal letterbox padding, as YOLO.predict does
                mode="predict",
                save=False,
                verbose=False,
            )
            with _keep_torch_threads():
                predictor = PosePredictor(overrides=overrides)
                predictor.setup_model(self.model, verbose=False)  # wraps this module; float32, no reload
            self._predictor, self._predictor_key = predictor, (str(param.device), next(self.model.parameters()).dtype)
        return self._predictor

    def __getstate__(self) -> dict[str, Any]:  # the predictor is rebuilt on demand
        state = dict(super().__getstate__())
        state["_predictor"], state["_predictor_key"] = None, None
        return state

    def extra_repr(self) -> str:
        return (
            f"max_people={self.max_people}, conf={self.conf:g}, iou={self.iou:g}, imgsz={self.imgsz}, "
            f"batch_size={self.batch_size}"
        )

    def train(self, mode: bool = True) -> YoloPoseEstimator:
        return super().train(False)  # frozen perception: always in eval mode

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        if frames.dim() != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"YoloPoseEstimator expects uint8 RGB frames [F, 3, H, W], got {tuple(frames.shape)}")
        n, _, h, w = frames.shape
        out = empty_pose_features(n, self.max_people)
        predictor = self._get_predictor()
        bgr = frames.permute(0, 2, 3, 1).flip(-1).contiguous().cpu().numpy()  # ultralytics reads arrays as BGR
        scale = torch.tensor([w, h], dtype=torch.float32)
        for start in range(0, n, self.batch_size):
            chunk = [bgr[i] for i in range(start, min(n, start + self.batch_size))]
            with _keep_torch_threads():
                results = predictor(source=chunk, stream=False)
            for i, result in enumerate(results, start=start):
                boxes = result.boxes
                if boxes is None or len(boxes) == 0:
                    continue
                conf = boxes.conf.float().cpu()
                order = torch.argsort(conf, descending=True, stable=True)[: self.max_people]
                kp = result.keypoints.data.float().cpu()[order]  # [k, 17, 3] pixels of the frame
                kp[..., :2] = (kp[..., :2] / scale).clamp(0, 1)
                k = len(order)
                out["keypoints"][i, :k] = kp
                out["boxes"][i, :k] = boxes.xyxyn.float().cpu()[order].clamp(0, 1)
                out["scores"][i, :k] = conf[order]
                out["person_mask"][i, :k] = True
        return out
