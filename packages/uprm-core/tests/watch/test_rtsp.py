"""``uprm watch`` against a real RTSP server on loopback: Debian's ``rtsp-server-perl``
(one per module; it refuses TCP-interleaved SETUP with 400 Bad Request and serves over
UDP), a real ``ffmpeg`` publishing a synthetic threat clip to it. The transport is
negotiated (TCP refused, then UDP) and shown in the camera's status; the threat raises
an alert; the publisher is cut and restarted, and the camera reconnects over the
transport it remembered and frames flow again. An explicit ``rtsp_transport`` is used
as given, without fallback. The negotiation rules themselves are also tested without a
server."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time

import pytest

from uprm.watch import Watcher, WatchSettings
from uprm.watch.sources import Source, open_negotiated, parse_source, transport_refused, transports_to_try
from uprm.watch.table import render_status

WINDOW, STRIDE, ONSET = 4.0, 2.0, 3.0
CAUSE = "a person grabbing a bag"


# ---------------------------------------------------------------------------- the rules, no server
def test_which_transports_are_tried_in_which_order():
    cam = parse_source("rtsp://10.0.0.5:554/stream1", 1)
    assert cam.rtsp and "rtsp_transport" not in cam.options  # nothing forced any more
    assert transports_to_try(cam) == ["tcp", "udp"]
    assert transports_to_try(cam, preferred="udp") == ["udp", "tcp"]        # the one that worked, first
    assert transports_to_try(cam, {"rtsp_transport": "udp"}, preferred="tcp") == ["udp"]  # given: no fallback
    given = Source("c", "rtsp://h/s", "stream", options={"rtsp_transport": "http"})
    assert transports_to_try(given) == ["http"]
    assert transports_to_try(parse_source("rtsps://h/s", 1), preferred="udp") == ["tcp"]  # TLS: TCP only
    assert transports_to_try(parse_source("udp://127.0.0.1:5000", 1)) == [None]


def test_only_a_refusal_of_the_transport_falls_back():
    import av.error

    def error(cls, code):
        return cls(code, "Server returned an error", "rtsp://h/s")

    assert transport_refused(error(av.error.HTTPBadRequestError, -808465656))
    assert transport_refused(error(av.error.HTTPOtherClientError, -1482175736))
    assert transport_refused(error(av.error.HTTPServerError, -1482175992))
    for cls, code in [(av.error.HTTPNotFoundError, -1330794744), (av.error.HTTPUnauthorizedError, -825242872),
                      (av.error.HTTPForbiddenError, -858797304)]:
        assert not transport_refused(error(cls, code))
    assert not transport_refused(ConnectionRefusedError(111, "Connection refused"))
    assert not transport_refused(TimeoutError("timed out"))


def test_the_table_shows_the_transport():
    cam = {"camera": "door", "state": "live", "transport": "udp", "stream_time": 12.0, "fps": 10.0, "windows": 5,
           "skipped": 0, "reconnects": 1, "p_yes": 0.1, "events": 0, "event": None}
    text = render_status({"elapsed": 3.0, "cameras": [cam, {**cam, "camera": "file", "transport": None}],
                          "alerts": []})
    header, door, file = text.splitlines()[1:4]
    assert "transport" in header and door.split()[:3] == ["door", "live", "UDP"] and file.split()[2] == "-"


# ---------------------------------------------------------------------------- the real server
def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class RTSPServer:
    """Debian's rtsp-server-perl on loopback: publishers ANNOUNCE/RECORD to ``source_port``,
    clients read ``client_port``; RTP from publishers arrives on UDP ports from ``rtp_port``."""

    def __init__(self, executable: str, log_path) -> None:
        self.client_port, self.source_port = _free_tcp_port(), _free_tcp_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.rtp_port = s.getsockname()[1] & ~1
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [executable, "--clientport", str(self.client_port), "--serverport", str(self.source_port),
             "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
             "--rtp_start_port", str(self.rtp_port)], stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.process.poll() is None:
            if _accepting(self.client_port) and _accepting(self.source_port):
                return True
            time.sleep(0.1)
        return False

    def url(self, mount: str, client: bool = True) -> str:
        return f"rtsp://127.0.0.1:{self.client_port if client else self.source_port}/{mount}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def rtsp_server(tmp_path_factory, missing_system_tool):
    executable = shutil.which("rtsp-server-perl")
    if executable is None:
        missing_system_tool("rtsp-server-perl is not installed")
    server = RTSPServer(executable, tmp_path_factory.mktemp("rtsp") / "server.log")
    try:
        assert server.ready(20), f"rtsp-server-perl did not start: {server.log.name}"
        yield server
    finally:
        server.stop()


class Publisher:
    """A real ffmpeg publishing a video to the server in real time (``-re``), re-encoded with
    x264 (a keyframe a second, zero latency), its RTP over UDP as the issue's command line."""

    def __init__(self, ffmpeg: str, video, url: str, loop: bool = False) -> None:
        args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
        args += ["-stream_loop", "-1"] if loop else []
        args += ["-i", str(video), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "4",
                 "-f", "rtsp", "-rtsp_transport", "udp", url]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.started = time.time()

    def cut(self) -> None:
        """Stop publishing (SIGTERM: ffmpeg sends TEARDOWN, the server drops the mount but
        tells its clients nothing: they stop getting packets). A SIGKILLed publisher would
        leave its mount behind in rtsp-server-perl, which then refuses the restarted
        publisher's ANNOUNCE with 403 Forbidden."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def publish(ffmpeg):
    made: list[Publisher] = []

    def start(video, url, loop=False) -> Publisher:
        made.append(Publisher(ffmpeg, video, url, loop))
        return made[-1]

    yield start
    for p in made:
        p.kill()


def test_rtsp_negotiates_udp_alerts_and_reconnects_after_a_cut(run_in_thread, rtsp_server, publish, tmp_path, make_video,
                                                               watch_model, until, caplog):
    caplog.set_level(logging.INFO, logger="uprm.watch")
    threat = make_video(tmp_path / "threat.mp4", 24.0, (ONSET, 24.0))
    quiet = make_video(tmp_path / "quiet.mp4", 4.0, (99.0, 99.0))
    seen: list[dict] = []
    settings = WatchSettings(window=WINDOW, stride=STRIDE, cooldown=STRIDE, read_timeout=1.5, open_timeout=5,
                             reconnect_min=0.3, reconnect_max=1)
    watcher = Watcher([f"door={rtsp_server.url('door')}"], watch_model, settings, on_alert=seen.append)
    camera = watcher.cams[0].camera
    running = run_in_thread(watcher)
    try:
        # until the publisher has announced the mount, opening fails (404: no fallback) and is retried
        assert until(lambda: camera.stats.open_failures >= 1, 10)
        first = publish(threat, rtsp_server.url("door", client=False))
        assert until(lambda: camera.state == "live", 20), f"never connected: {camera.stats.last_error}"
        status = watcher.status()["cameras"][0]
        assert (status["camera"], status["transport"]) == ("door", "udp")
        assert until(lambda: any(r["type"] == "open" for r in seen), ONSET + WINDOW + STRIDE + 20), "no alert"
        opened = seen[0]
        assert opened["type"] == "open" and opened["camera"] == "door" and opened["cause"] == CAUSE
        # not before the threat was on the wire; the stream clock starts at the first frame received
        assert time.time() - first.started >= ONSET - 0.5 and opened["start"] <= ONSET < opened["end"]

        first.cut()
        assert until(lambda: camera.stats.drops >= 1, 15), "the cut was not noticed"
        frames, windows = camera.stats.frames_kept, camera.stats.windows
        publish(quiet, rtsp_server.url("door", client=False), loop=True)
        assert until(lambda: camera.stats.reconnects >= 1 and camera.stats.frames_kept > frames + 10, 30), \
            f"no frames after the restart: {camera.stats.last_error}"
        assert until(lambda: camera.stats.windows > windows, 15), "no window ran after the reconnect"
        assert watcher.status()["cameras"][0]["transport"] == "udp"
    finally:
        report = running.stop()
    cam = report.cameras["door"]
    assert cam["transport"] == "udp" and cam["sessions"] >= 2 and cam["state"] == "stopped"
    messages = [r.getMessage() for r in caplog.records if r.name == "uprm.watch"]
    refusals = [m for m in messages if "refused RTSP over TCP" in m]
    # TCP is asked (and refused with 400) until the first session opens; reconnects go straight to UDP
    assert refusals and all("400 Bad Request" in m and "trying UDP" in m for m in refusals)
    opened_at = next(i for i, m in enumerate(messages) if m.startswith("camera door: opened"))
    reconnected_at = next(i for i, m in enumerate(messages) if m.startswith("camera door: reconnected"))
    assert messages[opened_at].endswith("over UDP") and messages[reconnected_at].endswith("over UDP")
    assert max(i for i, m in enumerate(messages) if "refused RTSP" in m) < opened_at


def test_an_explicit_transport_is_used_without_fallback(rtsp_server, publish, tmp_path, make_video):
    clip = make_video(tmp_path / "clip.mp4", 4.0, (99.0, 99.0))
    publish(clip, rtsp_server.url("explicit", client=False), loop=True)
    cam = parse_source(rtsp_server.url("explicit"), 1)
    container = None
    for _ in range(50):  # until the publisher has announced the mount (404 before)
        try:
            container, transport = open_negotiated(cam, 5, 5)
            break
        except Exception:
            time.sleep(0.2)
    assert container is not None, "the published mount never opened"
    container.close()
    assert transport == "udp"
    import av.error

    with pytest.raises(av.error.HTTPBadRequestError):
        open_negotiated(cam, 5, 5, {"rtsp_transport": "tcp"})          # the server refuses it: no UDP after
    container, transport = open_negotiated(cam, 5, 5, {"rtsp_transport": "udp"})
    container.close()
    assert transport == "udp"
