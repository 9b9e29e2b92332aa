"""The fine-grained object-relation expert (ORE, paper §3.2, eq.4–5).

**Perception (frozen, ``extract``).** One object graph per sampled frame, from either

* a RelTR-style scene-graph JSON file, ``clip.meta["scene_graph"]`` (docs/formats.md;
  :mod:`uprm_expert_relation.scene_graph`), or
* an ultralytics detector (``weights=`` a local ``.pt``, loaded in safe mode; or
  ``model_config=`` a YAML for a random one in tests) whose boxes are turned into
  relations by documented geometric and motion rules
  (:mod:`uprm_expert_relation.geometry`: near, overlapping, inside, above/below,
  left/right of, approaching, moving away).

Labels and predicates become ids through fixed vocabularies with hashed buckets for
unknown strings (:mod:`uprm_expert_relation.vocab`); the graphs are padded to ``K``
objects and ``R`` predicates per ordered pair (:func:`~uprm_expert_relation.graph.encode_graphs`).

**Adapter (trainable, ``forward``)** — GTN-MOI of the paper, as read here, in
:class:`~uprm_expert_relation.adapter.RelationAdapter`: object masking (each object's
region = the mean coarse token under its box), node features (region + category + box +
the predicates it takes part in + its frame's position), ``L`` graph layers of eq.4–5
(``torch_geometric``'s ``DenseGCNConv``), an FFN, and placement on the coarse grid.
With ``residual=False`` (default, the paper) the output is ``Y_s = FFN(F⁽ᴸ⁾)`` on the
grid — relation information only, which the trade-off router (eq.6) mixes with the coarse
tokens; ``residual=True`` returns ``video_tokens + Δ`` instead (the coarse tokens carried
through; for the ablation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import uprm
from uprm_expert_relation.adapter import FEATURE_KEYS, GRIDS, RelationAdapter, box_features
from uprm_expert_relation.geometry import GeometryThresholds, derive_relations
from uprm_expert_relation.graph import FrameGraph, encode_graphs
from uprm_expert_relation.vocab import Vocabulary, default_labels, default_predicates

__all__ = ["RelationExpert", "box_features"]

SOURCES = ("auto", "json", "detector")
_POSITIVE_INTS = (
    "max_objects", "max_relations", "imgsz", "batch_size", "num_layers", "node_dim", "label_buckets",
    "predicate_buckets", "num_heads",
)  # fmt: skip


def _check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad options with an error naming the option."""
    if options["source"] not in SOURCES:
        raise ValueError(f"relation expert: source must be one of {SOURCES}, got {options['source']!r}")
    if options["grid"] not in GRIDS:
        raise ValueError(f"relation expert: grid must be one of {GRIDS}, got {options['grid']!r}")
    for key in _POSITIVE_INTS:
        value = options[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"relation expert: {key} must be a positive int, got {value!r}")
    for key in ("conf", "iou"):
        value = options[key]
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"relation expert: {key} must be in [0, 1], got {value!r}")
    weights, model_config = options["weights"], options["model_config"]
    if weights is not None and model_config is not None:
        raise ValueError("relation expert: give weights (a local .pt) or model_config (a YAML), not both")
    if options["source"] == "detector" and weights is None and model_config is None:
        raise ValueError(
            "relation expert: source='detector' needs weights='path/to/detector.pt' "
            "(or model_config='yolo11n.yaml' for a random detector in tests)"
        )


class RelationExpert(uprm.Expert):
    """Fine-grained object-relation expert (ORE, paper eq.4–5).

    Options (perception):
        weights: ultralytics detection checkpoint (``.pt``), loaded in safe mode: a local
            path, or a bare asset name (``"yolo11n.pt"``) that ultralytics downloads when the
            machine is online (offline: an error naming the file).
        model_config: ultralytics YAML (``"yolo11n.yaml"``) for a randomly initialised
            detector (seeded by ``seed``) — tests and benchmarks only.
        source: ``"auto"`` (the clip's scene-graph JSON when ``clip.meta["scene_graph"]``
            is set, else the detector), ``"json"`` or ``"detector"``.
        max_objects: ``K``, objects kept per frame (the best-scoring ones).
        max_relations: ``R``, predicates kept per ordered pair of objects.
        conf, iou, imgsz, batch_size: the detector's confidence and NMS IoU thresholds,
            input size (long side) and frames per forward pass.
        derive_relations: add the geometric/motion predicates to the graphs; ``None``
            (default) = for detector graphs only.
        geometry: overrides of :class:`~uprm_expert_relation.geometry.GeometryThresholds`.
        label_buckets, predicate_buckets: hashed ids for unknown labels/predicates.

    Options (adapter):
        num_layers: ``L`` graph layers (eq.4–5).
        node_dim: width of the graph's node features.
        ffn_dim: hidden width of the FFN after the last layer (default ``4 × node_dim``).
        grid: ``"scatter"`` or ``"attention"`` (how object tokens reach the grid).
        num_heads: heads of the cross-attention (``grid="attention"``).
        residual: ``False`` (default, the paper): the output is ``FFN(F⁽ᴸ⁾)`` on the grid,
            relation information only; ``True``: ``video_tokens + Δ``, the coarse tokens
            carried through (the router's weight then scales only the relation signal).

    Shapes (``F`` frames, ``K`` objects, ``R`` predicates per pair, ``D`` hidden size):
        extract: ``{labels [F, K] int64, scores [F, K], boxes [F, K, 4], grid_boxes [F, K, 4],
        object_mask [F, K] bool, relations [F, K, K, R] int64, relation_scores [F, K, K, R]}``
        forward: those with a batch dim, ``video_tokens [B, F × tokens_per_frame, D]`` →
        ``[B, F × tokens_per_frame, D]`` in ``video_tokens``' dtype.
    """

    name = "relation"
    granularity = "fine"
    #: bump when extraction or the vocabularies change
    feature_version = "1"
    adapter_options = frozenset({"batch_size", "num_layers", "node_dim", "ffn_dim", "grid", "num_heads", "residual"})

    def __init__(
        self,
        ctx: uprm.ExpertContext,
        weights: str | os.PathLike | None = None,
        model_config: str | None = None,
        source: str = "auto",
        max_objects: int = 16,
        max_relations: int = 4,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        batch_size: int = 8,
        seed: int = 0,
        derive_relations: bool | None = None,
        geometry: Mapping[str, float] | None = None,
        label_buckets: int = 64,
        predicate_buckets: int = 32,
        num_layers: int = 2,
        node_dim: int = 256,
        ffn_dim: int | None = None,
        grid: str = "scatter",
        num_heads: int = 8,
        residual: bool = False,
    ) -> None:
        super().__init__(ctx)
        _check_options(locals())
        self.source = source
        self.max_objects, self.max_relations = max_objects, max_relations
        self.conf, self.iou, self.imgsz, self.batch_size = float(conf), float(iou), imgsz, batch_size
        self.derive = derive_relations
        self.geometry = GeometryThresholds.from_options(geometry)
        self.labels = Vocabulary(default_labels(), label_buckets)
        self.predicates = Vocabulary(default_predicates(), predicate_buckets)
        self.detector_names: list[str] = []
        self._weights_path: Path | None = None
        self._weights_sha256: str | None = None
        if weights is not None or model_config is not None:
            self._add_detector(weights, model_config, seed)
        self.adapter = RelationAdapter(
            ctx.hidden_size, ctx.tokens_per_frame, ctx.grid_size, ctx.num_prefix_tokens,
            self.labels.size, self.predicates.size, node_dim=node_dim, num_layers=num_layers, ffn_dim=ffn_dim,
            grid=grid, num_heads=num_heads, residual=residual,
        )  # fmt: skip

    def _add_detector(self, weights, model_config, seed: int) -> None:
        from uprm.integrations.ultralytics import resolve_weights
        from uprm_expert_relation.detector import MISSING_WEIGHTS, load_detector

        if weights is not None:  # a bare asset name may be downloaded (online): fingerprint that file
            weights = self._weights_path = resolve_weights(weights, MISSING_WEIGHTS.format(Path(weights).expanduser()))
        model, self.detector_names = load_detector(weights, model_config, seed=seed)
        self.add_perception("detector", model)

    # ------------------------------------------------------------------ perception
    def _source_for(self, clip: uprm.VideoClip) -> str:
        path = (clip.meta or {}).get("scene_graph")
        has_detector = getattr(self, "detector", None) is not None
        if self.source == "json" or (self.source == "auto" and path):
            if not path:
                raise ValueError(
                    f"relation expert: clip {clip.video_id!r} has no scene graph: set clip.meta['scene_graph'] to "
                    "the path of its scene-graph JSON (docs/formats.md), or use source='auto' with a detector"
                )
            return "json"
        if has_detector:
            return "detector"
        raise ValueError(
            f"relation expert: clip {clip.video_id!r} has no scene graph (clip.meta['scene_graph'] is not set) "
            "and the expert has no detector; give the clip a scene-graph JSON path in meta['scene_graph'] "
            "(docs/formats.md; instruction records carry it as 'scene_graph'), or build the expert with "
            "weights='path/to/yolo11n.pt' (a local ultralytics detection checkpoint)"
        )

    def frame_graphs(self, clip: uprm.VideoClip) -> list[FrameGraph]:
        """The clip's per-frame object graphs, before encoding (for inspection):
        at most ``max_objects`` per frame, derived predicates added as configured."""
        source = self._source_for(clip)
        if source == "json":
            from uprm_expert_relation.scene_graph import clip_frame_graphs

            graphs = clip_frame_graphs(clip, clip.meta["scene_graph"])
            derive = self.derive is True
        else:
            from uprm_expert_relation.detector import detect

            graphs = detect(
                self.detector,
                self.detector_names,
                clip.frames,
                imgsz=self.imgsz,
                conf=self.conf,
                iou=self.iou,
                max_det=self.max_objects,
                batch_size=self.batch_size,
            )
            derive = self.derive is not False
        graphs = [g.keep_top(self.max_objects) for g in graphs]
        if derive:
            graphs = derive_relations(graphs, (clip.width, clip.height), self.geometry)
        return graphs

    def extract(self, clip: uprm.VideoClip) -> dict[str, torch.Tensor]:
        """One clip → padded graph tensors (see the class doc's ``Shapes``)."""
        graphs = self.frame_graphs(clip)
        return encode_graphs(
            graphs, self.labels, self.predicates, self.max_objects, self.max_relations, (clip.width, clip.height)
        )

    def extraction_config(self) -> dict[str, Any]:
        config = super().extraction_config()
        config["vocabulary"] = {
            "labels": len(self.labels.known),
            "predicates": len(self.predicates.known),
        }
        if self._weights_path is not None:
            if self._weights_sha256 is None:
                from uprm.utils import file_sha256

                self._weights_sha256 = file_sha256(self._weights_path)
            config["weights_sha256"] = self._weights_sha256
        return config

    def describe(self, features: Mapping[str, torch.Tensor]) -> list[list[str]]:
        """One clip's features as text, per frame: ``"person#0 -holding-> bag#1 (0.87)"``
        for each relation and ``"person#0"`` for each object without one."""
        out = []
        for f in range(features["labels"].shape[0]):
            lines, related = [], set()
            labels = features["labels"][f].tolist()
            rel, rs = features["relations"][f], features["relation_scores"][f]
            for i, j, r in torch.nonzero(rel).tolist():
                related |= {i, j}
                lines.append(
                    f"{self.labels.name(labels[i])}#{i} -{self.predicates.name(int(rel[i, j, r]))}-> "
                    f"{self.labels.name(labels[j])}#{j} ({float(rs[i, j, r]):.2f})"
                )
            for i in torch.nonzero(features["object_mask"][f]).flatten().tolist():
                if i not in related:
                    lines.append(f"{self.labels.name(labels[i])}#{i}")
            out.append(lines)
        return out

    # ------------------------------------------------------------------ adapter
    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        """Object masking → node features → ``L`` graph layers (eq.4–5) → FFN → the grid
        (:class:`~uprm_expert_relation.adapter.RelationAdapter`).

        Shapes:
            features: the keys of ``extract`` with a batch dim (``labels [B, F, K]``, ...,
            ``relations [B, F, K, K, R]``)
            video_tokens: ``[B, F × tokens_per_frame, D]`` (the coarse expert's output)
            returns: ``[B, F × tokens_per_frame, D]`` in ``video_tokens``' dtype: ``FFN(F⁽ᴸ⁾)``
            on the grid, or ``video_tokens + Δ`` with ``residual=True``
        """
        if video_tokens is None:
            raise ValueError("relation expert: forward() needs the coarse video tokens [B, T, D]")
        missing = [k for k in FEATURE_KEYS if k not in features]
        if missing:
            raise KeyError(f"relation expert: features lack {missing} (were they made by RelationExpert.extract?)")
        b, f = video_tokens.shape[0], self.frames_in(video_tokens)
        if tuple(features["labels"].shape[:2]) != (b, f):
            raise ValueError(
                f"relation expert: features are for {tuple(features['labels'].shape[:2])} (batch, frames), "
                f"the video tokens for {(b, f)}"
            )
        return self.adapter(features, video_tokens)
