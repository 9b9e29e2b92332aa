"""One thread per camera: open the source with PyAV, decode, keep frames in the ring
buffer, reconnect when a live source drops.

* Frames are kept at most ``fps`` per second (the rest are decoded and dropped), scaled
  so the longer side is at most ``max_side`` (the size is fixed by the first frame, so it
  stays the same across reconnects and when the stream's own size changes, which is
  logged and counted in ``size_changes``).
* An RTSP camera's transport is negotiated when it opens (TCP, then UDP when the server
  refuses TCP; :func:`~uprm.watch.sources.open_negotiated`); the one that worked is kept
  in ``Camera.transport`` and tried first on every reconnect.
* A live source (stream, device) that ends or fails — end of stream, a read timeout, a
  network error — is logged and reopened after ``reconnect_min``; while reopening
  fails (no frame delivered) the waits double up to ``reconnect_max`` seconds
  (tenacity's ``wait_exponential``), and ``max_reconnects`` failed attempts in a row
  give the camera up. The back-off restarts after a session that delivered frames.
  The other cameras, the ring buffer and the open events are untouched; the stream
  clock continues (:class:`~uprm.watch.frames.StreamClock`).
* A file ends at its end. With ``realtime`` it is read at its own frame rate (like a
  camera: windows are skipped when inference is slower); without, it is **paced** by the
  inference loop: the reader waits while a window of this camera is due and not yet
  taken, so every window is run (as fast as inference goes) and none is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_never, wait_exponential

from uprm.watch.frames import Frame, RingBuffer, StreamClock, output_size
from uprm.watch.schedule import WindowClock
from uprm.watch.settings import WatchSettings
from uprm.watch.sources import Source, open_negotiated

__all__ = ["Camera", "CameraReader", "CameraStats"]

log = logging.getLogger("uprm.watch")


@dataclass
class CameraStats:
    """Counters of one camera (read by the status view and the report)."""

    frames_decoded: int = 0
    frames_kept: int = 0
    sessions: int = 0
    drops: int = 0
    reconnects: int = 0
    open_failures: int = 0
    windows: int = 0
    skipped: int = 0
    incomplete: int = 0
    outage: int = 0
    events: int = 0
    size_changes: int = 0  # the stream's frame size changed mid-session (frames are still scaled to the first size)
    decode_cpu: float = 0.0
    first_wall: float | None = None
    last_error: str = ""
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=10000))  # frame -> answer, seconds

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "lags"}
        out["decode_cpu"] = round(self.decode_cpu, 4)
        return out


class Camera:
    """A source's state shared by its reader thread and the inference loop."""

    def __init__(self, source: Source, settings: WatchSettings, clock: WindowClock, wake: threading.Event) -> None:
        self.source = source
        self.name = source.name
        self.settings = settings
        self.clock = clock
        self.paced = source.kind == "file" and not settings.realtime
        history = settings.window + clock.stride + settings.pre_roll + 2.0
        self.ring = RingBuffer(history, int(history * settings.fps * 1.25) + 8)
        self.stream_clock = StreamClock(live=not self.paced)
        self.stats = CameraStats()
        self.frame_step = 1.0 / settings.fps  # seconds a kept frame stands for (set by the reader)
        self.session_start: float | None = None  # stream time of the first frame after the last reconnect
        #: the RTSP transport of the last session that opened ("tcp", "udp"); None: not RTSP (or not open yet)
        self.transport: str | None = None
        self.state = "starting"
        self.cond = threading.Condition()
        self.wake = wake
        self._listeners: list[Any] = []
        self._listen_lock = threading.Lock()

    @property
    def ended(self) -> bool:
        return self.state in ("ended", "failed", "stopped")

    def set_state(self, state: str) -> None:
        self.state = state
        self.wake.set()

    def push(self, frame: Frame) -> None:
        self.ring.push(frame)
        self.stats.frames_kept += 1
        with self._listen_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.feed(frame)
        self.wake.set()

    def listen(self, listener: Any) -> None:
        """``listener.feed(frame)`` is called with every new buffered frame."""
        with self._listen_lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Any) -> None:
        with self._listen_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def waiting(self) -> float | None:
        """How long (stream seconds) the next window has been due, ``None`` when it is not."""
        latest = self.ring.latest()
        if latest is None:
            return None
        lag = latest.time - self.clock.due_at()
        return lag if lag >= -1e-6 else None

    def take_window(self) -> tuple[int, int] | None:
        """The window to run now, ``(m, skipped)``, or ``None`` (see
        :meth:`WindowClock.take`; a paced file never skips: its windows come in order).
        Windows passed over because their sampling time fell in a stream outage (before
        the first frame after a reconnect) are counted in ``stats.outage``, not in
        ``skipped``, which counts only the windows inference had no time for."""
        latest = self.ring.latest()
        if latest is None:
            return None
        with self.cond:
            first = self.clock.next_end
            taken = self.clock.take(min(latest.time, self.clock.due_at()) if self.paced else latest.time)
            self.cond.notify_all()
        if taken is None or not taken[1]:
            return taken
        m, skipped = taken
        passed = range(first, m, self.clock.step)
        lost = sum(1 for k in passed if self.session_start is not None and self.clock.due_at(k) < self.session_start)
        self.stats.outage += lost
        return m, skipped - lost

    def wait_room(self, stop: threading.Event) -> bool:
        """For a paced file: wait while a window is due and not taken. ``False`` on stop."""
        with self.cond:
            while not stop.is_set():
                latest = self.ring.latest()
                if latest is None or latest.time < self.clock.due_at():
                    return True
                self.cond.wait(0.1)
        return False


class _NoFrames(Exception):
    """A session of a live source that delivered no frame (it did not open, or failed at once)."""


class CameraReader(threading.Thread):
    """The reader thread of one camera (see the module doc).

    Args:
        on_frame: called with ``(camera name, frame)`` for every buffered frame.
        sleep: how the thread waits before reconnecting (tests pass one that records the
            waits); by default a wait that ``stop`` cuts short.
    """

    def __init__(self, camera: Camera, stop: threading.Event,
                 on_frame: Callable[[str, Frame], None] | None = None,
                 sleep: Callable[[float], Any] | None = None) -> None:
        super().__init__(name=f"uprm-watch-{camera.name}", daemon=True)
        self.camera = camera
        self.stop_event = stop
        self.on_frame = on_frame
        self.settings = camera.settings
        self._sleep = sleep or stop.wait
        self._size: tuple[int, int] | None = None
        self._source_size: tuple[int, int] | None = None  # the decoded frames' size, to notice a change
        self._next_keep = float("-inf")
        self._new_session = False
        self._seq = 0
        self._delivered = 0  # frames delivered by the current session
        self._cpu0 = 0.0
        s = self.settings
        self._reopening = Retrying(
            stop=stop_never if s.max_reconnects is None else stop_after_attempt(s.max_reconnects + 1),
            wait=wait_exponential(multiplier=s.reconnect_min, max=s.reconnect_max),
            retry=retry_if_exception_type(_NoFrames), sleep=self._sleep, before_sleep=self._before_reopen,
            reraise=True)

    def run(self) -> None:
        self._cpu0 = time.thread_time()
        cam = self.camera
        try:
            self._loop()
        except Exception as exc:  # never let a camera's thread die silently
            cam.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s: reader failed", cam.name)
            cam.set_state("failed")
        else:
            if not cam.ended:
                cam.set_state("stopped" if self.stop_event.is_set() else "ended")
        finally:
            cam.stats.decode_cpu = time.thread_time() - self._cpu0

    def _loop(self) -> None:
        s = self.settings
        while self._open_until_frames():
            if not self.camera.source.live or self.stop_event.is_set():
                return
            self._reconnecting(s.reconnect_min)  # a session delivered frames, then ended: a fresh back-off
            self._sleep(s.reconnect_min)

    def _open_until_frames(self) -> bool:
        """Sessions until one delivers frames (a file: its one session), with back-off
        between those that deliver none; ``False`` when the camera is given up."""
        try:
            self._reopening(self._attempt)
        except _NoFrames:
            cam = self.camera
            log.error("camera %s: giving up after %d failed reconnects (%s)", cam.name, self.settings.max_reconnects,
                      cam.stats.last_error)
            cam.set_state("failed")
            return False
        return True

    def _attempt(self) -> int:
        """One session; :class:`_NoFrames` when a live source delivered none (worth another try)."""
        if self.stop_event.is_set():
            return 0
        delivered = self._session()
        if delivered or not self.camera.source.live or self.stop_event.is_set():
            return delivered
        raise _NoFrames

    def _before_reopen(self, state: RetryCallState) -> None:
        self._reconnecting(state.upcoming_sleep)

    def _reconnecting(self, delay: float) -> None:
        self.camera.set_state("reconnecting")
        log.warning("camera %s: reconnecting in %.1f s", self.camera.name, delay)

    def _session(self) -> int:
        """One connection: open, decode until the end or an error; frames delivered (also
        when the session ended in an error: a read timeout ends most live sessions)."""
        cam, s = self.camera, self.settings
        cam.set_state("connecting")
        try:
            container, cam.transport = open_negotiated(cam.source, s.open_timeout, s.read_timeout, s.av_options,
                                                       preferred=cam.transport)
        except Exception as exc:
            cam.stats.open_failures += 1
            cam.stats.last_error = f"cannot open: {type(exc).__name__}: {exc}"
            log.warning("camera %s: cannot open %s: %s", cam.name, cam.source.describe(), exc)
            if not cam.source.live:
                cam.set_state("failed")
            return 0
        self._delivered = 0
        try:
            cam.stats.sessions += 1
            over = f" over {cam.transport.upper()}" if cam.transport else ""
            if cam.stats.sessions > 1:
                cam.stats.reconnects += 1
                log.warning("camera %s: reconnected to %s%s", cam.name, cam.source.describe(), over)
            else:
                log.info("camera %s: opened %s%s", cam.name, cam.source.describe(), over)
            cam.stream_clock.new_session()
            self._new_session = cam.stats.sessions > 1
            cam.set_state("live")
            self._decode(container)
            problem = "end of stream"
        except Exception as exc:  # timeouts, network errors, corrupt data
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            container.close()
        if not cam.source.live and problem != "end of stream":
            cam.stats.last_error = problem
            log.error("camera %s: cannot read %s: %s", cam.name, cam.source.describe(), problem)
            cam.set_state("failed")
        elif cam.source.live and not self.stop_event.is_set():
            cam.stats.drops += 1
            cam.stats.last_error = problem
            log.warning("camera %s: stream dropped (%s)", cam.name, problem)
        return self._delivered

    def _decode(self, container: Any) -> None:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        step = 1.0 / float(rate) if rate else 0.04
        self.camera.frame_step = max(step, 1.0 / self.settings.fps)
        start_wall = start_t = None
        for frame in container.decode(stream):
            if self.stop_event.is_set():
                break
            cam = self.camera
            cam.stats.frames_decoded += 1
            t = cam.stream_clock.stamp(frame.time, time.time(), step)
            if t < self._next_keep - 1e-6:
                continue
            self._next_keep = max(self._next_keep + 1.0 / self.settings.fps, t)
            if cam.paced and not cam.wait_room(self.stop_event):
                break
            if cam.source.kind == "file" and self.settings.realtime:
                start_wall, start_t = (time.time(), t) if start_wall is None else (start_wall, start_t)
                if self.stop_event.wait(max(0.0, start_wall + (t - start_t) - time.time())):
                    break
            self._deliver(frame, t)
            self._delivered += 1

    def _deliver(self, frame: Any, t: float) -> None:
        cam = self.camera
        if self._size is None:
            self._size = output_size(frame.width, frame.height, self.settings.max_side)
        source = (int(frame.width), int(frame.height))
        if self._source_size is not None and source != self._source_size:
            cam.stats.size_changes += 1
            log.warning("camera %s: the stream's frame size changed from %dx%d to %dx%d (frames are still scaled to "
                        "%dx%d)", cam.name, *self._source_size, *source, *self._size)
        self._source_size = source
        width, height = self._size
        pixels = frame.to_ndarray(width=width, height=height, format="rgb24")
        wall = time.time()
        if cam.stats.first_wall is None:
            cam.stats.first_wall = wall
        self._seq += 1
        if self._new_session:
            cam.session_start, self._new_session = t, False
        kept = Frame(pixels, t, wall, self._seq)
        cam.push(kept)
        cam.stats.decode_cpu = time.thread_time() - self._cpu0
        if self.on_frame is not None:
            try:
                self.on_frame(cam.name, kept)
            except Exception:
                log.exception("camera %s: the on_frame callback failed", cam.name)
