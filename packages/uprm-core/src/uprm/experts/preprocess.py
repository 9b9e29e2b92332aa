"""Frame preprocessing shared by experts (pure torch, batched over frames)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CLIP_MEAN", "CLIP_STD", "resize_center_crop", "resize_pad", "to_float"]

#: OpenAI CLIP normalisation, used by Video-LLaVA's (LanguageBind's) processor
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[F, 3, H, W]`` → float32 in ``[0, 1]``."""
    if frames.dtype == torch.uint8:
        return frames.float().div_(255.0)
    return frames.float()


def resize_center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the short side to ``size`` (bicubic, antialiased) and crop the centre
    ``size × size``, as CLIP's processor does.

    Shapes: ``[F, 3, H, W]`` (uint8 or float) → float32 ``[F, 3, size, size]`` in ``[0, 1]``.
    """
    x = to_float(frames)
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top : top + size, left : left + size]


def resize_pad(frames: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """Resize the long side to ``size`` and pad bottom/right to a square, as SAM and
    YOLO expect. Returns the frames and the scale applied.

    Shapes: ``[F, 3, H, W]`` → float32 ``[F, 3, size, size]`` in ``[0, 1]``.
    """
    x = to_float(frames)
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    return F.pad(x, (0, size - nw, 0, size - nh)), scale
