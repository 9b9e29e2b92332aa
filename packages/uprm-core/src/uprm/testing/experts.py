"""A tiny real fine expert for tests and quick experiments: no weights, cheap."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from uprm.experts.base import Expert, ExpertContext
from uprm.experts.grid import add_frame_positions, broadcast_frames
from uprm.experts.preprocess import to_float
from uprm.types import VideoClip

__all__ = ["ColourExpert"]


class ColourExpert(Expert):
    """The mean colour of each frame (perception) → an MLP, plus the frame's position
    (:func:`~uprm.experts.grid.add_frame_positions`), on every token of the frame, plus a
    linear map of the video tokens (adapter).

    Shapes:
        extract: ``{"colour": [F, 3]}``; forward: ``[B, F × tokens_per_frame, D]``
    """

    name = "colour"
    granularity = "fine"

    def __init__(self, ctx: ExpertContext, width: int = 8) -> None:
        super().__init__(ctx)
        self.mlp = nn.Sequential(nn.Linear(3, width), nn.GELU(), nn.Linear(width, ctx.hidden_size))
        self.mix = nn.Linear(ctx.hidden_size, ctx.hidden_size)

    def extract(self, clip: VideoClip) -> dict[str, torch.Tensor]:
        return {"colour": to_float(clip.frames).mean(dim=(2, 3))}

    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        colour = features["colour"].to(device=self.mix.weight.device, dtype=self.mix.weight.dtype)
        per_frame = add_frame_positions(self.mlp(colour))  # [B, F, D]: which frame, too
        return broadcast_frames(per_frame, self.ctx.tokens_per_frame) + self.mix(video_tokens)
