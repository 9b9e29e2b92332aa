"""Where the windows of a long video lie, and which frames each one samples.

Every window is ``window`` seconds long and samples ``F = num_frames`` frames uniformly,
as training does: the centres of ``F`` equal parts of the window. All windows share one
**sampling grid**: the global times ``t_k = (k + ½)·Δ`` with ``Δ = window / F``. A window
starts on a grid line (its start ``j·stride`` rounded to the nearest multiple of ``Δ``,
at most ``Δ/2`` off), so its ``F`` frames are grid points ``k0 … k0 + F − 1`` and a frame
sampled for one window is the *same* frame its overlapping neighbours sample: with the
defaults (8-s windows, 4-s stride, 8 frames) each frame serves two windows and is
decoded once.

The last window ends on the last grid line inside the video (a tail shorter than ``Δ``
is not covered); a video shorter than one window is one window over the whole file,
sampled at ``Δ = duration / F``. Windows that would start on the same grid line (a
stride shorter than ``Δ``) are kept once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WindowPlan", "plan_windows"]

_EPS = 1e-9


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one video on a common sampling grid.

    Attributes:
        duration: the video's length in seconds.
        window, stride: as asked (seconds).
        num_frames: ``F``, frames per window.
        interval: ``Δ``, seconds between grid points.
        starts: each window's first grid index ``k0`` (non-decreasing, distinct).
    """

    duration: float
    window: float
    stride: float
    num_frames: int
    interval: float
    starts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.starts)

    def time_of(self, k: int) -> float:
        """The target time (seconds) of grid point ``k``."""
        return (k + 0.5) * self.interval

    def indices(self, w: int) -> range:
        """The grid indices window ``w`` samples."""
        return range(self.starts[w], self.starts[w] + self.num_frames)

    def span(self, w: int) -> tuple[float, float]:
        """Window ``w``'s ``[start, end)`` in seconds (what its answers' times are relative to)."""
        k0 = self.starts[w]
        return (round(k0 * self.interval, 6), round(min((k0 + self.num_frames) * self.interval, self.duration), 6))

    def times(self, w: int) -> list[float]:
        return [self.time_of(k) for k in self.indices(w)]

    def needed(self, windows: Sequence[int]) -> list[int]:
        """The sorted union of the grid indices of ``windows``."""
        return sorted({k for w in windows for k in self.indices(w)})

    def all_indices(self) -> list[int]:
        return self.needed(range(len(self)))

    def batches(self, batch_size: int) -> list[range]:
        """Consecutive windows in groups of ``batch_size``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return [range(i, min(i + batch_size, len(self))) for i in range(0, len(self), batch_size)]

    def chunks(self, size: int, batch_size: int) -> list[range]:
        """Consecutive windows in runs of ``size`` rounded up to whole batches of
        ``batch_size`` (the last run may be shorter): the units of work a Ray job spreads
        over its replicas, so an hour-long video and a one-minute clip balance. A chunk
        holds the same batches as a whole-video run, so its answers are the same."""
        if size < 1 or batch_size < 1:
            raise ValueError(f"a chunk and a batch hold at least 1 window, got chunk {size}, batch {batch_size}")
        per = -(-size // batch_size) * batch_size
        return [range(i, min(i + per, len(self))) for i in range(0, len(self), per)]

    def max_frames_held(self, batch_size: int) -> int:
        """The most frames a batch of ``batch_size`` consecutive windows needs at once —
        what the frame buffer holds at most (independent of the video's length)."""
        return max((len(self.needed(b)) for b in self.batches(batch_size)), default=0)


def plan_windows(duration: float, window: float = 8.0, stride: float = 4.0, num_frames: int = 8) -> WindowPlan:
    """The windows of a ``duration``-second video (see the module doc).

    >>> p = plan_windows(20.0, window=8.0, stride=4.0, num_frames=4)
    >>> [p.span(w) for w in range(len(p))]
    [(0.0, 8.0), (4.0, 12.0), (8.0, 16.0), (12.0, 20.0)]
    >>> p.times(1)
    [5.0, 7.0, 9.0, 11.0]
    """
    duration, window, stride = float(duration), float(window), float(stride)
    if not duration > 0 or not math.isfinite(duration):
        raise ValueError(f"the video's duration must be positive, got {duration}")
    if not window > 0 or not stride > 0:
        raise ValueError(f"window and stride must be positive seconds, got window={window}, stride={stride}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if duration <= window + _EPS:
        return WindowPlan(duration, window, stride, num_frames, duration / num_frames, (0,))
    interval = window / num_frames
    last = math.floor(duration / interval - num_frames + _EPS)  # the last start whose window fits
    starts: list[int] = []
    j = 0
    while True:
        k0 = min(round(j * stride / interval), last)
        if not starts or k0 > starts[-1]:
            starts.append(k0)
        if k0 >= last:
            break
        j += 1
    return WindowPlan(duration, window, stride, num_frames, interval, tuple(starts))
