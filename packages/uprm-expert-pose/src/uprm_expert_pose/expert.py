"""The human-pose expert (HPE) of UPRM: frozen COCO-17 pose estimation per sampled frame,
and the trainable adapter of paper eq.1–3 on the coarse token grid."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import uprm
from uprm.utils import file_sha256
from uprm_expert_pose.adapter import SELF_ATTENTION_MODES, PoseAdapter
from uprm_expert_pose.errors import PoseSourceError
from uprm_expert_pose.keypoints import pose_features, read_keypoint_file
from uprm_expert_pose.yolo import YoloPoseEstimator, build_pose_model, load_pose_model, resolve_pose_weights

__all__ = ["SOURCES", "PoseExpert"]

SOURCES = ("auto", "json", "yolo")


def _check_options(source: str, self_attention: str, max_people: int, weights, model_config) -> None:
    if source not in SOURCES:
        raise ValueError(f"pose expert: source must be one of {SOURCES}, got {source!r}")
    if self_attention not in SELF_ATTENTION_MODES:
        raise ValueError(f"pose expert: self_attention must be one of {SELF_ATTENTION_MODES}, got {self_attention!r}")
    if not isinstance(max_people, int) or max_people < 1:
        raise ValueError(f"pose expert: max_people must be a positive int, got {max_people!r}")
    if weights is not None and model_config is not None:
        raise ValueError("pose expert: give weights= (a trained .pt) or model_config= (random weights), not both")
    if source == "yolo" and weights is None and model_config is None:
        raise ValueError(
            "pose expert: source='yolo' needs weights= (a local YOLO-pose .pt) or model_config= (an ultralytics YAML)"
        )


class PoseExpert(uprm.Expert):
    """Fine-grained human-pose expert (HPE).

    Perception (frozen), per sampled frame up to ``K`` people × 17 COCO joints, from:

    * a keypoint JSON named by ``clip.meta["keypoints"]`` (COCO results list as
      HigherHRNet/mmpose write it, or the COCO dataset layout; docs/formats.md), or
    * an ultralytics YOLO-pose model: ``weights=`` a ``.pt`` (loaded in safe mode; a local
      path, or a bare asset name such as ``"yolo11n-pose.pt"`` that ultralytics downloads
      when the machine is online), or ``model_config=`` an ultralytics YAML for a randomly
      initialised model (tests, benchmarks), run on all frames of the clip in one batched call.

    With ``source="auto"`` (default) a clip's keypoint file wins, else the model runs,
    else ``extract`` raises an error naming the clip and what to pass. ``PoseExpert(ctx)``
    needs no file at all.

    Options:
        weights: a YOLO-pose ``.pt`` (task ``pose``, kpt_shape ``[17, 3]``): a local path, or
            an ultralytics asset name (downloaded by ultralytics online; offline an error).
        model_config: ultralytics YAML name/path (``"yolo11n-pose.yaml"``), random weights.
        source: ``"auto"``, ``"json"`` (keypoint files only) or ``"yolo"`` (model only).
        max_people: ``K``, people kept per frame (the most confident).
        conf, iou, imgsz, batch_size: YOLO-pose inference settings.
        residual: ``False`` (default, the paper): the output is ``T_{c+1}`` of eq.2–3, built
            on the cross-attention output ``T_c`` alone — pose information only, which the
            trade-off router (eq.6) mixes with the coarse tokens. ``True``: the residual
            form, ``T_c = LN(T_v + CrossAttn)``, so the output also carries the coarse tokens
            (a frame with nobody keeps its content) — for the ablation.
        temporal_layers: self-attention layers over the clip's frame tokens before eq.2
            (pose dynamics; not in the paper): ``0`` (default) none.
        person_pool: a frame token is the ``"max"`` (default) or the ``"mean"`` of the frame's
            person tokens; ``"mean"`` is what pose checkpoints saved before it was an option used (CHANGELOG).
        joint_dim, pose_dim, graph_layers, model_dim, num_heads, ffn_mult, self_attention,
        dropout: the adapter (:class:`~uprm_expert_pose.adapter.PoseAdapter`).

    Shapes:
        extract: ``clip.frames [F, 3, H, W]`` → ``keypoints [F, K, 17, 3]`` (x, y
        normalised to the frame, c in [0, 1]), ``boxes [F, K, 4]`` (normalised x1, y1,
        x2, y2), ``scores [F, K]``, ``person_mask [F, K]`` (bool); fixed shapes, so the
        default ``collate`` stacks them.
        forward: those with a batch dim + ``video_tokens [B, F × tokens_per_frame, D]`` →
        ``[B, F × tokens_per_frame, D]`` in ``video_tokens``' dtype.
    """

    name = "pose"
    granularity = "fine"
    frame_wise = True  # each frame is perceived on its own
    #: not in the feature cache's key: the adapter's shape and the YOLO batch size
    adapter_options = frozenset({
        "batch_size", "joint_dim", "pose_dim", "graph_layers", "temporal_layers", "model_dim", "num_heads",
        "ffn_mult", "self_attention", "dropout", "residual", "person_pool",
    })  # fmt: skip
    feature_version = "1"

    def __init__(
        self,
        ctx: uprm.ExpertContext,
        weights: str | None = None,
        model_config: str | None = None,
        source: str = "auto",
        max_people: int = 8,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        batch_size: int = 16,
        joint_dim: int = 64,
        pose_dim: int = 256,
        graph_layers: int = 1,
        temporal_layers: int = 0,
        model_dim: int | None = None,
        num_heads: int = 8,
        ffn_mult: int = 4,
        self_attention: str = "full",
        dropout: float = 0.0,
        residual: bool = False,
        person_pool: str = "max",
    ) -> None:
        super().__init__(ctx)
        _check_options(source, self_attention, max_people, weights, model_config)
        self.max_people = max_people
        self.source = source
        self._weights_sha256: str | None = None
        self.estimator: YoloPoseEstimator | None = None
        if weights is not None or model_config is not None:
            model = self._pose_model(weights, model_config)
            estimator = YoloPoseEstimator(model, max_people, conf=conf, iou=iou, imgsz=imgsz, batch_size=batch_size)
            self.add_perception("estimator", estimator)
        self.adapter = PoseAdapter(
            ctx.hidden_size,
            ctx.tokens_per_frame,
            joint_dim=joint_dim,
            pose_dim=pose_dim,
            graph_layers=graph_layers,
            temporal_layers=temporal_layers,
            model_dim=model_dim,
            num_heads=num_heads,
            ffn_mult=ffn_mult,
            self_attention=self_attention,
            dropout=dropout,
            residual=residual,
            person_pool=person_pool,
        )

    def _pose_model(self, weights: str | None, model_config: str | None):
        if weights is None:
            return build_pose_model(model_config)
        path = resolve_pose_weights(weights)  # a bare asset name may be downloaded (online)
        model = load_pose_model(path)
        self._weights_sha256 = file_sha256(path)
        return model

    # ------------------------------------------------------------------ perception
    def extract(self, clip: uprm.VideoClip) -> dict[str, torch.Tensor]:
        keypoints = clip.meta.get("keypoints")
        if keypoints is not None and self.source in ("auto", "json"):
            return pose_features(read_keypoint_file(Path(keypoints)), clip, self.max_people)
        if self.estimator is not None and self.source in ("auto", "yolo"):
            return self.estimator(clip.frames)
        if self.source == "json":
            raise PoseSourceError(
                f"pose expert: clip {clip.video_id!r} has no keypoint file: set clip.meta['keypoints'] to the path of "
                "its COCO keypoint JSON (docs/formats.md), or use source='auto' with weights="
            )
        raise PoseSourceError(
            f"pose expert: no poses for clip {clip.video_id!r}: it has no clip.meta['keypoints'] (a COCO keypoint "
            "JSON, docs/formats.md) and the expert was built without a pose model; pass weights='path/to/"
            "yolo11n-pose.pt' (a local ultralytics YOLO-pose checkpoint) or attach keypoint files to the clips"
        )

    def extraction_config(self) -> dict[str, Any]:
        config = super().extraction_config()
        if self._weights_sha256 is not None:
            config["weights_sha256"] = self._weights_sha256
        return config

    # ------------------------------------------------------------------ adapter
    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        if video_tokens is None:
            raise ValueError("pose expert: forward() needs the coarse video tokens [B, T, D] as queries (eq.2)")
        self.frames_in(video_tokens)  # checks T = F × tokens_per_frame
        missing = {"keypoints", "boxes", "scores", "person_mask"} - set(features)
        if missing:
            raise KeyError(f"pose expert: features lack {sorted(missing)} (made by PoseExpert.extract + collate)")
        return self.adapter(features, video_tokens)
