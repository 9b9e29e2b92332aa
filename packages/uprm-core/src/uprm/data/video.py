"""Video decoding with PyAV: a few frames, with their true timestamps, by seeking.

``load_clip(path, num_frames=8, start=None, end=None)`` samples ``F`` frames uniformly
over a file or over the window ``[start, end)`` seconds and returns a
:class:`uprm.VideoClip`. Each sampled time costs one seek to the keyframe before it and
a decode forward to it, so sampling 8 frames from a 10-minute file costs about what it
costs from a 1-minute file (``benchmarks/video_decode.py`` measures it).

Sampling rule. The window is cut into ``F`` equal parts and the target time of part
``i`` is its centre, ``t_i = start + (i + ½)·(end − start)/F``. The frame sampled for
``t_i`` is the frame on screen at ``t_i`` — the last frame whose presentation time is
``≤ t_i`` — unless that frame starts before the window, in which case the first frame
inside the window is taken. When a window holds fewer frames than ``F`` a frame repeats
(timestamps stay non-decreasing); the clip always has exactly ``F`` frames. With
``fps=`` the targets are the centres of ``1/fps``-second steps instead (at most
``max_frames``), for long videos.

Timestamps are the decoded frames' presentation times (pts) in seconds from the file's
first frame (whose pts is read when the file is opened: containers disagree on what
``start_time`` means — an AVI's first frame may carry pts 1, an MPEG-TS stream starts
at 1.4 s), so variable-frame-rate files get their true times. Frame indices (``clip.meta["frame_indices"]``) are exact for
constant-frame-rate files and for files whose index lists every frame (MP4/MOV without
B-frame reordering); otherwise they are ``round(t · fps)``.

Bad files raise :class:`uprm.VideoError` naming the file and the problem:

=====================  ===================================================================
file                   behaviour
=====================  ===================================================================
missing / zero bytes   error ("no such file" / "empty file (0 bytes)")
unreadable / a folder  error ("cannot be read: permission denied" / "is a directory")
not a video            error, with FFmpeg's reason
truncated              error: an MP4/AVI whose index is missing (``moov``, ``idx1``), an
                       index that points past the end of the file, or frames that stop
                       well before the duration the container states (MKV)
audio only             error ("no video stream; the file has only audio")
one frame              valid: a still image; every sampled frame is that frame
variable frame rate    valid: timestamps from pts; ``meta["variable_frame_rate"] = True``
rotated                valid: the display-matrix rotation is applied, frames come upright;
                       ``meta["rotation"]`` holds the angle; ``source_size`` is the upright
                       size
huge resolution        error above ``max_pixels`` (default 4096×4096) unless
                       ``max_pixels=None``; ``max_side=`` downscales frames while decoding,
                       and with it the default limit is 8192×8192 (8K footage reads; only
                       FFmpeg's decode buffer is full size)
=====================  ===================================================================

One decode of a window is shared by every expert simply by loading the clip once and
handing the same :class:`~uprm.VideoClip` to each expert's ``extract``. For hour-long
files, :func:`iter_windows` gives the windows and :meth:`VideoReader.windows` decodes
them one by one from a single open file.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uprm.errors import VideoError
from uprm.types import VideoClip

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DOWNSCALED_MAX_PIXELS",
    "VideoInfo",
    "VideoReader",
    "iter_windows",
    "load_clip",
    "load_image",
    "probe_video",
    "sample_times",
]

#: frames larger than this many pixels are refused unless asked for (4096 × 4096)
DEFAULT_MAX_PIXELS = 4096 * 4096
#: the default limit when ``max_side`` downscales while decoding (8K UHD and DCI 8K fit):
#: no full-size RGB array is made, only FFmpeg's decode buffer is full size
DOWNSCALED_MAX_PIXELS = 8192 * 8192

# Without a full index (MKV cues, MPEG-TS, AVI), decode forward instead of seeking when
# the next target is at most this many seconds ahead of the decoder.
_FORWARD_DECODE_S = 1.0


def sample_times(
    start: float,
    end: float,
    num_frames: int | None = 8,
    fps: float | None = None,
    max_frames: int | None = None,
) -> list[float]:
    """Target times (seconds) for uniform sampling of the window ``[start, end)``.

    With ``num_frames``: the centres of ``num_frames`` equal parts of the window. With
    ``fps`` (takes precedence): the centres of consecutive ``1/fps``-second steps (at
    least one), then thinned uniformly to at most ``max_frames``.

    >>> sample_times(0.0, 8.0, 4)
    [1.0, 3.0, 5.0, 7.0]
    >>> sample_times(0.0, 3.0, fps=1.0)
    [0.5, 1.5, 2.5]
    """
    start, end = float(start), float(end)
    if not end > start:
        raise ValueError(f"the window [{start}, {end}) is empty")
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = max(1, math.floor((end - start) * fps + 1e-9))
        step = 1.0 / fps
        times = [start + (i + 0.5) * step for i in range(n)]
        if max_frames is not None and len(times) > max_frames:
            if max_frames < 1:
                raise ValueError(f"max_frames must be at least 1, got {max_frames}")
            pick = np.linspace(0, len(times) - 1, max_frames).round().astype(int)
            times = [times[i] for i in pick]
        return times
    if num_frames is None or num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    step = (end - start) / num_frames
    return [start + (i + 0.5) * step for i in range(num_frames)]


def iter_windows(duration: float, window_s: float, stride_s: float | None = None) -> Iterator[tuple[float, float]]:
    """The windows ``(start, end)`` that cover ``[0, duration)``, for hour-long files.

    Windows are ``window_s`` long and start every ``stride_s`` seconds (default: no
    overlap); the last one is cut at ``duration``, and no window lies wholly inside the
    one before it. A video shorter than one window gives one window.

    >>> list(iter_windows(25.0, 10.0))
    [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    >>> list(iter_windows(20.0, 10.0, 5.0))
    [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]
    """
    duration, window_s = float(duration), float(window_s)
    stride_s = window_s if stride_s is None else float(stride_s)
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if not window_s > 0 or not stride_s > 0:
        raise ValueError(f"window and stride must be positive, got window={window_s}, stride={stride_s}")
    k = 0
    while True:
        start = k * stride_s
        end = min(start + window_s, duration)
        yield (round(start, 6), round(end, 6))
        if end >= duration - 1e-9:
            return
        k += 1


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself, read without decoding.

    ``width``/``height`` are the coded frame size (before rotation);
    ``num_frames`` is 0 when the container does not say.
    """

    path: str
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str
    variable_frame_rate: bool


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's duration, frame rate, frame count and size (no decoding)."""
    with VideoReader(path, max_pixels=None) as reader:
        return reader.info


def load_clip(
    path: str | os.PathLike,
    num_frames: int = 8,
    start: float | None = None,
    end: float | None = None,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    max_side: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> VideoClip:
    """Sample frames uniformly from a video file or a window of it, by seeking.

    Args:
        path: the video file (anything FFmpeg reads: mp4, mkv, avi, webm, ...).
        num_frames: ``F``, the number of frames (ignored when ``fps`` is given).
        start, end: the window ``[start, end)`` in seconds from the start of the file;
            default the whole file. ``end`` past the end of the file is cut to it.
        fps: sample this many frames per second of the window instead (long videos).
        max_frames: with ``fps``, keep at most this many frames (uniformly thinned).
        max_side: downscale frames (keeping the aspect) so the longer side is at most
            this many pixels; done by FFmpeg while converting, cheaper than after.
        max_pixels: refuse files whose frames have more pixels than this (``None``: no
            limit). With ``max_side`` the default becomes :data:`DOWNSCALED_MAX_PIXELS`.

    Shapes:
        ``frames``: uint8 ``[F, 3, H, W]`` (``H × W`` the upright frame size, or smaller
        with ``max_side``); ``timestamps``: float64 ``[F]``; ``meta["frame_indices"]``:
        ``F`` ints. ``F = num_frames``, or with ``fps`` the number of ``1/fps`` steps in
        the window (≥ 1, ≤ ``max_frames``).

    Returns:
        a :class:`~uprm.VideoClip` with ``frames`` uint8 RGB ``[F, 3, H, W]``,
        ``timestamps`` ``[F]`` (seconds from the start of the file, from the frames'
        pts), ``duration`` = the whole file's length, ``video_id`` = the file's stem,
        and ``meta`` with ``path``, ``window``, ``fps``, ``frame_indices``,
        ``source_size`` (docs/formats.md), ``rotation`` and ``variable_frame_rate``.

    Raises:
        uprm.VideoError: the file is missing, empty, not a video, audio only,
            truncated, too large, or the window lies outside it.
    """
    with VideoReader(path, max_side=max_side, max_pixels=max_pixels) as reader:
        return reader.clip(start, end, num_frames=num_frames, fps=fps, max_frames=max_frames)


def load_image(
    path: str | os.PathLike, *, max_side: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> VideoClip:
    """Read an image file (JPEG, PNG, ...; FFmpeg's image decoders) as a one-frame clip.

    Shapes: ``frames`` uint8 ``[1, 3, H, W]``, ``timestamps`` ``[1]`` (= 0).
    """
    with VideoReader(path, max_side=max_side, max_pixels=max_pixels) as reader:
        frames, times, indices, size = reader.frames_at([0.0])
        return VideoClip(
            torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(times, dtype=torch.float64),
            video_id=reader.path.stem,
            duration=0.0,
            meta={
                "path": str(reader.path),
                "window": [0.0, 0.0],
                "fps": 0.0,
                "frame_indices": indices,
                "source_size": list(size),
                "rotation": reader.rotation,
            },
        )


class VideoReader:
    """One open video file, sampled by seeking.

    >>> with VideoReader("cctv.mp4") as r:                       # doctest: +SKIP
    ...     for clip in r.windows(window_s=30.0, num_frames=8):  # an hour-long file
    ...         ...

    Args:
        path: the video file.
        max_side: downscale decoded frames so their longer side is at most this.
        max_pixels: refuse frames larger than this many pixels (``None``: no limit);
            with ``max_side``, the default is :data:`DOWNSCALED_MAX_PIXELS`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        max_side: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        import av  # PyAV: optional dependency `uprm-core[video]`

        self._av = av
        self.path = Path(path)
        self.max_side = max_side
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be positive, got {max_side}")
        self._file_size = _check_file(self.path)
        if max_side is not None and max_pixels == DEFAULT_MAX_PIXELS:
            max_pixels = DOWNSCALED_MAX_PIXELS
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, _open_problem(self.path, exc)) from exc
        try:
            self._init_stream(max_pixels)
        except BaseException:
            self._container.close()
            raise
        self._decoder: Iterator[Any] | None = None
        self._pending: Any = None  # a decoded frame not consumed yet (the one after the last target)
        self._last: Any = None  # the last frame consumed by the decoder
        self.rotation = 0
        try:
            self._start_pts = self._first_pts()
        except BaseException:
            self._container.close()
            raise

    def _first_pts(self) -> int:
        """The pts of the file's first frame: times count from it. (Containers disagree
        on what ``start_time`` means — AVI's first frame can carry pts 1 — so the frame
        itself is asked.) Leaves the decoder at the start of the file."""
        self._seek(self._stream_start)
        first = self._peek()
        if first is None:
            raise VideoError(self.path, "no frame decodes (the video stream is empty or damaged)")
        return int(first.pts)

    # -- opening ---------------------------------------------------------------------

    def _init_stream(self, max_pixels: int | None) -> None:
        container = self._container
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            if "audio" in kinds:
                raise VideoError(self.path, "no video stream; the file has only audio")
            raise VideoError(self.path, f"no video stream (streams: {', '.join(kinds) or 'none'})")
        stream = container.streams.video[0]
        self._stream = stream
        cc = stream.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise VideoError(self.path, "no frame size: not a video or image FFmpeg can decode, or a damaged header")
        if max_pixels is not None and width * height > max_pixels:
            raise VideoError(
                self.path,
                f"frame size {width}x{height} ({width * height / 1e6:.1f} Mpx) exceeds max_pixels={max_pixels}; "
                "downscale while decoding with max_side=N (uprm detect / serve: --max-side N), or pass "
                "max_pixels=None to allow it",
            )
        self.time_base: Fraction = stream.time_base or Fraction(1, 90000)
        # where the stream starts (for seeking); the first frame's own pts is read later
        self._stream_start = int(stream.start_time) if stream.start_time is not None else 0
        self._start_pts = self._stream_start
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        entries = stream.index_entries
        self._index = entries if len(entries) > 0 else None
        declared = int(stream.frames or 0)
        # MP4/MOV index every frame; MKV cues, AVI and MPEG-TS index keyframes or nothing
        self._full_index = self._index is not None and declared > 0 and len(entries) >= declared
        num_frames = declared or (len(entries) if self._full_index else 0)
        duration = self._duration(fps, num_frames)
        if fps <= 0 and duration > 0 and num_frames > 0:
            fps = num_frames / duration
        self.info = VideoInfo(
            path=str(self.path),
            duration=duration,
            fps=fps,
            num_frames=num_frames,
            width=width,
            height=height,
            codec=cc.name,
            variable_frame_rate=self._is_vfr(),
        )
        self._check_truncated()

    def _duration(self, fps: float, num_frames: int) -> float:
        stream, container = self._stream, self._container
        if stream.duration is not None and stream.duration > 0:
            return float(stream.duration * self.time_base)
        if container.duration is not None and container.duration > 0:
            start = (container.start_time or 0) / 1_000_000
            return max(0.0, container.duration / 1_000_000 - max(0.0, start - self._stream_start * self.time_base))
        if fps > 0 and num_frames > 0:
            return num_frames / fps
        # Raw streams with no duration anywhere: demux (no decoding) to the last packet.
        last, count = None, 0
        for packet in container.demux(stream):
            if packet.pts is not None:
                last = packet.pts if last is None else max(last, packet.pts)
                count += 1
        container.seek(0, stream=stream)
        if last is None:
            raise VideoError(self.path, "no video packets (empty or damaged stream)")
        step = 1.0 / fps if fps > 0 else 0.0
        return float((last - self._stream_start) * self.time_base) + step

    def _is_vfr(self) -> bool:
        """Whether the frame intervals differ (read from the index of a few frames)."""
        if not self._full_index or len(self._index) < 3:
            return False
        n = len(self._index)
        picks = sorted({int(i) for i in np.linspace(0, n - 2, min(n - 1, 33))})
        deltas = {self._index[i + 1].timestamp - self._index[i].timestamp for i in picks}
        return max(deltas) - min(deltas) > max(1, 0.01 * max(deltas))

    def _check_truncated(self) -> None:
        """An index that points past the end of the file means frames are missing."""
        if self._index is None:
            return
        last = self._index[len(self._index) - 1]
        if last.pos >= 0 and last.pos + last.size > self._file_size:
            # the first frame whose bytes are missing
            lo, hi = 0, len(self._index) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                e = self._index[mid]
                if e.pos + e.size > self._file_size:
                    hi = mid
                else:
                    lo = mid + 1
            readable = float((self._index[lo].timestamp - self._stream_start) * self.time_base)
            raise VideoError(
                self.path,
                f"truncated: the file ends at byte {self._file_size} but its index needs "
                f"{last.pos + last.size} bytes; frames from {max(0.0, readable):.2f} s of "
                f"{self.info.duration:.2f} s are missing",
            )

    # -- context manager -------------------------------------------------------------

    def close(self) -> None:
        self._decoder = None
        self._pending = self._last = None
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sampling --------------------------------------------------------------------

    @property
    def duration(self) -> float:
        return self.info.duration

    def clip(
        self,
        start: float | None = None,
        end: float | None = None,
        *,
        num_frames: int = 8,
        fps: float | None = None,
        max_frames: int | None = None,
    ) -> VideoClip:
        """Frames sampled uniformly over ``[start, end)`` (see :func:`load_clip`)."""
        s, e = self._window(start, end)
        times = sample_times(s, e, num_frames, fps=fps, max_frames=max_frames)
        frames, stamps, indices, size = self.frames_at(times, window=(s, e))
        return VideoClip(
            torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(stamps, dtype=torch.float64),
            video_id=self.path.stem,
            duration=self.info.duration,
            meta={
                "path": str(self.path),
                "window": [s, e],
                "fps": self.info.fps,
                "frame_indices": indices,
                "source_size": list(size),
                "rotation": self.rotation,
                "variable_frame_rate": self.info.variable_frame_rate,
            },
        )

    def windows(
        self,
        window_s: float,
        stride_s: float | None = None,
        *,
        num_frames: int = 8,
        fps: float | None = None,
        max_frames: int | None = None,
    ) -> Iterator[VideoClip]:
        """One clip per window of :func:`iter_windows` over the whole file."""
        for s, e in iter_windows(self.info.duration, window_s, stride_s):
            yield self.clip(s, e, num_frames=num_frames, fps=fps, max_frames=max_frames)

    def _window(self, start: float | None, end: float | None) -> tuple[float, float]:
        duration = self.info.duration
        s = 0.0 if start is None else float(start)
        e = duration if end is None else min(float(end), duration)
        if s < 0:
            raise VideoError(self.path, f"the window starts at {s} s, before the start of the file")
        if s >= duration:
            raise VideoError(self.path, f"the window starts at {s} s but the video lasts {duration:.3f} s")
        if not e > s:
            raise VideoError(self.path, f"the window [{s}, {e}) is empty")
        return s, e

    def frames_at(
        self, times: Sequence[float], window: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, list[float], list[int], tuple[int, int]]:
        """Decode the frame on screen at each time (seconds, non-decreasing).

        Returns ``(frames, timestamps, frame_indices, source_size)``: frames uint8
        ``[F, H, W, 3]`` (upright, downscaled if ``max_side``), timestamps ``[F]`` in
        seconds, 0-based frame indices, and the upright source size ``(width, height)``.
        With ``window=(s, e)``, a frame that starts before ``s`` is replaced by the
        first frame at or after ``s`` when that one starts before ``e``.
        """
        times = [float(t) for t in times]
        if not times:
            raise ValueError("no times to sample")
        if any(b < a for a, b in itertools.pairwise(times)):
            raise ValueError("times must be non-decreasing")
        tb = self.time_base
        lo_pts = None if window is None else self._to_pts(window[0])
        hi_pts = None if window is None else self._to_pts(window[1])
        arrays: list[np.ndarray] = []
        stamps: list[float] = []
        indices: list[int] = []
        cache: dict[int, np.ndarray] = {}
        size = (0, 0)
        for t in times:
            target = self._to_pts(t)
            frame = self._frame_at(target, t)
            if lo_pts is not None and frame.pts < lo_pts:
                nxt = self._peek()
                if nxt is not None and nxt.pts < hi_pts:
                    frame = self._advance()
            pts = int(frame.pts)
            if pts not in cache:
                cache[pts], size = self._to_array(frame)
            arrays.append(cache[pts])
            stamps.append(float((pts - self._start_pts) * tb))
            indices.append(self._frame_index(pts))
        return np.stack(arrays), stamps, indices, size

    # -- decoding internals ----------------------------------------------------------

    def _to_pts(self, seconds: float) -> int:
        return self._start_pts + math.floor(seconds / self.time_base + 1e-6)

    def _frame_at(self, target: int, seconds: float) -> Any:
        """The last frame with ``pts ≤ target`` (the first frame of the file if the
        target precedes it); decodes forward from the current position or seeks."""
        position = self._last if self._last is not None else self._pending
        if position is not None and position.pts <= target and not self._needs_seek(position.pts, target):
            frame = self._forward_to(target)
            if frame is not None:
                return self._check_reached(frame, target, seconds)
        backoff = 0
        while True:
            seek_to = target - backoff
            self._seek(seek_to)
            first = self._peek()
            at_start = seek_to <= self._stream_start
            if first is not None and (first.pts <= target or at_start):
                if first.pts > target:  # the target precedes the first frame
                    return self._advance()
                return self._check_reached(self._forward_to(target), target, seconds)
            if first is None and at_start:
                raise VideoError(self.path, f"truncated or damaged: no frame decodes up to {seconds:.3f} s")
            # nothing decoded (a seek into the middle of a GOP, e.g. in MPEG-TS) or the
            # demuxer landed after the target (open GOPs, sparse index): seek earlier
            backoff = max(2 * backoff, int(1.0 / self.time_base))

    def _check_reached(self, frame: Any, target: int, seconds: float) -> Any:
        """A file whose frames stop well before a target inside its claimed duration is
        truncated (files without a full index are not caught when opened)."""
        if self._peek() is None:
            fps = self.info.fps or 1.0
            gap = float((target - frame.pts) * self.time_base)
            if gap > max(1.0, 3.0 / fps):
                last = float((frame.pts - self._start_pts) * self.time_base)
                raise VideoError(
                    self.path,
                    f"truncated or damaged: frames stop at {last:.3f} s but the file claims "
                    f"{self.info.duration:.3f} s (asked for {seconds:.3f} s)",
                )
        return frame

    def _needs_seek(self, current: int, target: int) -> bool:
        """Whether seeking is cheaper than decoding forward from ``current`` to ``target``."""
        if target <= current:
            return False
        if self._full_index:
            keyframe = self._keyframe_before(target)
            return keyframe is not None and keyframe > current
        return (target - current) * self.time_base > _FORWARD_DECODE_S

    def _keyframe_before(self, target: int) -> int | None:
        """Timestamp of the last indexed keyframe at or before ``target`` (O(log N + GOP))."""
        index = self._index
        lo, hi = 0, len(index)
        while lo < hi:  # first entry with timestamp > target
            mid = (lo + hi) // 2
            if index[mid].timestamp <= target:
                lo = mid + 1
            else:
                hi = mid
        for i in range(lo - 1, -1, -1):
            if index[i].is_keyframe:
                return int(index[i].timestamp)
        return None

    def _seek(self, target: int) -> None:
        self._container.seek(max(target, self._stream_start), stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._decode()
        self._pending = None
        self._last = None

    def _decode(self) -> Iterator[Any]:
        av = self._av
        try:
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    if frame.dts is None:
                        raise VideoError(self.path, "decoded frames carry no timestamps")
                    frame.pts = frame.dts
                yield frame
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, f"damaged: decoding failed ({exc})") from exc

    def _peek(self) -> Any:
        if self._pending is None and self._decoder is not None:
            self._pending = next(self._decoder, None)
            if self._pending is None:
                self._decoder = None
        return self._pending

    def _advance(self) -> Any:
        frame = self._peek()
        self._pending = None
        if frame is not None:
            self._last = frame
        return frame

    def _forward_to(self, target: int) -> Any:
        """Consume frames while the next one starts at or before ``target``."""
        while True:
            nxt = self._peek()
            if nxt is None or nxt.pts > target:
                return self._last
            self._advance()

    def _to_array(self, frame: Any) -> tuple[np.ndarray, tuple[int, int]]:
        rotation = round(float(getattr(frame, "rotation", 0) or 0)) % 360
        rotation = 90 * round(rotation / 90) % 360
        self.rotation = rotation
        w, h = frame.width, frame.height
        upright = (h, w) if rotation in (90, 270) else (w, h)
        if self.max_side is not None and max(w, h) > self.max_side:
            scale = self.max_side / max(w, h)
            frame = frame.reformat(
                width=max(2, round(w * scale)), height=max(2, round(h * scale)), format="rgb24", interpolation="AREA"
            )
        array = frame.to_ndarray(format="rgb24")
        if rotation:
            # the display matrix rotates counter-clockwise by `rotation` degrees
            array = np.ascontiguousarray(np.rot90(array, k=rotation // 90))
        return array, upright

    def _frame_index(self, pts: int) -> int:
        """0-based index of the frame with this pts in the file."""
        if self._full_index and not self._reorders():
            index = self._index
            keys = _IndexTimestamps(index)
            pts = pts - self._start_pts + int(index[0].timestamp)  # the index counts from its first entry
            i = bisect.bisect_left(keys, pts)  # first entry with timestamp >= pts
            if i == len(index) or (i > 0 and pts - keys[i - 1] < keys[i] - pts):
                return i - 1
            return i
        fps = self.info.fps
        return max(0, round(float((pts - self._start_pts) * self.time_base) * fps)) if fps > 0 else 0

    def _reorders(self) -> bool:
        """Whether index timestamps are decode times that differ from the frames' pts
        (B-frames): the first indexed timestamp then precedes the stream's start."""
        return int(self._index[0].timestamp) != self._stream_start


class _IndexTimestamps(Sequence):
    """The timestamps of an ``av.IndexEntries`` as a lazy sequence (for bisect)."""

    def __init__(self, index: Any) -> None:
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: Any) -> int:  # bisect only uses integer indices
        return int(self._index[i].timestamp)


def _check_file(path: Path) -> int:
    """The size of a readable, non-empty regular file; else a :class:`VideoError` saying
    which of missing, unreachable, a folder, empty or unreadable it is."""
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        raise VideoError(path, "no such file") from None
    except PermissionError:
        raise VideoError(path, "cannot be read: permission denied (on the file or a folder above it)") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise VideoError(path, "is a directory, not a video file")
    if info.st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise VideoError(path, "cannot be read: permission denied (check the file's permissions)") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read ({exc.strerror or exc})") from None
    return info.st_size


def _open_problem(path: Path, exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        head = b""
    if head[4:8] in (b"ftyp", b"mdat", b"wide", b"free", b"moov"):
        return (
            "truncated or damaged MP4/MOV: FFmpeg cannot read it "
            f"({reason}; e.g. the 'moov' index is missing after an interrupted write)"
        )
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return f"truncated or damaged AVI: FFmpeg cannot read it ({reason})"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return f"truncated or damaged Matroska/WebM: FFmpeg cannot read it ({reason})"
    return f"not a video file FFmpeg can read ({reason})"
