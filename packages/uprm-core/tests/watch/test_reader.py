"""A camera's reader thread without a network: PyAV's ``open_container`` is replaced by a
script of failures and fake sessions, and the reader's waits are recorded instead of
slept, so the reconnect back-off (``reconnect_min`` doubling to ``reconnect_max``, a
fresh back-off after a session that delivered frames, ``max_reconnects``) is asserted
wait by wait. tests/watch/test_streams.py does the same with real ffmpeg streams."""

from __future__ import annotations

import threading
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from uprm.watch import WatchSettings
from uprm.watch import sources as sources_module
from uprm.watch.reader import Camera, CameraReader
from uprm.watch.schedule import WindowClock
from uprm.watch.sources import Source


class FakeFrame:
    width, height = 32, 24

    def __init__(self, t: float) -> None:
        self.time = t

    def to_ndarray(self, width: int, height: int, format: str) -> np.ndarray:
        return np.zeros((height, width, 3), np.uint8)


class FakeSession:
    """A container that decodes ``frames`` frames at 10 fps, then fails (``error``) or ends."""

    def __init__(self, frames: int, error: Exception | None = None) -> None:
        self.frames, self.error = frames, error
        self.streams = SimpleNamespace(video=[SimpleNamespace(average_rate=Fraction(10), guessed_rate=None)])

    def decode(self, stream):
        for i in range(self.frames):
            yield FakeFrame(i / 10)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        pass


def make_reader(monkeypatch, script, sleep, kind="stream", url="udp://127.0.0.1:5000", **settings):
    """A reader of one camera whose opens follow ``script`` (a FakeSession, or an
    exception raised by the open; the last entry repeats)."""
    opened = []

    def open_container(source, open_timeout, read_timeout, av_options):
        step = script[min(len(opened), len(script) - 1)]
        opened.append(step)
        if isinstance(step, Exception):
            raise step
        return step

    monkeypatch.setattr(sources_module, "open_container", open_container)
    s = WatchSettings(window=4.0, stride=2.0, **settings)
    camera = Camera(Source("door", url, kind), s, WindowClock(4.0, 2.0, 2), threading.Event())
    stop = threading.Event()
    return CameraReader(camera, stop, sleep=sleep), opened


class ResizingSession(FakeSession):
    """A session whose publisher switches to 64x48 at its 5th frame (a camera's encoder
    reconfigured mid-stream: same connection, new size)."""

    def decode(self, stream):
        for frame in super().decode(stream):
            if frame.time >= 0.4:
                frame.width, frame.height = 64, 48
            yield frame


def test_a_stream_that_changes_size_mid_session_is_logged_and_counted_and_keeps_its_size(monkeypatch, caplog):
    reader, _ = make_reader(monkeypatch, [ResizingSession(10)], lambda s: None, kind="file", url="/v.mp4", fps=10.0)
    with caplog.at_level("WARNING", logger="uprm.watch"):
        reader.run()
    cam = reader.camera
    assert cam.stats.size_changes == 1 and cam.stats.frames_kept == 10 and cam.stats.sessions == 1
    assert {cam.ring.latest().pixels.shape} == {f.pixels.shape for f in cam.ring.since(0.0)} == {(24, 32, 3)}
    assert [r.getMessage() for r in caplog.records] == [
        "camera door: the stream's frame size changed from 32x24 to 64x48 (frames are still scaled to 32x24)"]


def test_a_source_that_never_opens_backs_off_to_the_cap_then_gives_up(monkeypatch, caplog):
    waits: list[float] = []
    reader, opened = make_reader(monkeypatch, [ConnectionRefusedError("refused")], waits.append,
                                 reconnect_min=0.5, reconnect_max=3.0, max_reconnects=5)
    with caplog.at_level("WARNING", logger="uprm.watch"):
        reader.run()                                                        # in this thread: it ends by itself
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]                               # doubling, capped at reconnect_max
    cam = reader.camera
    assert len(opened) == 6 and cam.stats.open_failures == 6 and cam.state == "failed" and cam.stats.sessions == 0
    lines = [r.getMessage() for r in caplog.records]
    assert [x for x in lines if "reconnecting" in x] == [f"camera door: reconnecting in {w:.1f} s" for w in waits]
    assert lines[-1] == "camera door: giving up after 5 failed reconnects (cannot open: ConnectionRefusedError: refused)"


def test_the_back_off_restarts_after_a_session_that_delivered_frames(monkeypatch):
    waits: list[float] = []
    refused = ConnectionRefusedError("refused")
    script = [refused, refused, FakeSession(3, TimeoutError("read timeout")), refused, refused, FakeSession(2),
              refused]
    reader, opened = make_reader(monkeypatch, script, waits.append, reconnect_min=0.5, reconnect_max=30.0,
                                 max_reconnects=3)
    reader.run()
    assert waits == [0.5, 1.0,                                              # two failed opens
                     0.5, 0.5, 1.0,                                         # dropped (read timeout): fresh back-off
                     0.5, 0.5, 1.0, 2.0]                                    # ended; four failed opens: given up
    stats = reader.camera.stats
    assert (stats.sessions, stats.drops, stats.reconnects, stats.frames_kept) == (2, 2, 1, 5)
    assert stats.open_failures == len(opened) - 2 == 8 and reader.camera.state == "failed"


def test_without_max_reconnects_it_keeps_trying(monkeypatch):
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 12:
            reader.stop_event.set()

    reader, opened = make_reader(monkeypatch, [OSError("no route")], sleep, reconnect_min=0.25, reconnect_max=2.0)
    reader.run()
    assert waits == [0.25, 0.5, 1.0] + [2.0] * 9 and len(opened) == 12 and reader.camera.state == "stopped"


def test_stopping_cuts_the_wait_short(monkeypatch):
    reader, opened = make_reader(monkeypatch, [OSError("no route")], None, reconnect_min=3600.0,
                                 reconnect_max=3600.0)                      # the real wait: an hour
    thread = threading.Thread(target=reader.run)
    thread.start()
    try:
        assert _until(lambda: reader.camera.state == "reconnecting")
    finally:
        reader.stop_event.set()
        thread.join(30)
    assert not thread.is_alive() and reader.camera.state == "stopped" and len(opened) == 1


@pytest.mark.parametrize("script", [[FakeSession(4)], [FakeSession(4, OSError("corrupt"))], [OSError("missing")]])
def test_a_file_is_never_reopened(monkeypatch, script):
    reader, opened = make_reader(monkeypatch, script, lambda s: pytest.fail("a file waited"), kind="file",
                                 max_reconnects=3)
    reader.run()
    assert len(opened) == 1
    assert reader.camera.state == ("ended" if script[0].__class__ is FakeSession and script[0].error is None
                                   else "failed")


def _until(predicate, timeout: float = 30.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        done.wait(0.05)
    return predicate()


def test_an_rtsp_camera_falls_back_to_udp_when_tcp_is_refused_and_remembers_it(monkeypatch):
    """TCP refused (400) → UDP opens; when that session drops, the reconnect asks UDP first
    (no TCP round trip); a server that then refuses UDP makes it try TCP again."""
    import av.error

    asked: list[str | None] = []
    refused = av.error.HTTPBadRequestError(-808465656, "Server returned 400 Bad Request", "rtsp://h/cam")
    accepts = ["udp", "udp", "tcp"]  # what the server accepts on the 1st, 2nd and 3rd session

    def open_container(source, open_timeout, read_timeout, av_options):
        asked.append(av_options.get("rtsp_transport"))
        if not accepts:
            raise ConnectionRefusedError(111, "Connection refused")  # then the server is gone: given up
        if av_options.get("rtsp_transport") != accepts[0]:
            raise refused
        accepts.pop(0)
        return FakeSession(3, OSError("timeout"))

    monkeypatch.setattr(sources_module, "open_container", open_container)
    s = WatchSettings(window=4.0, stride=2.0, max_reconnects=0)
    camera = Camera(Source("door", "rtsp://h/cam", "stream", options={"probesize": "32"}), s,
                    WindowClock(4.0, 2.0, 2), threading.Event())
    seen: list[str | None] = []
    reader = CameraReader(camera, threading.Event(), sleep=lambda _: seen.append(camera.transport))
    reader.run()
    # sessions: 1 over UDP after TCP's refusal; 2 over the remembered UDP; 3: UDP refused, then TCP;
    # then the server is gone (no refusal: no fallback) and the camera is given up
    assert asked == ["tcp", "udp", "udp", "udp", "tcp", "tcp"]
    assert seen == ["udp", "udp", "tcp"] and camera.transport == "tcp" and camera.stats.sessions == 3
    assert camera.state == "failed"


def test_an_explicit_rtsp_transport_gets_no_fallback(monkeypatch):
    import av.error

    asked: list[str | None] = []

    def open_container(source, open_timeout, read_timeout, av_options):
        asked.append(av_options.get("rtsp_transport"))
        raise av.error.HTTPBadRequestError(-808465656, "Server returned 400 Bad Request", "rtsp://h/cam")

    monkeypatch.setattr(sources_module, "open_container", open_container)
    s = WatchSettings(window=4.0, stride=2.0, max_reconnects=1, av_options={"rtsp_transport": "tcp"})
    camera = Camera(Source("door", "rtsp://h/cam", "stream"), s, WindowClock(4.0, 2.0, 2), threading.Event())
    CameraReader(camera, threading.Event(), sleep=lambda _: None).run()
    assert asked == ["tcp", "tcp"] and camera.state == "failed" and camera.transport is None
    assert "400 Bad Request" in camera.stats.last_error
