"""MP4 clips of events, with pre- and post-roll.

When an event opens, a :class:`ClipRecorder` takes the camera's buffered frames from
``pre_roll`` seconds before the event's start, then every new frame as the reader
buffers it; when the event closes it goes on until ``post_roll`` seconds after the
event's end (or at once at shutdown) and finishes the file. The frames are encoded as
they come, on the recorder's own thread, by :func:`uprm.data.write_mp4` (so memory stays
bounded however long the event, and the file appears atomically when complete), at the
buffer's frame rate: each output frame is the newest frame at its time, so the clip
plays in real time even when frames arrived irregularly.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
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
        queue_size: frames waiting for the encoder before new ones are dropped (counted).

    Attributes:
        written: the path once the file is complete; ``error`` when it failed.
        frames_in, dropped: frames received and frames dropped (encoder behind).
    """

    def __init__(self, path: str | os.PathLike, fps: float, first: Sequence[Frame] = (), max_seconds: float = 300.0,
                 queue_size: int = 256) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.max_seconds = float(max_seconds)
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
        return self._ended.is_set()

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
        """Constant-rate frames: at each output time, the newest frame at or before it."""
        period = 1.0 / self.fps
        limit = round(self.max_seconds * self.fps)
        emitted, prev, out_t, shape = 0, None, 0.0, None
        for frame in self._incoming():
            if prev is None:
                prev, out_t, shape = frame, frame.time, frame.pixels.shape
                continue
            while out_t < frame.time - 1e-9 and emitted < limit:
                yield _fit(prev.pixels, shape)
                emitted, out_t = emitted + 1, out_t + period
            if emitted >= limit:
                self._ended.set()
                return
            prev = frame
        if prev is not None:
            yield _fit(prev.pixels, shape)

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


def _fit(pixels: Any, shape: tuple[int, ...]) -> Any:
    """``pixels`` at ``shape`` (nearest neighbour), for a stream whose size changed."""
    if pixels.shape == shape:
        return pixels
    import numpy as np

    rows = np.linspace(0, pixels.shape[0] - 1, shape[0]).round().astype(int)
    cols = np.linspace(0, pixels.shape[1] - 1, shape[1]).round().astype(int)
    return pixels[rows][:, cols]
