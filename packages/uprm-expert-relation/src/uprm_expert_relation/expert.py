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

**Adapter (trainable, ``forward``)** — GTN-MOI of the paper, as read here:

1. *Object masking* ("keep what is inside the boxes, conceal the rest"): each object's
   region feature is the mean of the coarse video tokens (the frozen tower's patch grid
   after the projector, ``video_tokens``) over the patches under its box
   (``uprm.experts.grid.boxes_to_patch_mask``, boxes mapped into the tower's centre
   crop); everything outside the boxes is concealed from the graph.
2. *Node features* ``F⁽⁰⁾ = LN(W_r LN(region) + E_label(v) + W_b box(d) + roles)``: the
   region, the category ``v`` and the box ``d`` of paper's ``V_i = {(v, d)}``, and the
   score-weighted mean embeddings of the predicates the node takes part in as subject
   and as object (so *what* the relation is reaches the nodes, not only that there is one).
3. *Graph layers* (eq.4–5), ``L`` of them, ``torch_geometric.nn.DenseGCNConv``:
   ``Z⁽ˡ⁾ = D^-½ C D^-½ F⁽ˡ⁾``, ``F⁽ˡ⁺¹⁾ = ReLU(Z⁽ˡ⁾ W⁽ˡ⁾)`` (no bias, as eq.5), per frame.
   ``C = A + Aᵀ + I``: ``A_pq = Σ_r softplus(θ[s_r]) · score_r`` over the predicates
   ``s_r`` of ``p → q`` (a learned, positive strength per predicate, 1 at start),
   symmetrised so subject and object inform each other (roles are in the node features),
   plus self-loops (Kipf & Welling's renormalisation; a node without relations keeps
   its own features). ``D_ii = Σ_j C_ij`` as in the paper.
4. *FFN* on the last layer: ``Y_s = FFN(F⁽ᴸ⁾)``, one ``D``-vector per object.
5. *Onto the grid*, ``grid="scatter"`` (default): every patch token under boxes gets the
   mean ``Y_s`` of the objects covering it, and every token of the frame (the CLS slot
   included) the frame's mean ``Y_s``; ``grid="attention"``: cross-attention with the
   video tokens as queries over the frame's objects (``GridCrossAttention``, a learned
   null key for frames without objects). The expert returns ``video_tokens + Δ``: with
   the trade-off router (eq.6) the coarse tokens are then kept whatever weight the
   router gives this expert, and that weight scales only the relation signal.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import uprm
from uprm.experts.grid import GridCrossAttention, boxes_to_patch_mask
from uprm_expert_relation.geometry import GeometryThresholds, derive_relations
from uprm_expert_relation.graph import FrameGraph, encode_graphs
from uprm_expert_relation.vocab import Vocabulary, default_labels, default_predicates

__all__ = ["RelationExpert", "box_features"]

SOURCES = ("auto", "json", "detector")
GRIDS = ("scatter", "attention")
FEATURE_KEYS = ("labels", "scores", "boxes", "grid_boxes", "object_mask", "relations", "relation_scores")


def box_features(boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``(x1, y1, x2, y2, cx, cy, w, h, √(wh), score)`` of frame-normalised boxes.

    Shapes: ``boxes [..., 4]``, ``scores [...]`` → ``[..., 10]``.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = (x2 - x1).clamp(min=0), (y2 - y1).clamp(min=0)
    return torch.stack([x1, y1, x2, y2, (x1 + x2) / 2, (y1 + y2) / 2, w, h, (w * h).sqrt(), scores], dim=-1)


class RelationExpert(uprm.Expert):
    """Fine-grained object-relation expert (ORE, paper eq.4–5).

    Options (perception):
        weights: local ultralytics detection checkpoint (``.pt``), loaded in safe mode.
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
    ) -> None:
        super().__init__(ctx)
        if source not in SOURCES:
            raise ValueError(f"relation expert: source must be one of {SOURCES}, got {source!r}")
        if grid not in GRIDS:
            raise ValueError(f"relation expert: grid must be one of {GRIDS}, got {grid!r}")
        for key, value in (
            ("max_objects", max_objects),
            ("max_relations", max_relations),
            ("imgsz", imgsz),
            ("batch_size", batch_size),
            ("num_layers", num_layers),
            ("node_dim", node_dim),
            ("label_buckets", label_buckets),
            ("predicate_buckets", predicate_buckets),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"relation expert: {key} must be a positive int, got {value!r}")
        for key, value in (("conf", conf), ("iou", iou)):
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"relation expert: {key} must be in [0, 1], got {value!r}")
        if weights is not None and model_config is not None:
            raise ValueError("relation expert: give weights (a local .pt) or model_config (a YAML), not both")
        if source == "detector" and weights is None and model_config is None:
            raise ValueError(
                "relation expert: source='detector' needs weights='path/to/detector.pt' "
                "(or model_config='yolo11n.yaml' for a random detector in tests)"
            )
        self.source = source
        self.max_objects, self.max_relations = max_objects, max_relations
        self.conf, self.iou, self.imgsz, self.batch_size = float(conf), float(iou), imgsz, batch_size
        self.derive = derive_relations
        self.geometry = GeometryThresholds.from_options(geometry)
        self.labels = Vocabulary(default_labels(), label_buckets)
        self.predicates = Vocabulary(default_predicates(), predicate_buckets)
        self.detector_names: list[str] = []
        self._weights_sha256: str | None = None
        if weights is not None or model_config is not None:
            from uprm_expert_relation.detector import load_detector

            model, self.detector_names = load_detector(weights, model_config, seed=seed)
            self.add_perception("detector", model)

        # ------------------------------------------------------------------ adapter
        from torch_geometric.nn import DenseGCNConv  # ~2-6 s to import: only when an expert is built

        d, hidden = node_dim, ctx.hidden_size
        self.grid = grid
        self.region_proj = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, d))
        self.label_embed = nn.Embedding(self.labels.size, d, padding_idx=0)
        self.box_embed = nn.Linear(10, d)
        self.subject_embed = nn.Embedding(self.predicates.size, d, padding_idx=0)
        self.object_embed = nn.Embedding(self.predicates.size, d, padding_idx=0)
        # softplus(θ) = 1 at the start: every predicate links its pair with its score
        self.predicate_strength = nn.Parameter(torch.full((self.predicates.size,), math.log(math.e - 1.0)))
        self.node_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(DenseGCNConv(d, d, bias=False) for _ in range(num_layers))
        ffn = ffn_dim or 4 * d
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, hidden))
        if grid == "attention":
            self.cross = GridCrossAttention(hidden, hidden, num_heads, ctx.tokens_per_frame, per_frame=True)

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
        weights = self.options.get("weights")
        if weights is not None:
            if self._weights_sha256 is None:
                from uprm.utils import file_sha256

                self._weights_sha256 = file_sha256(weights)
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
    def adjacency(self, relations: torch.Tensor, relation_scores: torch.Tensor) -> torch.Tensor:
        """``C`` of eq.4 without its self-loops: ``A + Aᵀ`` with
        ``A_pq = Σ_r softplus(θ[relations[p, q, r]]) · relation_scores[p, q, r]``.

        Shapes: ``relations [..., K, K, R]`` int64, ``relation_scores [..., K, K, R]`` → ``[..., K, K]``.
        """
        strength = F.softplus(self.predicate_strength).to(relation_scores.dtype)
        weight = strength[relations] * relation_scores * (relations > 0)
        a = weight.sum(-1)
        return a + a.transpose(-1, -2)

    def _roles(self, relations: torch.Tensor, relation_scores: torch.Tensor) -> torch.Tensor:
        """Score-weighted mean predicate embeddings of each node, as subject and as object.

        Shapes: ``[B, F, K, K, R]`` → ``[B, F, K, d]``.
        """
        b, f, k, _, r = relations.shape
        weight = relation_scores * (relations > 0)
        size = self.predicates.size
        out = 0
        for table, rel, w in (
            (self.subject_embed, relations, weight),
            (self.object_embed, relations.transpose(2, 3), weight.transpose(2, 3)),
        ):
            counts = torch.zeros(b, f, k, size, dtype=w.dtype, device=w.device)
            counts.scatter_add_(-1, rel.reshape(b, f, k, k * r), w.reshape(b, f, k, k * r))
            total = counts.sum(-1, keepdim=True)
            out = out + (counts / total.clamp(min=1e-6)) @ table.weight
        return out

    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        """Object masking → node features → ``L`` graph layers (eq.4–5) → FFN → the grid.

        Shapes:
            features: the keys of ``extract`` with a batch dim (``labels [B, F, K]``, ...,
            ``relations [B, F, K, K, R]``)
            video_tokens: ``[B, F × tokens_per_frame, D]`` (the coarse expert's output)
            returns: ``[B, F × tokens_per_frame, D]`` = ``video_tokens + Δ``, in ``video_tokens``' dtype
        """
        if video_tokens is None:
            raise ValueError("relation expert: forward() needs the coarse video tokens [B, T, D]")
        missing = [k for k in FEATURE_KEYS if k not in features]
        if missing:
            raise KeyError(f"relation expert: features lack {missing} (were they made by RelationExpert.extract?)")
        b, t, hidden = video_tokens.shape
        f = self.frames_in(video_tokens)
        labels = features["labels"]
        if tuple(labels.shape[:2]) != (b, f):
            raise ValueError(
                f"relation expert: features are for {tuple(labels.shape[:2])} (batch, frames), "
                f"the video tokens for {(b, f)}"
            )
        weight = self.ffn[0].weight
        device, dtype = weight.device, weight.dtype
        tpf, k = self.ctx.tokens_per_frame, labels.shape[2]
        labels = labels.to(device)
        mask = features["object_mask"].to(device).bool()
        boxes = features["boxes"].to(device, dtype)
        grid_boxes = features["grid_boxes"].to(device, dtype)
        scores = features["scores"].to(device, dtype)
        relations = features["relations"].to(device)
        relation_scores = features["relation_scores"].to(device, dtype)
        h = video_tokens.to(device, dtype)

        # 1. object masking: the mean token under each box (in the tower's crop); the rest is concealed
        visible = mask & (grid_boxes[..., 2] > grid_boxes[..., 0]) & (grid_boxes[..., 3] > grid_boxes[..., 1])
        cover = boxes_to_patch_mask(grid_boxes, self.ctx.grid_size, self.ctx.num_prefix_tokens)
        cover = (cover & visible[..., None]).to(dtype).view(b * f, k, tpf)
        frames = h.view(b * f, tpf, hidden)
        region = torch.bmm(cover / cover.sum(-1, keepdim=True).clamp(min=1), frames).view(b, f, k, hidden)

        # 2. node features: region + category + box + the predicates the node takes part in
        nodes = (
            self.region_proj(region)
            + self.label_embed(labels)
            + self.box_embed(box_features(boxes, scores))
            + self._roles(relations, relation_scores)
        )
        nodes = self.node_norm(nodes) * mask[..., None]

        # 3. eq.4-5 on every frame's graph: F(l+1) = ReLU(D^-1/2 C D^-1/2 F(l) W(l))
        adj = self.adjacency(relations, relation_scores).reshape(b * f, k, k)
        x = nodes.reshape(b * f, k, -1)
        node_mask = mask.reshape(b * f, k)
        for layer in self.layers:
            x = F.relu(layer(x, adj, node_mask, add_loop=True))

        # 4. FFN: one D-vector per object
        y = self.ffn(x) * node_mask[..., None]  # [B·F, K, D]

        # 5. onto the grid
        if self.grid == "scatter":
            # token t of a frame gets the mean y of the objects over it plus the frame's mean y:
            # one [tpf, K] weight matrix per frame, and h + weights @ y in one batched matmul
            per_patch = cover / cover.sum(1, keepdim=True).clamp(min=1)  # [B·F, K, tpf]
            summary = node_mask.to(dtype) / node_mask.sum(-1, keepdim=True).clamp(min=1)  # [B·F, K]
            weights = (per_patch + summary[..., None]).transpose(1, 2)  # [B·F, tpf, K]
            out = torch.baddbmm(frames, weights, y).view(b, t, hidden)
        else:
            out = h + self.cross(h, y.view(b, f, k, hidden), mask)
        return out.to(video_tokens.dtype)
