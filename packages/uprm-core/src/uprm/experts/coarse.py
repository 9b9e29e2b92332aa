"""The coarse-grained video expert (CVE): ``T_g = FFN(LanguageBind(V_i))``.

Perception is Video-LLaVA's video tower (a CLIP ViT, LanguageBind's weights in the real
model), frozen; the adapter is the multi-modal projector (trainable). ``extract`` runs the
tower once per clip and keeps the hidden states of ``vision_feature_layer`` (Video-LLaVA:
the second-to-last layer, CLS token kept for video), so a cached clip replaces the
tower; ``forward`` projects them to the LLM's width.

Where the tower and projector come from, first match wins:

1. ``ctx.resources["vision_tower"]`` / ``ctx.resources["projector"]`` — the builder
   passes the backbone's own modules, so the expert *is* Video-LLaVA's video path;
2. ``vision_path`` — a local directory of a transformers CLIP vision model;
3. ``vision_config`` — a ``CLIPVisionConfig`` dict, randomly initialised;
4. nothing — a small random CLIP tower that fits ``ctx``'s grid (tests, demos).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn

from uprm.experts.base import Expert, ExpertContext
from uprm.experts.preprocess import CLIP_MEAN, CLIP_STD, resize_center_crop
from uprm.types import VideoClip

__all__ = ["CoarseExpert", "Projector"]


class Projector(nn.Module):
    """Linear → GELU → Linear, the layout of Video-LLaVA's multi-modal projector.

    Shapes: ``[..., vision_hidden]`` → ``[..., hidden_size]``.
    """

    def __init__(self, vision_hidden: int, hidden_size: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(vision_hidden, hidden_size)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


def _tiny_tower_config(ctx: ExpertContext) -> dict[str, Any]:
    grid = ctx.grid_size
    if ctx.image_size % grid:
        raise ValueError(f"image_size {ctx.image_size} is not a multiple of the grid {grid}")
    return dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=ctx.image_size,
        patch_size=ctx.image_size // grid,
    )


class CoarseExpert(Expert):
    """Coarse-grained video expert: frozen video tower + trainable projector.

    Options:
        vision_path: local directory of a transformers CLIP vision model.
        vision_config: ``CLIPVisionConfig`` keyword arguments for a random tower.
        vision_feature_layer: which hidden state to keep (Video-LLaVA: ``-2``); the
            builder's ``ctx.resources["vision_feature_layer"]`` wins, and
            ``extraction_config()`` names the layer used.

    Shapes:
        extract: ``frames [F, 3, H, W] uint8`` → ``{"vision_features": [F, tokens_per_frame, C]}``
        forward: ``{"vision_features": [B, F, tokens_per_frame, C]}`` → ``[B, F × tokens_per_frame, D]``
    """

    name = "coarse"
    granularity = "coarse"
    frame_wise = True  # each frame is perceived on its own

    def __init__(
        self,
        ctx: ExpertContext,
        vision_path: str | None = None,
        vision_config: Mapping[str, Any] | None = None,
        vision_feature_layer: int = -2,
    ) -> None:
        super().__init__(ctx)
        from transformers import CLIPVisionConfig, CLIPVisionModel

        tower = ctx.resources.get("vision_tower")
        if tower is None:
            if vision_path is not None:
                path = Path(vision_path)
                if not path.is_dir():
                    raise FileNotFoundError(
                        f"coarse expert: vision_path {vision_path!r} is not a local directory; "
                        "download the weights and pass their path"
                    )
                tower = CLIPVisionModel.from_pretrained(path, local_files_only=True)
            else:
                config = CLIPVisionConfig(**dict(vision_config or _tiny_tower_config(ctx)))
                tower = CLIPVisionModel(config)
        cfg = tower.config
        expected = ctx.num_prefix_tokens + (cfg.image_size // cfg.patch_size) ** 2
        if expected != ctx.tokens_per_frame:
            raise ValueError(
                f"coarse expert: the tower gives {expected} tokens per frame "
                f"({cfg.image_size}px / patch {cfg.patch_size} + {ctx.num_prefix_tokens} CLS), "
                f"the context says {ctx.tokens_per_frame}"
            )
        self.image_size = int(cfg.image_size)
        self.vision_hidden = int(cfg.hidden_size)
        self.vision_feature_layer = int(ctx.resources.get("vision_feature_layer", vision_feature_layer))
        self.add_perception("tower", tower)
        projector = ctx.resources.get("projector")
        self.projector = projector if projector is not None else Projector(self.vision_hidden, ctx.hidden_size)

    def extract(self, clip: VideoClip) -> dict[str, torch.Tensor]:
        pixels = self.preprocess(clip.frames)
        out = self.tower(pixel_values=pixels, output_hidden_states=True, return_dict=True)
        feats = out.hidden_states[self.vision_feature_layer]  # [F, 1 + P, C]
        if self.ctx.num_prefix_tokens == 0:
            feats = feats[:, 1:]
        return {"vision_features": feats.float().cpu().contiguous()}

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[F, 3, H, W]`` → normalised ``[F, 3, S, S]`` in the tower's dtype
        (resize the short side, centre crop, CLIP mean/std)."""
        param = next(self.tower.parameters())
        pixels = resize_center_crop(frames.to(param.device), self.image_size)
        mean = torch.tensor(CLIP_MEAN, device=param.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=param.device).view(1, 3, 1, 1)
        return ((pixels - mean) / std).to(param.dtype)

    def extraction_config(self) -> dict[str, Any]:
        """The base config plus the hidden state ``extract`` really keeps
        (``ctx.resources["vision_feature_layer"]`` when the builder hands one in, else the
        option), so features cached from another layer are stale."""
        config = super().extraction_config()
        config["vision_feature_layer"] = self.vision_feature_layer
        return config

    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor | None = None) -> torch.Tensor:
        feats = features["vision_features"]
        if feats.dim() != 4:
            raise ValueError(f"coarse expert: vision_features must be [B, F, tokens, C], got {tuple(feats.shape)}")
        weight = next(self.projector.parameters())
        tokens = self.projector(feats.to(device=weight.device, dtype=weight.dtype))
        return rearrange(tokens, "b f t d -> b (f t) d")
