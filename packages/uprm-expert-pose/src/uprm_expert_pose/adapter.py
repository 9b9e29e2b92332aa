"""The trainable half of the human-pose expert (HPE, paper §3.1, eq.1–3).

1. **Joint graph attention (eq.1).** Each person is a graph of the 17 COCO joints with
   the COCO skeleton as edges. For node ``g_k`` and each neighbour ``g_l ∈ M(g_k)``::

       β_kl = softmax_l( (V_a g_k) · (V_a g_l) / √p )      (softmax over M(g_k) only)
       ĝ_k  = Σ_{l ∈ M(g_k)} β_kl g_l
       g'_k = ReLU( V_u [ĝ_k, g_k] )

   The paper writes one symbol ``V`` for a ``p → p`` map (inside β) and a ``2p → p`` map
   (the update), which cannot be one matrix. We read them as two matrices: ``V_a``
   (``p × p``, no bias) scores the neighbours, ``V_u`` (``p × 2p``) updates the node.
2. **Person and frame tokens.** A person's updated joints are flattened into a person
   token (plus an embedding of its box and score); a frame token summarises the people
   of a frame: ``person_pool="max"`` (default) the element-wise maximum over them — "does
   anyone in this frame do X" — or ``"mean"`` their masked mean; a learned "nobody" token
   for an empty frame. The mean dilutes one person's pose by everyone else in the frame:
   on the keyed world's fights (two fighters among about four people a frame) a head on
   mean-pooled frame tokens did not even fit its training windows (AUC 0.65), on max-pooled
   ones it read the fight on held-out videos (AUC 0.98; benchmarks/keyed_ablation.md §3). Every pose
   token gets its frame's sinusoidal position
   (:func:`uprm.experts.grid.add_frame_positions`), so the keys and values of eq.2 say
   which frame they come from: without it the expert could not tell a clip from the same
   clip with two frames swapped. With ``temporal_layers > 0`` (an addition to the paper;
   default ``0``) the frame tokens then attend over the clip — cheap pose dynamics in the
   pose width.
3. **Cross-attention (eq.2, first line).** The video tokens are the queries, the pose
   tokens of *their own frame* (frame token + up to ``K`` people, padded ones masked)
   the keys and values: ``T_c = V_t softmax(Q_v K_tᵀ)``, via
   :class:`uprm.experts.grid.GridCrossAttention` (its learned null key keeps every
   softmax defined). ``residual=False`` (default, the paper): ``T_c`` is that output
   itself. ``residual=True``: ``T_c = LN(T_v + CrossAttn(T_v, P))``, which carries the
   coarse tokens ``T_v`` into the expert's output.
4. **Post-LN MSA and FFN (eq.2–3)**: ``T_c' = LN(T_c + MSA(T_c))``, ``T_{c+1} = LN(T_c' +
   FFN(T_c'))`` — exactly ``torch.nn.TransformerEncoderLayer(norm_first=False)``. With
   ``self_attention="full"`` (the paper) the MSA runs over all ``T`` tokens of the clip;
   ``"frame"`` restricts it to the tokens of one frame (``F`` blocks of
   ``tokens_per_frame``), which removes the ``T²`` term (see benchmarks/pose.py for what
   that saves at ``D = 4096``). The output is ``T_{c+1}``.

``model_dim`` (default: ``D``) optionally runs steps 3–4 at a smaller width with a
projection in and out, the main lever on the cost at ``D = 4096``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from einops import rearrange
from torch import nn

from uprm.experts.grid import GridCrossAttention, add_frame_positions, pick_num_heads
from uprm_expert_pose.skeleton import NUM_JOINTS, neighbour_mask

__all__ = ["PERSON_POOLS", "SELF_ATTENTION_MODES", "JointGraphAttention", "PoseAdapter", "PoseTokenizer"]

SELF_ATTENTION_MODES = ("full", "frame")
PERSON_POOLS = ("max", "mean")


class JointGraphAttention(nn.Module):
    """Eq.1: attention of every joint over its skeleton neighbours, then
    ``g' = ReLU(V_u [ĝ, g])``.

    Shapes:
        g: ``[..., 17, p]`` → ``[..., 17, p]``; with ``return_weights`` also
        ``β [..., 17, 17]`` (zero outside the skeleton neighbours).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.score_proj = nn.Linear(dim, dim, bias=False)  # V_a of β
        self.update = nn.Linear(2 * dim, dim)  # V_u of g' = ReLU(V_u [ĝ, g])
        self.register_buffer("neighbours", neighbour_mask(), persistent=False)

    def forward(self, g: torch.Tensor, return_weights: bool = False):
        a = self.score_proj(g)
        scores = a @ a.transpose(-1, -2) / math.sqrt(self.dim)  # [..., 17, 17]
        scores = scores.masked_fill(~self.neighbours, float("-inf"))
        beta = scores.softmax(dim=-1)  # every joint has a neighbour: no empty row
        g_hat = beta @ g
        out = torch.relu(self.update(torch.cat([g_hat, g], dim=-1)))
        return (out, beta) if return_weights else out


class PoseTokenizer(nn.Module):
    """Keypoints → per-frame pose tokens: a frame token and ``K`` person tokens.

    Joint input: ``(x, y, c)`` and the joint's position relative to the person's box
    (centre, scaled by the box's longer side), zero for absent joints; plus a learned
    embedding of the joint's type. Then ``graph_layers`` × eq.1, person tokens, frame tokens
    (``person_pool``: the maximum or the mean over the frame's people),
    each frame's sinusoidal position on all its tokens, and ``temporal_layers`` of
    self-attention over the frame tokens.

    Shapes:
        keypoints ``[B, F, K, 17, 3]``, boxes ``[B, F, K, 4]``, scores ``[B, F, K]``,
        person_mask ``[B, F, K]`` → tokens ``[B, F, 1 + K, pose_dim]`` (frame token first)
        and their mask ``[B, F, 1 + K]`` (the frame token is always valid).
    """

    def __init__(
        self,
        joint_dim: int = 64,
        pose_dim: int = 256,
        graph_layers: int = 1,
        temporal_layers: int = 0,
        num_heads: int = 8,
        dropout: float = 0.0,
        person_pool: str = "max",
    ) -> None:
        super().__init__()
        if person_pool not in PERSON_POOLS:
            raise ValueError(f"pose expert: person_pool must be one of {PERSON_POOLS}, got {person_pool!r}")
        self.person_pool = person_pool
        self.joint_in = nn.Linear(5, joint_dim)
        self.joint_type = nn.Parameter(torch.randn(NUM_JOINTS, joint_dim) * 0.02)
        self.graph = nn.ModuleList(JointGraphAttention(joint_dim) for _ in range(graph_layers))
        self.person = nn.Sequential(
            nn.Linear(NUM_JOINTS * joint_dim, pose_dim), nn.GELU(), nn.Linear(pose_dim, pose_dim)
        )
        self.box_in = nn.Linear(5, pose_dim)
        self.person_norm = nn.LayerNorm(pose_dim)
        self.frame_proj = nn.Linear(pose_dim, pose_dim)
        self.empty_frame = nn.Parameter(torch.randn(pose_dim) * 0.02)
        self.temporal = None
        if temporal_layers > 0:
            layer = nn.TransformerEncoderLayer(
                pose_dim, pick_num_heads(pose_dim, num_heads), 2 * pose_dim, dropout,
                activation="gelu", batch_first=True, norm_first=False,
            )
            self.temporal = nn.TransformerEncoder(layer, temporal_layers, enable_nested_tensor=False)

    def joints(self, keypoints: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Joint node features ``g`` before eq.1: ``[..., 17, 3]``, ``[..., 4]`` → ``[..., 17, p]``."""
        xy, c = keypoints[..., :2], keypoints[..., 2:3]
        present = (c > 0).to(keypoints.dtype)
        centre = (boxes[..., None, :2] + boxes[..., None, 2:]) / 2
        size = (boxes[..., 2:] - boxes[..., :2]).amax(dim=-1).clamp_min(1e-3)[..., None, None]
        rel = (xy - centre) / size
        x = torch.cat([xy, c, rel], dim=-1) * present
        return self.joint_in(x) + self.joint_type

    def forward(
        self,
        keypoints: torch.Tensor,
        boxes: torch.Tensor,
        scores: torch.Tensor,
        person_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, f, _ = person_mask.shape
        g = self.joints(keypoints, boxes)  # [B, F, K, 17, p]
        for layer in self.graph:
            g = layer(g)
        person = self.person(g.flatten(-2)) + self.box_in(torch.cat([boxes, scores[..., None]], dim=-1))
        person = self.person_norm(person)  # [B, F, K, d]
        mask = person_mask.bool()
        weight = mask.to(person.dtype)[..., None]
        count = weight.sum(dim=2)  # [B, F, 1]
        if self.person_pool == "max":  # an empty frame's -inf row is replaced by the "nobody" token below
            pooled = person.masked_fill(~mask[..., None], float("-inf")).amax(dim=2)
        else:
            pooled = (person * weight).sum(dim=2) / count.clamp_min(1)
        pooled = torch.where(count > 0, pooled, torch.zeros_like(pooled))  # no -inf into frame_proj
        frame = torch.where(count > 0, self.frame_proj(pooled), self.empty_frame.to(person.dtype))  # [B, F, d]
        tokens = add_frame_positions(torch.cat([frame[:, :, None], person], dim=2))  # which frame: on every key
        if self.temporal is not None:
            tokens = torch.cat([self.temporal(tokens[:, :, 0])[:, :, None], tokens[:, :, 1:]], dim=2)
        token_mask = torch.cat([torch.ones(b, f, 1, dtype=torch.bool, device=mask.device), mask], dim=2)
        return tokens, token_mask


class PoseAdapter(nn.Module):
    """HPE's adapter: pose tokens, cross-attention from the video tokens (eq.2), post-LN
    MSA and FFN (eq.2–3), on the coarse token grid.

    Args:
        hidden_size: ``D``.
        tokens_per_frame: tokens of one frame on the coarse grid.
        joint_dim: ``p`` of eq.1.
        pose_dim: width of the person and frame tokens.
        graph_layers: how many times eq.1 is applied.
        temporal_layers: self-attention layers over the frame tokens (0 = none, the paper).
        model_dim: width of eq.2–3 (default ``D``); smaller adds projections in and out.
        num_heads: attention heads (the largest divisor of the width not above this).
        ffn_mult: FFN hidden width = ``ffn_mult × model_dim``.
        self_attention: ``"full"`` (MSA over all ``T`` tokens, the paper) or ``"frame"``.
        dropout: dropout in the attention and FFN layers.
        person_pool: how a frame token summarises its people, ``"max"`` or ``"mean"``.
        residual: ``False`` (the paper): eq.2–3 run on the cross-attention output alone,
            so the output is pose information only; ``True``: ``T_c = LN(T_v + CrossAttn)``,
            the output also carries the video tokens.

    Shapes:
        features: ``keypoints [B, F, K, 17, 3]``, ``boxes [B, F, K, 4]``, ``scores [B, F, K]``,
        ``person_mask [B, F, K]``; video_tokens ``[B, F × tokens_per_frame, D]`` →
        ``[B, F × tokens_per_frame, D]``.
    """

    def __init__(
        self,
        hidden_size: int,
        tokens_per_frame: int,
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
        super().__init__()
        if self_attention not in SELF_ATTENTION_MODES:
            raise ValueError(f"pose expert: self_attention must be one of {SELF_ATTENTION_MODES}, got {self_attention!r}")
        d = int(model_dim or hidden_size)
        self.tokens_per_frame = tokens_per_frame
        self.self_attention = self_attention
        self.residual = bool(residual)
        self.tokenizer = PoseTokenizer(joint_dim, pose_dim, graph_layers, temporal_layers, num_heads, dropout,
                                       person_pool)
        self.query_in = nn.Identity() if d == hidden_size else nn.Linear(hidden_size, d)
        self.cross = GridCrossAttention(
            d, kv_dim=pose_dim, num_heads=num_heads, tokens_per_frame=tokens_per_frame, per_frame=True, dropout=dropout
        )
        # residual form only: T_c = LN(T_v + CrossAttn(T_v, P))
        self.cross_norm = nn.LayerNorm(d) if self.residual else None
        # eq.2-3: T_c' = LN(T_c + MSA(T_c)); T_{c+1} = LN(T_c' + FFN(T_c')) — a post-LN encoder layer
        self.block = nn.TransformerEncoderLayer(
            d, pick_num_heads(d, num_heads), ffn_mult * d, dropout, activation="gelu", batch_first=True, norm_first=False
        )
        self.out = nn.Identity() if d == hidden_size else nn.Linear(d, hidden_size)

    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        weight = self.tokenizer.joint_in.weight
        get = lambda key: features[key].to(device=weight.device)  # noqa: E731
        keypoints, boxes = get("keypoints").to(weight.dtype), get("boxes").to(weight.dtype)
        scores, person_mask = get("scores").to(weight.dtype), get("person_mask").bool()
        b, t, _ = video_tokens.shape
        f = t // self.tokens_per_frame
        if keypoints.shape[:2] != (b, f):
            raise ValueError(
                f"pose expert: keypoints are for {tuple(keypoints.shape[:2])} (batch, frames), the video tokens for "
                f"({b}, {f})"
            )
        pose_tokens, pose_mask = self.tokenizer(keypoints, boxes, scores, person_mask)  # [B, F, 1+K, d_pose]
        x = self.query_in(video_tokens.to(device=weight.device, dtype=weight.dtype))
        t_c = self.cross(x, pose_tokens, pose_mask)  # eq.2: T_c = V_t softmax(Q_v K_t^T)
        if self.cross_norm is not None:
            t_c = self.cross_norm(x + t_c)  # the residual form
        if self.self_attention == "frame":
            t_c = rearrange(t_c, "b (f t) d -> (b f) t d", f=f)
        out = self.block(t_c)  # eq.2-3: T_{c+1}
        if self.self_attention == "frame":
            out = rearrange(out, "(b f) t d -> b (f t) d", b=b)
        return self.out(out).to(video_tokens.dtype)
