"""The trainable half of the object-relation expert (ORE, paper §3.1, eq.4–5): GTN-MOI as
read here, from the per-frame object graphs of ``RelationExpert.extract`` to tokens on
the coarse grid.

1. *Object masking* ("keep what is inside the boxes, conceal the rest"): each object's
   region feature is the mean of the coarse video tokens (the frozen tower's patch grid
   after the projector) over the patches under its box
   (:func:`uprm.experts.grid.boxes_to_patch_mask`, boxes mapped into the tower's centre
   crop); everything outside the boxes is concealed from the graph.
2. *Node features* ``F⁽⁰⁾ = LN(W_r LN(region) + E_label(v) + W_b box(d) + roles) + pos(f)``:
   the region, the category ``v`` and the box ``d`` of the paper's ``V_i = {(v, d)}``, the
   score-weighted mean embeddings of the predicates the node takes part in as subject and
   as object (so *what* the relation is reaches the nodes, not only that there is one),
   and the sinusoidal position of the node's frame
   (:func:`uprm.experts.grid.add_frame_positions`) — the graphs are per frame, so without
   it nothing would tell the frames of a clip apart.
3. *Graph layers* (eq.4–5), ``L`` of them, ``torch_geometric.nn.DenseGCNConv``:
   ``Z⁽ˡ⁾ = D^-½ C D^-½ F⁽ˡ⁾``, ``F⁽ˡ⁺¹⁾ = ReLU(Z⁽ˡ⁾ W⁽ˡ⁾)`` (no bias, as eq.5), per frame.
   ``C = A + Aᵀ + I``: ``A_pq = Σ_r softplus(θ[s_r]) · score_r`` over the predicates
   ``s_r`` of ``p → q`` (a learned, positive strength per predicate, 1 at start),
   symmetrised so subject and object inform each other (roles are in the node features),
   plus self-loops (Kipf & Welling's renormalisation; a node without relations keeps its
   own features). ``D_ii = Σ_j C_ij`` as in the paper.
4. *FFN* on the last layer: ``Y_s = FFN(F⁽ᴸ⁾)``, one ``D``-vector per object.
5. *Onto the grid*, ``grid="scatter"`` (default): every patch token under boxes gets the
   mean ``Y_s`` of the objects covering it, and every token of the frame (the CLS slot
   included) the frame's mean ``Y_s``; ``grid="attention"``: cross-attention with the
   video tokens as queries over the frame's objects
   (:class:`~uprm.experts.grid.GridCrossAttention`, a learned null key for frames
   without objects).

``residual=False`` (default, the paper): the output is that placement of ``Y_s =
FFN(F⁽ᴸ⁾)`` alone — relation information only (zero on a frame without objects, with
``grid="scatter"``); the trade-off router (eq.6) mixes it with the coarse tokens.
``residual=True``: ``video_tokens + Δ``, the coarse tokens carried through, so the
router's weight on this expert scales only the relation signal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from uprm.experts.grid import GridCrossAttention, add_frame_positions, boxes_to_patch_mask

__all__ = ["FEATURE_KEYS", "GRIDS", "RelationAdapter", "box_features"]

GRIDS = ("scatter", "attention")
FEATURE_KEYS = ("labels", "scores", "boxes", "grid_boxes", "object_mask", "relations", "relation_scores")


def box_features(boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``(x1, y1, x2, y2, cx, cy, w, h, √(wh), score)`` of frame-normalised boxes.

    Shapes: ``boxes [..., 4]``, ``scores [...]`` → ``[..., 10]``.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = (x2 - x1).clamp(min=0), (y2 - y1).clamp(min=0)
    return torch.stack([x1, y1, x2, y2, (x1 + x2) / 2, (y1 + y2) / 2, w, h, (w * h).sqrt(), scores], dim=-1)


class RelationAdapter(nn.Module):
    """ORE's adapter: object masking, node features, ``L`` graph layers (eq.4–5), FFN,
    placement on the coarse grid (see the module doc).

    Args:
        hidden_size: ``D``.
        tokens_per_frame, grid_size, num_prefix_tokens: the coarse grid of one frame.
        num_labels, num_predicates: vocabulary sizes (ids ``0`` are padding).
        node_dim: width of the graph's node features.
        num_layers: ``L`` graph layers.
        ffn_dim: hidden width of the FFN (default ``4 × node_dim``).
        grid: ``"scatter"`` or ``"attention"``.
        num_heads: heads of the cross-attention (``grid="attention"``).
        residual: ``False`` (the paper): the placed ``FFN(F⁽ᴸ⁾)`` alone; ``True``: ``video_tokens + Δ``.

    Shapes:
        features: ``labels [B, F, K]``, ``scores [B, F, K]``, ``boxes``/``grid_boxes [B, F, K, 4]``,
        ``object_mask [B, F, K]``, ``relations``/``relation_scores [B, F, K, K, R]``;
        video_tokens ``[B, F × tokens_per_frame, D]`` → ``[B, F × tokens_per_frame, D]``.
    """

    def __init__(
        self,
        hidden_size: int,
        tokens_per_frame: int,
        grid_size: int,
        num_prefix_tokens: int,
        num_labels: int,
        num_predicates: int,
        node_dim: int = 256,
        num_layers: int = 2,
        ffn_dim: int | None = None,
        grid: str = "scatter",
        num_heads: int = 8,
        residual: bool = False,
    ) -> None:
        super().__init__()
        import warnings

        with warnings.catch_warnings():  # torch_geometric applies torch.jit.script to its own functions at import
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
            from torch_geometric.nn import DenseGCNConv  # ~2-6 s to import: only when an expert is built

        if grid not in GRIDS:
            raise ValueError(f"relation expert: grid must be one of {GRIDS}, got {grid!r}")
        d = node_dim
        self.tokens_per_frame, self.grid_size, self.num_prefix_tokens = tokens_per_frame, grid_size, num_prefix_tokens
        self.grid, self.residual = grid, bool(residual)
        self.region_proj = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, d))
        self.label_embed = nn.Embedding(num_labels, d, padding_idx=0)
        self.box_embed = nn.Linear(10, d)
        self.subject_embed = nn.Embedding(num_predicates, d, padding_idx=0)
        self.object_embed = nn.Embedding(num_predicates, d, padding_idx=0)
        # softplus(θ) = 1 at the start: every predicate links its pair with its score
        self.predicate_strength = nn.Parameter(torch.full((num_predicates,), math.log(math.e - 1.0)))
        self.node_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(DenseGCNConv(d, d, bias=False) for _ in range(num_layers))
        ffn = ffn_dim or 4 * d
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, hidden_size))
        self.cross = None
        if grid == "attention":
            self.cross = GridCrossAttention(hidden_size, hidden_size, num_heads, tokens_per_frame, per_frame=True)

    # ------------------------------------------------------------------ the steps
    def adjacency(self, relations: torch.Tensor, relation_scores: torch.Tensor) -> torch.Tensor:
        """``C`` of eq.4 without its self-loops: ``A + Aᵀ`` with
        ``A_pq = Σ_r softplus(θ[relations[p, q, r]]) · relation_scores[p, q, r]``.

        Shapes: ``relations [..., K, K, R]`` int64, ``relation_scores [..., K, K, R]`` → ``[..., K, K]``.
        """
        strength = F.softplus(self.predicate_strength).to(relation_scores.dtype)
        weight = strength[relations] * relation_scores * (relations > 0)
        a = weight.sum(-1)
        return a + a.transpose(-1, -2)

    def roles(self, relations: torch.Tensor, relation_scores: torch.Tensor) -> torch.Tensor:
        """Score-weighted mean predicate embeddings of each node, as subject and as object.

        Shapes: ``[B, F, K, K, R]`` → ``[B, F, K, d]``.
        """
        b, f, k, _, r = relations.shape
        weight = relation_scores * (relations > 0)
        size = self.predicate_strength.shape[0]
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

    def cover(self, grid_boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Which tokens of its frame each visible object covers, as weights.

        Shapes: ``grid_boxes [B, F, K, 4]``, ``mask [B, F, K]`` → ``[B·F, K, tokens_per_frame]``.
        """
        b, f, k = mask.shape
        visible = mask & (grid_boxes[..., 2] > grid_boxes[..., 0]) & (grid_boxes[..., 3] > grid_boxes[..., 1])
        cover = boxes_to_patch_mask(grid_boxes, self.grid_size, self.num_prefix_tokens)
        return (cover & visible[..., None]).to(grid_boxes.dtype).view(b * f, k, self.tokens_per_frame)

    def nodes(self, feats: Mapping[str, torch.Tensor], region: torch.Tensor) -> torch.Tensor:
        """``F⁽⁰⁾``: region + category + box + roles, normalised, plus the frame's position;
        padding slots zero. Shapes: ``region [B, F, K, D]`` → ``[B, F, K, node_dim]``."""
        x = (
            self.region_proj(region)
            + self.label_embed(feats["labels"])
            + self.box_embed(box_features(feats["boxes"], feats["scores"]))
            + self.roles(feats["relations"], feats["relation_scores"])
        )
        return add_frame_positions(self.node_norm(x)) * feats["object_mask"][..., None]

    def graph(self, x: torch.Tensor, adj: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """Eq.4–5 on every frame's graph: ``F⁽ˡ⁺¹⁾ = ReLU(D^-½ C D^-½ F⁽ˡ⁾ W⁽ˡ⁾)``, ``C = adj + I``.

        Shapes: ``x [N, K, d]``, ``adj [N, K, K]``, ``node_mask [N, K]`` → ``[N, K, d]``.
        """
        for layer in self.layers:
            x = F.relu(layer(x, adj, node_mask, add_loop=True))
        return x

    def place(self, y: torch.Tensor, cover: torch.Tensor, node_mask: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Object vectors onto the grid (``grid``), plus the video tokens when ``residual``.

        Shapes: ``y [B·F, K, D]``, ``cover [B·F, K, tpf]``, ``node_mask [B·F, K]``,
        ``h [B, T, D]`` → ``[B, T, D]``.
        """
        b, t, hidden = h.shape
        if self.cross is not None:
            out = self.cross(h, y.view(b, -1, *y.shape[1:]), node_mask.view(b, -1, node_mask.shape[-1]))
            return h + out if self.residual else out
        # token t of a frame gets the mean y of the objects over it plus the frame's mean y:
        # one [tpf, K] weight matrix per frame, in one batched matmul
        per_patch = cover / cover.sum(1, keepdim=True).clamp(min=1)  # [B·F, K, tpf]
        summary = node_mask.to(y.dtype) / node_mask.sum(-1, keepdim=True).clamp(min=1)  # [B·F, K]
        weights = (per_patch + summary[..., None]).transpose(1, 2)  # [B·F, tpf, K]
        if self.residual:
            return torch.baddbmm(h.reshape(-1, self.tokens_per_frame, hidden), weights, y).view(b, t, hidden)
        return torch.bmm(weights, y).view(b, t, hidden)

    # ------------------------------------------------------------------ the whole
    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        weight = self.ffn[0].weight
        device, dtype = weight.device, weight.dtype
        feats = {k: features[k].to(device) for k in FEATURE_KEYS}
        for key in ("boxes", "grid_boxes", "scores", "relation_scores"):
            feats[key] = feats[key].to(dtype)
        feats["object_mask"] = feats["object_mask"].bool()
        mask = feats["object_mask"]
        b, f, k = mask.shape
        h = video_tokens.to(device, dtype)
        cover = self.cover(feats["grid_boxes"], mask)  # 1. object masking
        frames = h.view(b * f, self.tokens_per_frame, -1)
        region = torch.bmm(cover / cover.sum(-1, keepdim=True).clamp(min=1), frames).view(b, f, k, -1)
        x = self.nodes(feats, region).reshape(b * f, k, -1)  # 2. node features
        adj = self.adjacency(feats["relations"], feats["relation_scores"]).reshape(b * f, k, k)
        node_mask = mask.reshape(b * f, k)
        y = self.ffn(self.graph(x, adj, node_mask)) * node_mask[..., None]  # 3.-4. eq.4-5, FFN
        return self.place(y, cover, node_mask, h).to(video_tokens.dtype)  # 5. onto the grid
