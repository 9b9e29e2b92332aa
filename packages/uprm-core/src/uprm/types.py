"""Plain data types shared by every part of UPRM.

``VideoClip`` is what every expert's ``extract`` receives: the frames sampled from one
video (or one window of it) with their true timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["VideoClip"]


@dataclass
class VideoClip:
    """Frames sampled from a video, with their timestamps.

    Attributes:
        frames: ``uint8`` RGB frames, shape ``[F, 3, H, W]``.
        timestamps: the time of each frame in seconds from the start of the video,
            ``float`` tensor of shape ``[F]``, non-decreasing.
        video_id: a name for the video (usually the file's stem).
        duration: the length of the whole video in seconds (not only of the window).
        meta: free-form extras (the source path, the window ``(start, end)``, the fps,
            the indices of the sampled frames, ...). Experts may read them, e.g. to
            match the clip's frames against a keypoint file.

    An image is a clip of one frame (``F = 1``).
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    video_id: str = "clip"
    duration: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.frames, torch.Tensor):
            raise TypeError(f"VideoClip {self.video_id!r}: frames must be a torch.Tensor, got {type(self.frames).__name__}")
        if self.frames.dim() != 4 or self.frames.shape[1] != 3:
            raise ValueError(
                f"VideoClip {self.video_id!r}: frames must have shape [F, 3, H, W], got {tuple(self.frames.shape)}"
            )
        if self.frames.dtype != torch.uint8:
            raise ValueError(f"VideoClip {self.video_id!r}: frames must be uint8 RGB, got {self.frames.dtype}")
        if self.frames.shape[0] == 0:
            raise ValueError(f"VideoClip {self.video_id!r}: a clip needs at least one frame")
        self.timestamps = torch.as_tensor(self.timestamps, dtype=torch.float64).reshape(-1)
        if self.timestamps.numel() != self.frames.shape[0]:
            raise ValueError(
                f"VideoClip {self.video_id!r}: {self.frames.shape[0]} frames but {self.timestamps.numel()} timestamps"
            )
        if self.timestamps.numel() > 1 and bool((self.timestamps[1:] < self.timestamps[:-1]).any()):
            raise ValueError(f"VideoClip {self.video_id!r}: timestamps must be non-decreasing")
        self.duration = float(self.duration)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[2])

    @property
    def width(self) -> int:
        return int(self.frames.shape[3])

    def __repr__(self) -> str:  # keep tensors out of the repr
        t = self.timestamps
        span = f"{float(t[0]):.2f}-{float(t[-1]):.2f}s" if t.numel() else "-"
        return (
            f"VideoClip(video_id={self.video_id!r}, frames={tuple(self.frames.shape)}, "
            f"timestamps={span}, duration={self.duration:.2f}s)"
        )
