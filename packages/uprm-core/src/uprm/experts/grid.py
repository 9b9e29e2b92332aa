"""Helpers that bring an expert's native output onto the coarse token grid.

Every expert returns ``[B, T, D]`` with ``T = F × tokens_per_frame`` (DESIGN §3). An
expert whose native grid differs — SAM's 64×64 map, a set of people, a scene graph —
uses one of these instead of writing its own:

* :func:`pool_to_grid` — a dense per-frame map → the frame's prefix + patch tokens;
* :func:`broadcast_frames` — one vector per frame → every token of that frame;
* :func:`boxes_to_patch_mask` — boxes → which patches of the grid they cover;
* :class:`GridCrossAttention` — video tokens as queries over a set of per-frame (or
  per-clip) keys/values with a padding mask, as HPE's eq.2 does; a frame with no
  keys (no person, no object) attends to a learned null token instead of NaN;
* :func:`frame_positions` / :func:`add_frame_positions` — parameter-free sinusoidal
  frame positions, so an expert's own per-frame tokens say *which* frame they are:
  without them an adapter that works frame by frame (or attends over a set of frames)
  cannot tell a clip from the same clip with two frames swapped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

__all__ = [
    "GridCrossAttention",
    "add_frame_positions",
    "boxes_to_patch_mask",
    "broadcast_frames",
    "frame_positions",
    "pick_num_heads",
    "pool_to_grid",
]


def pick_num_heads(dim: int, preferred: int = 8) -> int:
    """The largest head count ``≤ preferred`` that divides ``dim``."""
    for h in range(min(preferred, dim), 0, -1):
        if dim % h == 0:
            return h
    return 1


def pool_to_grid(maps: torch.Tensor, grid_size: int, num_prefix_tokens: int = 1) -> torch.Tensor:
    """Average-pool dense maps onto a frame's token grid.

    Shapes:
        maps: ``[N, C, H, W]`` (one map per frame)
        returns: ``[N, num_prefix_tokens + grid_size², C]``; the prefix tokens (the CLS
        slot) get the map's global mean, the patches an adaptive average pool.
    """
    if maps.dim() != 4:
        raise ValueError(f"pool_to_grid expects [N, C, H, W], got {tuple(maps.shape)}")
    patches = F.adaptive_avg_pool2d(maps, grid_size)  # [N, C, g, g]
    patches = rearrange(patches, "n c h w -> n (h w) c")
    if num_prefix_tokens == 0:
        return patches
    prefix = repeat(maps.mean(dim=(2, 3)), "n c -> n p c", p=num_prefix_tokens)
    return torch.cat([prefix, patches], dim=1)


def broadcast_frames(frame_features: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """One vector per frame → the same vector on each of the frame's tokens.

    Shapes:
        frame_features: ``[B, F, D]``
        returns: ``[B, F × tokens_per_frame, D]``
    """
    return repeat(frame_features, "b f d -> b (f t) d", t=tokens_per_frame)


def frame_positions(
    num_frames: int, dim: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Sinusoidal positions of frames ``0 … num_frames - 1`` (Vaswani et al.), no parameters.

    Row ``f`` is ``[sin(f·ω_0), …, sin(f·ω_{h-1}), cos(f·ω_0), …, cos(f·ω_{h-1})]`` with
    ``h = dim // 2`` and ``ω_i = 10000^(-i/h)`` (a zero column pads an odd ``dim``); every
    value is in ``[-1, 1]``, so adding it to layer-normalised tokens keeps their scale.
    Frame ``f`` gets the same row whatever the clip's length.

    Shapes: returns ``[num_frames, dim]`` (float32 unless ``dtype`` is given).
    """
    pos = torch.arange(num_frames, device=device, dtype=torch.float32)[:, None]
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / max(half, 1))
    emb = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=-1)
    if emb.shape[-1] < dim:
        emb = F.pad(emb, (0, dim - emb.shape[-1]))
    return emb if dtype is None else emb.to(dtype)


def add_frame_positions(x: torch.Tensor, frame_dim: int = 1) -> torch.Tensor:
    """``x`` plus the sinusoidal position of each frame (:func:`frame_positions`).

    Shapes: ``x [..., F, ..., D]`` with the frames at ``frame_dim`` and the features
    last (e.g. ``[B, F, D]``, or ``[B, F, K, D]`` for K objects or people per frame) →
    the same shape and dtype; every vector of frame ``f`` gets the same position.
    """
    frame_dim = frame_dim % x.dim()
    if frame_dim == x.dim() - 1:
        raise ValueError(f"add_frame_positions: frame_dim {frame_dim} is the feature dim of a {x.dim()}-d tensor")
    pos = frame_positions(x.shape[frame_dim], x.shape[-1], device=x.device, dtype=x.dtype)
    shape = [1] * x.dim()
    shape[frame_dim], shape[-1] = x.shape[frame_dim], x.shape[-1]
    return x + pos.view(shape)


def boxes_to_patch_mask(boxes: torch.Tensor, grid_size: int, num_prefix_tokens: int = 1) -> torch.Tensor:
    """Which tokens of a frame's grid lie under each box.

    Shapes:
        boxes: ``[..., 4]`` as ``(x1, y1, x2, y2)`` normalised to ``[0, 1]``
        returns: bool ``[..., num_prefix_tokens + grid_size²]``; prefix tokens are never
        covered; a box smaller than a patch still covers the patch holding its centre.
    """
    centres = (torch.arange(grid_size, device=boxes.device, dtype=boxes.dtype) + 0.5) / grid_size
    x1, y1, x2, y2 = boxes.unbind(-1)
    inside_x = (centres >= x1[..., None]) & (centres <= x2[..., None])  # [..., g]
    inside_y = (centres >= y1[..., None]) & (centres <= y2[..., None])
    # a box too small to contain a patch centre still covers the patch of its centre
    cx = ((x1 + x2) / 2 * grid_size).clamp(0, grid_size - 1).long()
    cy = ((y1 + y2) / 2 * grid_size).clamp(0, grid_size - 1).long()
    inside_x = inside_x | F.one_hot(cx, grid_size).bool()
    inside_y = inside_y | F.one_hot(cy, grid_size).bool()
    mask = inside_y[..., :, None] & inside_x[..., None, :]  # [..., g, g]
    mask = mask.flatten(-2)
    prefix = torch.zeros(*mask.shape[:-1], num_prefix_tokens, dtype=torch.bool, device=mask.device)
    return torch.cat([prefix, mask], dim=-1)


class GridCrossAttention(nn.Module):
    """Cross-attention from the video tokens (queries) to an expert's tokens (keys and
    values), per frame or per clip, with a padding mask.

    ``T_c = V_t · softmax(Q_v K_tᵀ)`` of paper eq.2, multi-head. With ``per_frame=True``
    the tokens of frame ``f`` attend only to the keys of frame ``f``. A learned null
    key/value is always present, so a frame without any keys (no person) gets a
    well-defined output instead of NaN.

    Shapes:
        video_tokens: ``[B, T, D]`` with ``T = F × tokens_per_frame``
        keys: ``[B, F, K, D_kv]`` if ``per_frame`` else ``[B, K, D_kv]``
        key_mask: bool, ``True`` = real key; ``[B, F, K]`` or ``[B, K]``; ``None`` = all real
        returns: ``[B, T, D]``
    """

    def __init__(
        self,
        hidden_size: int,
        kv_dim: int | None = None,
        num_heads: int = 8,
        tokens_per_frame: int = 1,
        per_frame: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kv_dim = kv_dim or hidden_size
        self.tokens_per_frame = tokens_per_frame
        self.per_frame = per_frame
        self.kv_proj = nn.Identity() if kv_dim == hidden_size else nn.Linear(kv_dim, hidden_size)
        self.null_kv = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.attn = nn.MultiheadAttention(
            hidden_size, pick_num_heads(hidden_size, num_heads), dropout=dropout, batch_first=True
        )

    def forward(
        self,
        video_tokens: torch.Tensor,
        keys: torch.Tensor,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, t, d = video_tokens.shape
        kv = self.kv_proj(keys)
        if key_mask is None:
            key_mask = torch.ones(kv.shape[:-1], dtype=torch.bool, device=kv.device)
        if self.per_frame:
            if t % self.tokens_per_frame:
                raise ValueError(f"{t} video tokens are not a whole number of frames of {self.tokens_per_frame}")
            f = t // self.tokens_per_frame
            if kv.shape[1] != f:
                raise ValueError(f"keys have {kv.shape[1]} frames, video tokens {f}")
            queries = rearrange(video_tokens, "b (f t) d -> (b f) t d", f=f)
            kv = rearrange(kv, "b f k d -> (b f) k d")
            key_mask = rearrange(key_mask, "b f k -> (b f) k")
        else:
            queries = video_tokens
        n = kv.shape[0]
        kv = torch.cat([self.null_kv.expand(n, 1, d).to(kv.dtype), kv], dim=1)
        valid = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=kv.device), key_mask.bool()], dim=1)
        out, _ = self.attn(queries, kv, kv, key_padding_mask=~valid, need_weights=False)
        if self.per_frame:
            out = rearrange(out, "(b f) t d -> b (f t) d", b=b)
        return out
