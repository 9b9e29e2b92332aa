"""A camera's recent frames: the ring buffer, and the clock that turns the stream's
timestamps into the camera's **stream time**.

Stream time is seconds since the camera's first frame, counted by the stream's own
timestamps (pts), so windows and events are placed where the pictures are, whatever the
network did to their arrival. It never goes backwards: after a reconnect (a new session
whose pts start anywhere), a pts jump backwards (a looping or restarted encoder) or,
on a live source, a jump forward far beyond the wall-clock time that passed, the clock
re-anchors and continues from the last frame plus the wall-clock time that passed (at
least one frame interval). Each frame also keeps its **wall time** (when it arrived).
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "RingBuffer", "StreamClock", "output_size"]


@dataclass
class Frame:
    """One buffered frame: ``pixels`` uint8 RGB ``[H, W, 3]``, its stream time (seconds),
    its arrival (``time.time()``) and its number among the camera's kept frames."""

    pixels: Any
    time: float
    wall: float
    seq: int


class StreamClock:
    """Stream time from pts (see the module doc).

    Args:
        live: a live source (forward jumps are checked against the wall clock).
        max_jump: seconds a live stream's time may run ahead of the wall clock between
            two frames before it is treated as a discontinuity.
    """

    def __init__(self, live: bool, max_jump: float = 5.0) -> None:
        self.live = live
        self.max_jump = float(max_jump)
        self.offset: float | None = None
        self.last: float | None = None
        self.last_wall: float | None = None
        self.fresh = True
        self.discontinuities = 0

    def new_session(self) -> None:
        """The next frame comes from a new connection (its pts start anywhere)."""
        self.fresh = True

    def stamp(self, pts: float | None, wall: float, step: float) -> float:
        """The stream time of a frame with ``pts`` seconds (``None``: unknown) arriving at
        ``wall``; ``step`` is the source's frame interval (seconds)."""
        if self.last is None:
            t = 0.0
            self.offset = None if pts is None else -float(pts)
        elif pts is None:
            t = self._continued(wall, step)
        else:
            t = float(pts) + self.offset if self.offset is not None and not self.fresh else None
            if t is None or self._broken(t, wall):
                if not self.fresh:
                    self.discontinuities += 1
                t = self._continued(wall, step)
                self.offset = t - float(pts)
        self.fresh = False
        self.last, self.last_wall = t, wall
        return t

    def _continued(self, wall: float, step: float) -> float:
        elapsed = wall - self.last_wall if self.live else 0.0
        return self.last + max(elapsed, step)

    def _broken(self, t: float, wall: float) -> bool:
        if t < self.last:
            return True
        return self.live and t - self.last > (wall - self.last_wall) + self.max_jump


class RingBuffer:
    """The last ``seconds`` of a camera's frames, at most ``max_frames`` of them
    (thread-safe: the reader pushes, the inference loop and clip writers read)."""

    def __init__(self, seconds: float, max_frames: int) -> None:
        if seconds <= 0 or max_frames < 1:
            raise ValueError(f"a ring buffer needs positive seconds and frames, got {seconds}, {max_frames}")
        self.seconds = float(seconds)
        self.max_frames = int(max_frames)
        self._frames: deque[Frame] = deque()
        self._lock = threading.Lock()
        self.peak = 0

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: Frame) -> None:
        with self._lock:
            self._frames.append(frame)
            horizon = frame.time - self.seconds
            while len(self._frames) > self.max_frames or self._frames[0].time < horizon:
                self._frames.popleft()
            self.peak = max(self.peak, len(self._frames))

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def since(self, t: float) -> list[Frame]:
        """The frames at or after stream time ``t``, in order."""
        with self._lock:
            frames = list(self._frames)
        return frames[bisect.bisect_left(frames, t, key=_time):]

    def pick(self, targets: Sequence[float], tolerance: float) -> list[Frame] | None:
        """For each target time, the last frame at or before it (the first after it when
        none is); ``None`` when a target has no frame within ``tolerance`` seconds."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return None
        out = []
        for target in targets:
            i = bisect.bisect_right(frames, target, key=_time) - 1
            frame = frames[max(i, 0)]
            if abs(frame.time - target) > tolerance:
                return None
            out.append(frame)
        return out

    def wall_at(self, t: float) -> float | None:
        """The wall time at which stream time ``t`` arrived (from the nearest frame)."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return None
        i = bisect.bisect_left(frames, t, key=_time)
        near = frames[max(i - 1, 0):i + 1]
        best = min(near, key=lambda f: abs(f.time - t))
        return best.wall + (t - best.time)


def _time(frame: Frame) -> float:
    return frame.time


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The buffered frame size of a ``width × height`` source: scaled down so the longer
    side is at most ``max_side``, both sides even (rounded down: H.264 clips need it), at least 2."""
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    w = max(2, int(round(width * scale, 6)) // 2 * 2)
    h = max(2, int(round(height * scale, 6)) // 2 * 2)
    return w, h
