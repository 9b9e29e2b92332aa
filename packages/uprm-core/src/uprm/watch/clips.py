"""MP4 clips of events, with pre- and post-roll.

When an event opens, a :class:`ClipRecorder` takes the camera's buffered frames from
``pre_roll`` seconds before the event's start, then every new frame as the reader
buffers it; when the event closes it goes on until ``post_roll`` seconds after the
event's end (or at once at shutdown) and finishes the file. The frames are encoded as
they come, on the recorder's own thread, by :func:`uprm.data.write_mp4` (so memory stays
bounded however long the event, and the file appears atomically when complete), at the
buffer's frame rate: each output frame is the newest frame at its time, so the clip
plays in real time even when frames arrived irregularly. The encoder stays ``holdback``
seconds behind the newest frame, so when the event closes (which happens a cool-down
after its end) the clip can still end exactly ``post_roll`` seconds after the event.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from uprm.watch.frames import Frame

__all__ = ["ClipRecorder"]

log = logging.getLogger("uprm.watch")


class ClipRecorder:
    """Records one event's clip to ``path`` (see the module doc).

    Args:
        path: the MP4 to write.
        fps: frames per second of the clip.
        first: the buffered frames from the pre-roll on, in time order.
        max_seconds: cut the clip after this many seconds.
        holdback: seconds the encoder stays behind the newest frame, so that the clip
            can end exactly ``post_roll`` after an event that closes up to this late
            (the watcher passes window + stride + cool-down + 1 s).
        queue_size: frames waiting for the encoder before new ones are dropped (counted).

    Attributes:
        written: the path once the file is complete; ``error`` when it failed.
        frames_in, dropped: frames received and frames dropped (encoder behind).
    """

    def __init__(self, path: str | os.PathLike, fps: float, first: Sequence[Frame] = (), max_seconds: float = 300.0,
                 holdback: float = 0.0, queue_size: int = 256) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.max_seconds = float(max_seconds)
        self.holdback = float(holdback)
        self.until: float | None = None
        self.frames_in = 0
        self.dropped = 0
        self.written: Path | None = None
        self.error: str | None = None
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=max(queue_size, len(first) + 1))
        self._ended = threading.Event()
        self._last_time: float | None = None
        for frame in first:
            self.feed(frame)
        self._thread = threading.Thread(target=self._write, name=f"uprm-watch-clip-{self.path.stem}", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        """No more frames are taken (the encoder may still be finishing the file)."""
        return self._ended.is_set()

    @property
    def finished(self) -> bool:
        """The file is finished: :attr:`written`, or :attr:`error`."""
        return self._ended.is_set() and not self._thread.is_alive()

    def feed(self, frame: Frame) -> None:
        """A new buffered frame of the camera (called by the reader thread)."""
        if self._ended.is_set() or (self._last_time is not None and frame.time <= self._last_time):
            return
        if self.until is not None and frame.time > self.until:
            self._ended.set()
            return
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1
            return
        self._last_time = frame.time
        self.frames_in += 1

    def close_at(self, t: float) -> None:
        """End the clip with the first frame after stream time ``t``."""
        self.until = float(t)
        if self._last_time is not None and self._last_time >= t:
            self._ended.set()

    def stop(self) -> None:
        """End the clip now (with the frames received so far)."""
        self._ended.set()

    def join(self, timeout: float | None = None) -> Path | None:
        self._thread.join(timeout)
        return self.written

    def _incoming(self) -> Iterator[Frame]:
        while True:
            try:
                yield self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._ended.is_set():
                    return

    def _frames(self) -> Iterator[Any]:
        """Constant-rate frames, encoded ``holdback`` seconds behind the newest frame, so
        the end can still be cut at ``until`` when the event closes later."""
        out = _Resampler(self.fps, round(self.max_seconds * self.fps))
        pending: deque[Frame] = deque()
        for frame in self._incoming():
            pending.append(frame)
            while pending[0].time < frame.time - self.holdback:
                yield from out.push(pending.popleft())
            if out.full:
                self._ended.set()
                return
        for frame in pending:
            if self.until is None or frame.time <= self.until:
                yield from out.push(frame)
        yield from out.finish()

    def _write(self) -> None:
        from uprm.data import write_mp4

        try:
            self.written = write_mp4(self.path, self._frames(), fps=self.fps)
            log.info("clip %s written", self.path)
        except ValueError as exc:  # no frames at all
            self.error = str(exc)
        except Exception as exc:  # an encoder or disk error must not stop the watcher
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("clip %s failed: %s", self.path, self.error)
        finally:
            self._ended.set()


class _Resampler:
    """Frames at a constant rate: at each output time, the newest frame at or before it
    (frames that arrived irregularly are repeated or dropped), at most ``limit``."""

    def __init__(self, fps: float, limit: int) -> None:
        self.period, self.limit = 1.0 / fps, limit
        self.prev: Frame | None = None
        self.t = 0.0
        self.shape: tuple[int, ...] = ()
        self.emitted = 0

    @property
    def full(self) -> bool:
        return self.emitted >= self.limit

    def push(self, frame: Frame) -> Iterator[Any]:
        if self.prev is None:
            self.prev, self.t, self.shape = frame, frame.time, frame.pixels.shape
            return
        while self.t < frame.time - 1e-9 and not self.full:
            yield _fit(self.prev.pixels, self.shape)
            self.emitted, self.t = self.emitted + 1, self.t + self.period
        self.prev = frame

    def finish(self) -> Iterator[Any]:
        if self.prev is not None and not self.full:
            self.emitted += 1
            yield _fit(self.prev.pixels, self.shape)


def _fit(pixels: Any, shape: tuple[int, ...]) -> Any:
    """``pixels`` at ``shape`` (nearest neighbour), for a stream whose size changed."""
    if pixels.shape == shape:
        return pixels
    import numpy as np

    rows = np.linspace(0, pixels.shape[0] - 1, shape[0]).round().astype(int)
    cols = np.linspace(0, pixels.shape[1] - 1, shape[1]).round().astype(int)
    return pixels[rows][:, cols]
