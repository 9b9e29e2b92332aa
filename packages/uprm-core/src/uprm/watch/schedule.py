"""When a camera's next window is due, which frames it samples, and which windows are
skipped when inference falls behind.

Windows sit on the same kind of sampling grid as ``uprm detect``'s
(:mod:`uprm.detection.plan`): grid points ``t_k = (k + ½)·Δ`` of stream time with
``Δ = window / F`` (``F`` = the model's frames per window); a window ends on a grid line
``m·Δ`` and samples the ``F`` points ``m − F … m − 1``; consecutive windows are ``step``
grid lines apart (the stride rounded to the grid, at least one), so overlapping windows
sample the same frames and frame-wise perception runs once per frame. A window is
**due** as soon as the camera has a frame at or after its last sampling point.

When inference is slower than real time several windows of a camera become due at
once; only the most recent is run, the older ones are **skipped** (counted), so the
watcher never queues work without bound and its alerts stay current.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["GridView", "WindowClock"]

_EPS = 1e-6


class WindowClock:
    """The windows of one camera (see the module doc).

    Attributes:
        interval: ``Δ`` seconds between grid points.
        step: grid lines between consecutive windows.
        next_end: the end grid line ``m`` of the next window to run.
        taken, skipped: windows run and windows skipped so far.
    """

    def __init__(self, window: float, stride: float, num_frames: int) -> None:
        if window <= 0 or stride <= 0 or num_frames < 1:
            raise ValueError(f"bad window {window}, stride {stride} or frames {num_frames}")
        self.window = float(window)
        self.num_frames = int(num_frames)
        self.interval = self.window / self.num_frames
        self.step = max(1, round(float(stride) / self.interval))
        self.next_end = self.num_frames
        self.taken = 0
        self.skipped = 0

    @property
    def stride(self) -> float:
        """The stride in effect (seconds, on the grid)."""
        return self.step * self.interval

    def due_at(self, m: int | None = None) -> float:
        """Stream time at which the window ending on grid line ``m`` (default: the next)
        is due: its last sampling point."""
        m = self.next_end if m is None else m
        return (m - 0.5) * self.interval

    def take(self, latest: float) -> tuple[int, int] | None:
        """The window to run now that the camera's newest frame is at ``latest``:
        ``(m, skipped)`` — the most recent due window and how many due windows before it
        were skipped — or ``None`` when no window is due."""
        ahead = (latest + _EPS) / self.interval + 0.5 - self.next_end
        if ahead < 0:
            return None
        j = math.floor(ahead / self.step)
        m = self.next_end + j * self.step
        self.next_end = m + self.step
        self.taken += 1
        self.skipped += j
        return m, j

    def has_room(self, t: float) -> bool:
        """Whether a paced source may add a frame at ``t`` without making a second
        window due before the next one was taken (so none is ever skipped)."""
        return t + _EPS < self.due_at(self.next_end + self.step)

    def span(self, m: int) -> tuple[float, float]:
        """Window ``m``'s ``[start, end)`` in stream seconds."""
        return (round((m - self.num_frames) * self.interval, 6), round(m * self.interval, 6))

    def indices(self, m: int) -> range:
        return range(m - self.num_frames, m)

    def times(self, m: int) -> list[float]:
        return [(k + 0.5) * self.interval for k in self.indices(m)]


class GridView:
    """One camera's sampled grid frames, in the shape
    :class:`uprm.detection.Perception` reads a frame buffer: ``plan.needed(windows)``,
    ``plan.indices(w)``, ``frames[k]`` (:class:`uprm.detection.BufferedFrame`, which
    keeps frame-wise features beside the frame), ``clip(indices)``, ``window_clip(w)``.
    A window is named by its first grid index ``k0 = m − F``.
    """

    def __init__(self, camera: str, interval: float, num_frames: int, meta: dict[str, Any] | None = None) -> None:
        self.camera = camera
        self.interval = float(interval)
        self.num_frames = int(num_frames)
        self.meta = dict(meta or {})
        self.frames: dict[int, Any] = {}
        self.plan = self

    def indices(self, w: int) -> range:
        return range(w, w + self.num_frames)

    def needed(self, windows: Iterable[int]) -> list[int]:
        return sorted({k for w in windows for k in self.indices(w)})

    def add(self, k: int, frame: Any) -> None:
        """Hold ``frame`` (a :class:`~uprm.watch.frames.Frame`) as grid point ``k``
        (kept when already held: a grid point is one frame for every window)."""
        from uprm.detection import BufferedFrame

        if k not in self.frames:
            self.frames[k] = BufferedFrame(frame.pixels, frame.time, frame.seq)

    def release_before(self, k: int) -> None:
        for old in [i for i in self.frames if i < k]:
            del self.frames[old]

    def clip(self, indices: Iterable[int], window: tuple[float, float] | None = None) -> Any:
        import numpy as np
        import torch

        from uprm.types import VideoClip

        held = [self.frames[k] for k in indices]
        frames = torch.from_numpy(np.stack([f.pixels for f in held])).permute(0, 3, 1, 2).contiguous()
        stamps = [f.timestamp for f in held]
        if window is None:
            window = (stamps[0], stamps[-1] + self.interval)
        height, width = held[0].pixels.shape[:2]
        meta = {"window": [float(window[0]), float(window[1])], "frame_indices": [f.frame_index for f in held],
                "source_size": [int(width), int(height)], "camera": self.camera, **self.meta}
        return VideoClip(frames, torch.tensor(stamps, dtype=torch.float64), video_id=self.camera,
                         duration=float(window[1]), meta=meta)

    def window_clip(self, w: int) -> Any:
        start = w * self.interval
        return self.clip(self.indices(w), (start, start + self.num_frames * self.interval))
