"""Fixtures of the watch tests: synthetic threat videos (dark frames, a bright stretch
= the threat), a tiny checkpoint trained (for real, a few dozen steps) to answer the
DeepSVU questions about them, a real ``ffmpeg`` streaming them on loopback, and a
webhook receiver.

The checkpoint follows the detection tests' recipe (tests/detection/conftest.py:
bright windows → "yes", "between 0 and W seconds", "a person grabbing a bag"; dark
ones → "no"), with the experts that need nothing but pixels (``background`` and
``coarse``: live video has no keypoint or scene-graph sidecars) and training clips made
in memory with a little noise, so it also reads H.264-compressed stream frames right.

Stream tests need Debian's ffmpeg (scripts/system-packages.sh installs it). Without it
they fail with the install line.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

SIZE = 64
CAUSE = "a person grabbing a bag"
WINDOW = 4.0
ANSWERS = {
    "identify": ("Yes, there exists a threat.", "No, there is no threat."),
    "locate": f"The threat occurs between 0 and {WINDOW:g} seconds.",
    "attribute": f"The threat is attributed to {CAUSE}.",
}
DARK, BRIGHT = 20, 230


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Two shared cores: one torch thread (oversubscribed threads made a training step 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def threat_frames(seconds: float, threat: tuple[float, float], fps: float = 4):
    for i in range(round(seconds * fps)):
        yield np.full((SIZE, SIZE, 3), BRIGHT if threat[0] <= i / fps < threat[1] else DARK, np.uint8)


def write_threat_video(path: Path, seconds: float, threat: tuple[float, float], fps: float = 4) -> Path:
    """A ``SIZE``² H.264 mp4: dark frames, bright ones inside ``threat`` (seconds)."""
    from uprm.data import write_mp4

    return write_mp4(path, threat_frames(seconds, threat, fps), fps=fps, gop=int(fps))


def _clip(levels: tuple[int, int], gen: torch.Generator):
    import uprm

    frames = torch.stack([torch.full((3, SIZE, SIZE), lv, dtype=torch.int32) for lv in levels])
    frames = (frames + torch.randint(-8, 9, frames.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
    return uprm.VideoClip(frames, torch.tensor([1.0, 3.0]), video_id="train")


def train_watch_detector(out: Path, steps: int = 200) -> Path:
    """A tiny background+coarse model trained until it answers bright (threat) and dark
    (normal) two-frame windows right; saved to ``out``."""
    import uprm
    from uprm.testing import overfit

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    config = uprm.UPRMConfig.tiny(experts=["background", "coarse"], num_frames=2, max_new_tokens=12,
                                  expert_options={"background": {"adapter_hidden": 64}})
    model = uprm.build_model(config)
    items = [(model.extract(_clip(lv, gen)), "identify", ANSWERS["identify"][1])
             for lv in [(20, 20), (40, 30), (10, 50), (60, 60)]]
    for lv in [(230, 230), (20, 220), (240, 30)]:
        feats = model.extract(_clip(lv, gen))
        items += [(feats, "identify", ANSWERS["identify"][0]), (feats, "locate", ANSWERS["locate"]),
                  (feats, "attribute", ANSWERS["attribute"])]
    return overfit(model, items, lr=3e-3, max_steps=steps).save_pretrained(out)


@pytest.fixture(scope="session")
def watch_checkpoint(tmp_path_factory) -> Path:
    """The trained tiny checkpoint (see the module doc)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_watch_detector(tmp_path_factory.mktemp("watch") / "checkpoint")
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def watch_model(watch_checkpoint):
    """The checkpoint loaded once (tests that do not test loading share it)."""
    import uprm

    return uprm.UPRMModel.from_pretrained(watch_checkpoint).eval()


@pytest.fixture(scope="session")
def make_video():
    """:func:`write_threat_video` (tests run in importlib mode: helpers come as fixtures)."""
    return write_threat_video


# ---------------------------------------------------------------------------- ffmpeg
@pytest.fixture(scope="session")
def ffmpeg(missing_system_tool) -> str:
    """The ffmpeg executable (its absence fails the stream tests: ``missing_system_tool``)."""
    path = shutil.which("ffmpeg")
    if path is None:
        missing_system_tool("ffmpeg is not installed")
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Streamer:
    """A real ffmpeg streaming a video on loopback in real time (``-re``), re-encoded
    with x264 (a keyframe a second, zero-latency tuning) into MPEG-TS over UDP (pushed
    to a port the reader binds) or HTTP (``-listen 1``: served to one client)."""

    def __init__(self, ffmpeg: str) -> None:
        self.ffmpeg = ffmpeg
        self.process: subprocess.Popen | None = None
        self.started: float | None = None

    def start(self, video: Path, url: str, listen: bool = False) -> Streamer:
        args = [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(video),
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "4", "-f", "mpegts"]
        args += ["-listen", "1", url] if listen else [url]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.started = time.time()
        return self

    def cut(self) -> None:
        """Kill the stream mid-flight (SIGKILL: no trailer, no goodbye)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@pytest.fixture
def streamer(ffmpeg):
    made: list[Streamer] = []

    def make() -> Streamer:
        made.append(Streamer(ffmpeg))
        return made[-1]

    yield make
    for s in made:
        s.cut()


# ---------------------------------------------------------------------------- webhook
class Receiver:
    """A webhook receiver on loopback: records each POSTed JSON body; the first
    ``fail_first`` requests get ``fail_status``; ``delay`` seconds before answering."""

    def __init__(self, fail_first: int = 0, fail_status: int = 500, delay: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.fail_first, self.fail_status, self.delay = fail_first, fail_status, delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests += 1
                    fail = receiver.requests <= receiver.fail_first
                time.sleep(receiver.delay)
                if fail:
                    self.send_response(receiver.fail_status)
                else:
                    with receiver.lock:
                        receiver.bodies.append({"json": json.loads(body), "type": self.headers["Content-Type"]})
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        with contextlib.suppress(Exception):
            r.close()


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@pytest.fixture(scope="session")
def until():
    """``until(predicate, timeout)``: poll until true (returns whether it became true)."""
    return wait_for


@pytest.fixture(scope="session")
def port():
    return free_port


class Running:
    """A watcher on its own thread (the inference loop runs where ``run`` is called)."""

    def __init__(self, watcher) -> None:
        self.watcher = watcher
        self.report = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.report = self.watcher.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self):
        self.watcher.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        if self.error is not None:
            raise self.error
        return self.report


@pytest.fixture
def run_in_thread():
    """``run_in_thread(watcher)``: the watcher running on its own thread; ``.stop()`` stops
    it and returns its report (or raises its error)."""
    return Running


@pytest.fixture
def in_process():
    """Run the CLI in this process, then put back what it changes (signal handlers, logger)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    logger = logging.getLogger("uprm.watch")
    state = (list(logger.handlers), logger.level, logger.propagate)
    yield CliRunner()
    for s, h in handlers.items():
        signal.signal(s, h)
    logger.handlers[:], logger.level, logger.propagate = state
