"""A motion-energy expert: where and how much the picture changes between frames.

Perception (frozen, no weights): grey frames at the coarse tower's resolution, the
absolute and signed difference to the previous frame, pooled onto the coarse token grid
with :func:`uprm.experts.grid.pool_to_grid`. Adapter (trainable): an MLP from those two
statistics per token to the LLM's width, plus the frame's position
(:func:`uprm.experts.grid.add_frame_positions`: motion early and motion late in a clip are
not the same event), added to the video tokens it enhances.
"""

from __future__ import annotations

import torch
from torch import nn

import uprm
from uprm.experts.grid import add_frame_positions, pool_to_grid
from uprm.experts.preprocess import resize_center_crop


class MotionExpert(uprm.Expert):
    """Motion energy on the coarse grid.

    Options:
        width: the hidden width of the adapter's MLP.

    Shapes:
        extract: ``{"motion": [F, tokens_per_frame, 2]}``
        forward: ``video_tokens [B, T, D]`` → ``[B, T, D]``
    """

    name = "motion"
    granularity = "fine"

    def __init__(self, ctx: uprm.ExpertContext, width: int = 32) -> None:
        super().__init__(ctx)
        self.mlp = nn.Sequential(nn.Linear(2, width), nn.GELU(), nn.Linear(width, ctx.hidden_size))
        self.norm = nn.LayerNorm(ctx.hidden_size)

    def extract(self, clip: uprm.VideoClip) -> dict[str, torch.Tensor]:
        frames = resize_center_crop(clip.frames, self.ctx.image_size)  # [F, 3, S, S] in [0, 1]
        grey = frames.mean(dim=1, keepdim=True)  # [F, 1, S, S]
        previous = torch.cat([grey[:1], grey[:-1]])
        diff = grey - previous
        maps = torch.cat([diff.abs(), diff], dim=1)  # [F, 2, S, S]
        return {"motion": pool_to_grid(maps, self.ctx.grid_size, self.ctx.num_prefix_tokens) * 10.0}

    def forward(self, features, video_tokens: torch.Tensor) -> torch.Tensor:
        weight = self.mlp[0].weight
        motion = features["motion"].to(device=weight.device, dtype=weight.dtype)  # [B, F, tpf, 2]
        tokens = add_frame_positions(self.mlp(motion)).flatten(1, 2)  # which frame, too: [B, F * tpf, D]
        return self.norm(video_tokens + tokens)
