"""Decoding each grid frame once and sharing it between windows and experts.

:class:`FrameBuffer` decodes the frames a batch of windows needs, in time order, with
one open :class:`~uprm.data.VideoReader` (seeking only when a keyframe lies between the
decoder and the next frame), keeps them while a window not yet finished needs them, and
drops them as soon as none does: it never holds more than the frames of one batch of
windows (:meth:`~uprm.detection.plan.WindowPlan.max_frames_held`), whatever the video's
length. Frame-wise expert features (:mod:`uprm.detection.perception`) are kept beside the
frame they were computed from, so they too are computed once per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from uprm.detection.plan import WindowPlan
from uprm.types import VideoClip

__all__ = ["BufferedFrame", "FrameBuffer"]


@dataclass
class BufferedFrame:
    """One decoded grid frame: ``pixels`` uint8 ``[H, W, 3]``, its true time (seconds),
    its index in the file, and per-expert features of this frame alone."""

    pixels: np.ndarray
    timestamp: float
    frame_index: int
    features: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


class FrameBuffer:
    """The decoded frames of the windows being worked on.

    Args:
        reader: an open :class:`~uprm.data.VideoReader` of the video.
        plan: the video's windows.
        video_id: the clips' ``video_id``.
        meta: extra ``clip.meta`` keys (sidecar paths).

    Attributes:
        decoded: frames decoded so far (each grid frame counts once).
        decode_counts: how many times each grid index was decoded (all 1s).
        peak: the most frames held at once.
    """

    def __init__(self, reader: Any, plan: WindowPlan, video_id: str, meta: Mapping[str, Any] | None = None) -> None:
        self.reader = reader
        self.plan = plan
        self.video_id = video_id
        self.meta = dict(meta or {})
        self.frames: dict[int, BufferedFrame] = {}
        self.decoded = 0
        self.decode_counts: dict[int, int] = {}
        self.peak = 0
        self.source_size: list[int] = [0, 0]

    def __len__(self) -> int:
        return len(self.frames)

    def fill(self, windows: Sequence[int]) -> int:
        """Decode the frames ``windows`` need that are not held yet (in time order).
        Returns how many were decoded."""
        todo = [k for k in self.plan.needed(windows) if k not in self.frames]
        if not todo:
            return 0
        times = [min(self.plan.time_of(k), self.plan.duration) for k in todo]
        pixels, stamps, indices, size = self.reader.frames_at(times)
        self.source_size = [int(size[0]), int(size[1])]
        for i, k in enumerate(todo):
            self.frames[k] = BufferedFrame(pixels[i], float(stamps[i]), int(indices[i]))
            self.decode_counts[k] = self.decode_counts.get(k, 0) + 1
        self.decoded += len(todo)
        self.peak = max(self.peak, len(self.frames))
        return len(todo)

    def release_before(self, k: int) -> None:
        """Drop every frame before grid index ``k`` (no window still to come needs it)."""
        for old in [i for i in self.frames if i < k]:
            del self.frames[old]

    def clip(self, indices: Iterable[int], window: tuple[float, float] | None = None) -> VideoClip:
        """A clip of the held frames ``indices`` (in order), with the meta a decoded clip
        has (``path``, ``window``, ``fps``, ``frame_indices``, ``source_size``, ...)."""
        held = [self.frames[k] for k in indices]
        frames = torch.from_numpy(np.stack([f.pixels for f in held])).permute(0, 3, 1, 2).contiguous()
        stamps = [f.timestamp for f in held]
        info = self.reader.info
        if window is None:
            window = (stamps[0], stamps[-1] + self.plan.interval)
        meta = {
            "path": str(self.reader.path),
            "window": [float(window[0]), float(window[1])],
            "fps": info.fps,
            "frame_indices": [f.frame_index for f in held],
            "source_size": list(self.source_size),
            "rotation": getattr(self.reader, "rotation", 0),
            "variable_frame_rate": info.variable_frame_rate,
            **self.meta,
        }
        return VideoClip(frames, torch.tensor(stamps, dtype=torch.float64), video_id=self.video_id,
                         duration=info.duration, meta=meta)

    def window_clip(self, w: int) -> VideoClip:
        """Window ``w``'s clip (its ``F`` grid frames)."""
        return self.clip(self.plan.indices(w), self.plan.span(w))
