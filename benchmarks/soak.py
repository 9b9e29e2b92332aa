"""Soak: `uprm watch` and `uprm serve` for hours with faults injected — memory flat,
nothing lost (issue 25).

One run, on this machine:

* **cameras**: 4 looping synthetic threat videos (dark frames, a bright stretch = the
  threat, once per loop) streamed in real time by ffmpeg on loopback — ``cam1``, ``cam2``
  MPEG-TS over UDP, ``cam3`` MPEG-TS over HTTP (``-listen 1``), ``cam4`` RTSP through
  Debian's ``rtsp-server-perl`` — watched by one ``uprm watch`` process (``--alerts``,
  ``--webhook`` to a receiver in this script, ``--clips``, ``--status-file``) with the
  watch tests' tiny trained detector (benchmarks/watch.py's recipe, trained here);
* **jobs**: ``uprm serve --workers 2 --media-root`` with a steady stream of jobs, uploads
  and media-root paths in turn, over short synthetic videos; each video's first job,
  before any fault, is its reference result;
* **faults** on a schedule (repeated every 20 min; ``--ci`` one of each in 2 minutes):
  a camera's publisher cut and restarted (cam4, RTSP), a stream that stalls without
  closing (cam3's ffmpeg SIGSTOPped, then SIGCONTed), a publisher that changes resolution
  mid-stream (cam1's ffmpeg restarted at another size on the same UDP port), the webhook
  receiver down (refusing connections) for minutes and then slow, a serve worker
  SIGKILLed mid-job, the clips folder made read-only (``chattr +i``: even root cannot
  write into it; checked by a probe write) for a while;
* **samples** every 30 s (``--ci`` 5 s): RSS, open descriptors and threads of the
  watcher, the server and each worker (``/proc``), the watcher's status file (ring
  buffers, webhook queue, clips, per-camera state and counters), the serve queue
  (``GET /v1/jobs``), alert and event counts.

At the end it checks (the table of benchmarks/soak.md): RSS and descriptors flat after the
warm-up (the slope of a line fitted over the last 80 % of the run, per process, below a
bound per hour), every event that opened closed, every alert record of the JSONL delivered
to the webhook once it came back (none lost; duplicates only as docs/watch.md's
at-least-once rule allows: a POST answered after the sender's timeout), every accepted job
done exactly once with its video's reference result, each fault in the watcher's or the
server's status and logs with its camera or job. It writes the report (Markdown, JSON,
plots of RSS and descriptors per process and alerts per hour) and exits 1 when a check
failed.

    python benchmarks/soak.py                    # 2 hours -> benchmarks/soak.md, soak.json, soak_*.png
    python benchmarks/soak.py --minutes 20 --report /tmp/soak20/soak.md
    python benchmarks/soak.py --ci --work /tmp/soak --report /tmp/soak/soak.md   # ~3 min (tests/test_soak_benchmark.py)
    python benchmarks/soak.py --render benchmarks/soak.json   # the report again from a run's figures (its "reading")
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("UPRM_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
CAMERAS = ("cam1", "cam2", "cam3", "cam4")
TRANSPORTS = {"cam1": "udp", "cam2": "udp", "cam3": "http", "cam4": "rtsp"}
FAULT_KINDS = ("publisher_cut", "stream_stall", "resolution_change", "webhook_down", "worker_kill",
               "clips_read_only")
#: the serve videos: name -> (seconds, threat span); "long" is the one a worker is killed on
SERVE_VIDEOS = {"short": (8.0, (2.0, 5.0)), "medium": (12.0, (99.0, 99.0)), "threat": (16.0, (6.0, 12.0)),
                "long": (40.0, (20.0, 28.0))}
#: seconds of a process started during the soak left out of its fit at least (model load, first jobs)
PROCESS_WARMUP = 60.0
WEBHOOK_TIMEOUT = 5.0  # WatchSettings.webhook_timeout's default: the sender's request timeout


# -- profiles and the fault schedule -------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the soak's start
    kind: str
    seconds: float = 0.0  # how long it lasts (0: a moment)
    slow_seconds: float = 0.0  # webhook_down: then slow for this long
    target: str = ""  # the camera (or "webhook", "serve")


@dataclass(frozen=True)
class Profile:
    name: str
    minutes: float
    sample_every: float
    job_every: float
    loop_seconds: float  # a camera's video loop; one threat per loop
    rss_bound_mb_per_h: float
    fds_bound_per_h: float
    webhook_slow_delay: float
    faults: tuple[Fault, ...] = ()
    warmup_share: float = 0.2  # the slope is fitted over the last 1 - warmup_share of the run
    recovery_bound_s: float = 120.0  # the longest a camera may give no new window (its faults last 40 s at most)


#: one cycle of faults, seconds from its start (repeated every CYCLE seconds)
CYCLE = 1200.0
FULL_CYCLE = (Fault(120, "publisher_cut", 30, target="cam4"), Fault(240, "stream_stall", 40, target="cam3"),
              Fault(360, "resolution_change", target="cam1"),
              Fault(480, "webhook_down", 180, slow_seconds=120, target="webhook"),
              Fault(840, "worker_kill", target="serve"), Fault(960, "clips_read_only", 120, target="clips"))
CI_FAULTS = (Fault(12, "webhook_down", 25, slow_seconds=15, target="webhook"),
             Fault(20, "publisher_cut", 6, target="cam4"), Fault(36, "stream_stall", 8, target="cam3"),
             Fault(50, "resolution_change", target="cam1"), Fault(58, "worker_kill", target="serve"),
             Fault(72, "clips_read_only", 28, target="clips"))


def full_profile(minutes: float) -> Profile:
    """``--minutes N``: the 20-min fault cycle repeated (a fault is kept when it ends 60 s
    before the end); shorter runs get the cycle compressed into their length."""
    total = minutes * 60.0
    faults: list[Fault] = []
    if total >= CYCLE:
        cycles = int(total // CYCLE) + 1
        for c in range(cycles):
            for f in FULL_CYCLE:
                shifted = Fault(f.at + c * CYCLE, f.kind, f.seconds, f.slow_seconds, f.target)
                if shifted.at + shifted.seconds + shifted.slow_seconds <= total - 60:
                    faults.append(shifted)
    else:
        scale = total / CYCLE
        faults = [Fault(f.at * scale, f.kind, max(f.seconds * scale, 8.0 if f.seconds else 0.0),
                        max(f.slow_seconds * scale, 8.0 if f.slow_seconds else 0.0), f.target) for f in FULL_CYCLE]
    return Profile("full", minutes, sample_every=30.0, job_every=20.0, loop_seconds=30.0, rss_bound_mb_per_h=10.0,
                   fds_bound_per_h=2.0, webhook_slow_delay=3.0, faults=tuple(sorted(faults, key=lambda f: f.at)))


def ci_profile() -> Profile:
    """``--ci``: 2 minutes, one fault of each kind. A line fitted over 100 s of processes
    still warming up says little about an hour: the bounds (1000 MB/h: 28 MB over the
    fit; 300 descriptors/h: 8) catch only gross growth — a descriptor or a megabyte per
    alert or job never given back."""
    return Profile("ci", 2.0, sample_every=5.0, job_every=7.0, loop_seconds=30.0, rss_bound_mb_per_h=1000.0,
                   fds_bound_per_h=300.0, webhook_slow_delay=1.5, faults=CI_FAULTS, recovery_bound_s=60.0)


# -- small helpers ------------------------------------------------------------------------------------


class Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet, self.began = quiet, time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.began:7.1f} s] {message}", file=sys.stderr, flush=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, float] | None:
    """RSS (MB), threads and open descriptors of a process from /proc; None when it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024.0, "threads": int(fields["Threads"]), "fds": fds}
    except (OSError, ValueError, KeyError):  # gone, or a zombie (a killed worker not yet reaped: no VmRSS)
        return None


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def stop_process(proc: subprocess.Popen | None, timeout: float = 30.0) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except OSError:
            pass
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


# -- the footage and the model ------------------------------------------------------------------------


def make_media(work: Path, profile: Profile) -> dict[str, Any]:
    """The camera loops (two sizes, for the resolution change), the serve videos, the checkpoint."""
    sys.path.insert(0, str(HERE))
    import torch
    from watch import train, video  # benchmarks/watch.py: the watch tests' recipe

    torch.set_num_threads(1)
    loop = profile.loop_seconds
    threat = [(loop / 3, loop / 3 + 6.0)]
    cams = {"a": video(work / "loop_a.mp4", loop, threat, 10, 128, 96),
            "b": video(work / "loop_b.mp4", loop, threat, 10, 176, 144)}
    media = work / "media"
    media.mkdir(exist_ok=True)
    serve = {name: video(media / f"{name}.mp4", seconds, [span], 4, 64, 64)
             for name, (seconds, span) in SERVE_VIDEOS.items()}
    checkpoint = train(work / "checkpoint")
    return {"cams": cams, "serve": serve, "media": media, "checkpoint": Path(checkpoint)}


# -- the publishers --------------------------------------------------------------------------------


class RTSPServer:
    """Debian's rtsp-server-perl on loopback (as packages/uprm-core/tests/watch/test_rtsp.py)."""

    def __init__(self, log: Path) -> None:
        exe = shutil.which("rtsp-server-perl")
        if exe is None:
            raise SystemExit("rtsp-server-perl is not installed (scripts/system-packages.sh installs it)")
        self.client_port, self.source_port = free_port(), free_port()
        self.rtp_port = free_port(socket.SOCK_DGRAM) & ~1
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [exe, "--clientport", str(self.client_port), "--serverport", str(self.source_port),
             "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
             "--rtp_start_port", str(self.rtp_port)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (self._accepting(self.client_port) and self._accepting(self.source_port)):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"rtsp-server-perl did not start: {log}")
            time.sleep(0.1)

    @staticmethod
    def _accepting(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def url(self, mount: str, client: bool = True) -> str:
        return f"rtsp://127.0.0.1:{self.client_port if client else self.source_port}/{mount}"

    def stop(self) -> None:
        stop_process(self.process, 5)
        self.log.close()


class Publisher:
    """A real ffmpeg looping a video in real time (``-re -stream_loop -1``), x264 at zero
    latency, to one camera's URL. Restarted by :class:`Publishers` when it exits (an HTTP
    publisher serves one client and exits when it leaves), unless held (a fault)."""

    def __init__(self, camera: str, kind: str, push_url: str, watch_url: str, clip: Path, log: Path) -> None:
        self.camera, self.kind, self.push_url, self.watch_url, self.clip = camera, kind, push_url, watch_url, clip
        self.log = log.open("ab")
        self.process: subprocess.Popen | None = None
        self.held = False
        self.stopped = False  # SIGSTOPped
        self.starts = 0

    def start(self) -> None:
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i",
                str(self.clip), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10"]
        if self.kind == "rtsp":
            args += ["-f", "rtsp", "-rtsp_transport", "udp", self.push_url]
        elif self.kind == "http":
            args += ["-f", "mpegts", "-listen", "1", self.push_url]
        else:
            args += ["-f", "mpegts", self.push_url]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.DEVNULL)
        self.starts += 1

    def terminate(self) -> int | None:
        """SIGTERM (an RTSP publisher sends TEARDOWN: a SIGKILLed one leaves its mount
        behind in rtsp-server-perl, which then refuses the restarted one with 403). Returns
        the exit status (-9: it did not exit within 10 s and was killed)."""
        if self.stopped:
            self.resume()
        return stop_process(self.process, 10)

    def pause(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.stopped = True

    def resume(self) -> None:
        if self.process is not None and self.stopped:
            os.kill(self.process.pid, signal.SIGCONT)
        self.stopped = False


class Publishers(threading.Thread):
    """Keeps every publisher that is not held running (checks every 0.5 s)."""

    def __init__(self, publishers: dict[str, Publisher]) -> None:
        super().__init__(daemon=True, name="soak-publishers")
        self.publishers = publishers
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.halt.wait(0.5):
            with self.lock:
                for p in self.publishers.values():
                    if not p.held and (p.process is None or p.process.poll() is not None):
                        p.start()

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        with self.lock:
            for p in self.publishers.values():
                p.held = True
                p.terminate()
                p.log.close()


# -- the webhook receiver ------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on a fixed loopback port that can be taken down (its socket
    closed: connections refused) and made slow (it sleeps before answering 200). Records
    every delivered record with the delay it applied."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.delivered: list[dict[str, Any]] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.up()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                delay = receiver.delay
                time.sleep(delay)
                with receiver.lock:
                    receiver.delivered.append({"id": body.get("id"), "type": body.get("type"),
                                               "camera": body.get("camera"), "at": time.time(), "delay": delay})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def up(self) -> None:
        if self.server is not None:
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="soak-webhook")
        self.thread.start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self) -> None:
        self.down()


# -- the processes under test -------------------------------------------------------------------------


class WatchProcess:
    def __init__(self, work: Path, checkpoint: Path, sources: list[str], webhook: str) -> None:
        self.alerts, self.clips, self.status = work / "alerts.jsonl", work / "clips", work / "watch-status.json"
        self.log, self.out, self.report = work / "watch.log", work / "watch.out", work / "watch-report.json"
        cmd = [sys.executable, "-m", "uprm", "watch", *sources, "--checkpoint", str(checkpoint), "--alerts",
               str(self.alerts), "--webhook", webhook, "--clips", str(self.clips), "--format", "json",
               "--status-file", str(self.status), "--report", str(self.report), "--window", "4", "--stride", "2",
               "--cooldown", "2", "--post-roll", "2", "--pre-roll", "2", "--fps", "5", "--threads", "1",
               "--read-timeout", "3", "--open-timeout", "10", "--reconnect-max", "4", "--batch-size", "8"]
        with self.out.open("wb") as out, self.log.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def state(self) -> dict[str, Any] | None:
        return read_json(self.status)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uprm watch exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")


class ServeProcess:
    def __init__(self, work: Path, checkpoint: Path, media: Path) -> None:
        import httpx

        self.data, self.log = work / "serve-data", work / "serve.log"
        cmd = [sys.executable, "-m", "uprm", "serve", "--checkpoint", str(checkpoint), "--data-dir", str(self.data),
               "--media-root", str(media), "--port", "0", "--log-level", "info", "--workers", "2", "--threads", "1",
               "--window", "4", "--stride", "2", "--batch-size", "4", "--max-queue", "50", "--no-evidence"]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while "uprm serve: " not in self.log.read_text():
            self.check()
            time.sleep(0.1)
        self.url = self.log.read_text().split("uprm serve: ")[1].split()[0]
        self.api = httpx.Client(base_url=self.url, timeout=60)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uprm serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def ready(self) -> bool:
        health = self.api.get("/healthz").json()
        return bool(health.get("ready")) and (health.get("workers") or []) == ["ready", "ready"]

    def workers(self) -> list[int]:
        return [pid for pid in children(self.proc.pid) if "resource_tracker" not in cmdline(pid)]

    def submit(self, video: Path, upload: bool) -> tuple[int, dict[str, Any]]:
        if upload:
            with video.open("rb") as fh:
                r = self.api.post("/v1/jobs", files={"video": (video.name, fh, "video/mp4")})
        else:
            r = self.api.post("/v1/jobs", json={"path": video.name})
        return r.status_code, (r.json() if r.headers.get("content-type", "").startswith("application/json") else {})

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/jobs/{job_id}").json())

    def result(self, job_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/jobs/{job_id}/result").json())

    def counts(self) -> dict[str, int]:
        return dict(self.api.get("/v1/jobs", params={"limit": 1}).json()["counts"])

    def worker_of(self, job_id: str) -> int:
        from uprm.serve.store import open_store

        store = open_store(None, self.data / "jobs.sqlite3")
        try:
            return int(store.get(job_id).worker.split(":")[1])
        finally:
            store.close()

    def stop(self) -> int | None:
        self.api.close()
        return stop_process(self.proc, 60)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """What a job decided, without its timings and names: each window's span and P(yes)
    (3 decimals) and the segments (span, score, cause)."""
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    windows = [{k: w.get(k) for k in ("start", "end", "p_yes", "answer") if k in w} for w in result.get("windows", [])]
    segments = [{k: s.get(k) for k in ("start", "end", "score", "cause") if k in s} for s in result.get("segments", [])]
    return rounded({"duration": result.get("duration"), "windows": windows, "segments": segments})


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured in one soak (what soak.json holds)."""

    profile: dict[str, Any]
    started: float = 0.0  # time.time() of the soak's start (after setup)
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)
    setup_seconds: float = 0.0
    soak_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, work: Path, profile: Profile, say: Progress) -> None:
        self.work, self.profile, self.say = work, profile, say
        self.run = Run(profile=asdict(profile))
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.errors: list[str] = []
        self.kill_pending = threading.Event()

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        began = time.monotonic()
        w = self.work
        self.say("footage and checkpoint")
        self.media = make_media(w, self.profile)
        self.rtsp = RTSPServer(w / "rtsp-server.log")
        self.receiver = Receiver()
        ports = {c: free_port(socket.SOCK_DGRAM if TRANSPORTS[c] == "udp" else socket.SOCK_STREAM)
                 for c in CAMERAS}
        urls = {}
        for c in CAMERAS:
            kind = TRANSPORTS[c]
            if kind == "udp":
                urls[c] = (f"udp://127.0.0.1:{ports[c]}?pkt_size=1316", f"udp://127.0.0.1:{ports[c]}")
            elif kind == "http":
                urls[c] = (f"http://127.0.0.1:{ports[c]}/{c}", f"http://127.0.0.1:{ports[c]}/{c}")
            else:
                urls[c] = (self.rtsp.url(c, client=False), self.rtsp.url(c))
        self.publishers = {c: Publisher(c, TRANSPORTS[c], urls[c][0], urls[c][1], self.media["cams"]["a"],
                                        w / f"publisher-{c}.log") for c in CAMERAS}
        self.supervisor = Publishers(self.publishers)
        for c in ("cam1", "cam2"):  # UDP: pushed once the watcher has bound its port
            self.publishers[c].held = True
        self.supervisor.start()
        self.say("uprm serve --workers 2 and uprm watch on 4 cameras")
        self.serve = ServeProcess(w, self.media["checkpoint"], self.media["media"])
        self.watch = WatchProcess(w, self.media["checkpoint"], [f"{c}={urls[c][1]}" for c in CAMERAS],
                                  self.receiver.url)
        deadline = time.monotonic() + 300
        while not (self.serve.ready() and (s := self.watch.state()) is not None and s.get("cameras")):
            self.serve.check()
            self.watch.check()
            if time.monotonic() > deadline:
                raise RuntimeError("uprm serve or uprm watch did not get ready in 300 s")
            time.sleep(0.5)
        for c in ("cam1", "cam2"):
            self.publishers[c].held = False
        self.references()
        self.all_live()
        self.run.setup_seconds = time.monotonic() - began

    def references(self) -> None:
        """Each serve video's job once, before any fault: the result an uninterrupted run gives."""
        self.say("reference results: each serve video once, before any fault")
        for name, path in self.media["serve"].items():
            code, job = self.serve.submit(path, upload=False)
            if code != 202:
                raise RuntimeError(f"the reference job of {name} was refused: {code} {job}")
            done = self.wait_job(job["id"], 300)
            if done["state"] != "done":
                raise RuntimeError(f"the reference job of {name} ended {done['state']}: {done.get('error')}")
            self.run.references[name] = {"job": job["id"], "verdict": verdict(self.serve.result(job["id"]))}

    def all_live(self) -> None:
        deadline = time.monotonic() + 60
        while not all(c.get("state") == "live" for c in (self.watch.state() or {}).get("cameras", [])):
            self.watch.check()
            if time.monotonic() > deadline:
                states = {c["camera"]: c["state"] for c in (self.watch.state() or {}).get("cameras", [])}
                raise RuntimeError(f"not every camera went live in 60 s: {states}\n"
                                   f"{self.watch.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def wait_job(self, job_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.serve.job(job_id))["state"] not in ("done", "failed", "cancelled"):
            self.serve.check()
            if time.monotonic() > deadline:
                return job
            time.sleep(0.2)
        return job

    # ---------------------------------------------------------------- the soak
    def soak(self) -> None:
        p = self.profile
        self.run.started = time.time()
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.guard(self.sampler), name="soak-sampler", daemon=True),
                   threading.Thread(target=self.guard(self.feeder), name="soak-jobs", daemon=True)]
        threads += [threading.Thread(target=self.guard(self.fault, f), name=f"soak-{f.kind}", daemon=True)
                    for f in p.faults]
        for t in threads:
            t.start()
        end = self.t0 + p.minutes * 60
        while time.monotonic() < end:
            self.serve.check()
            self.watch.check()
            time.sleep(1.0)
        self.halt.set()
        for t in threads:
            t.join(120)
        self.run.soak_seconds = time.monotonic() - self.t0
        self.run.notes += self.errors  # a fault that could not be injected fails clean_exit

    def guard(self, target: Callable[..., None], *args: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:  # surfaced by soak()
                import traceback

                self.errors.append(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
        return run

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def sampler(self) -> None:
        while True:
            try:
                self.sample()
            except Exception as exc:  # a lost sample is noted, the soak goes on
                self.run.notes.append(f"{self.now()} s: a sample failed: {type(exc).__name__}: {exc}")
            if self.halt.wait(self.profile.sample_every):
                self.sample()
                return

    def sample(self) -> None:
        procs: dict[str, dict[str, Any]] = {}
        for role, pid in [("watch", self.watch.proc.pid), ("serve", self.serve.proc.pid)] + \
                [(f"worker {pid}", pid) for pid in self.serve.workers()]:
            figures = proc_status(pid)
            if figures is not None:
                procs[role] = {"pid": pid, **figures}
        status = self.watch.state() or {}
        cams = {c["camera"]: {k: c.get(k) for k in ("state", "transport", "reconnects", "drops", "size_changes",
                                                      "ring_frames", "windows", "skipped", "events", "last_error")}
                for c in status.get("cameras", [])}
        try:
            counts = self.serve.counts()
        except Exception as exc:  # the sample goes on without it
            counts = {"error": f"{type(exc).__name__}: {exc}"}
        alerts = read_alerts(self.watch.alerts)
        with self.receiver.lock:
            delivered = len(self.receiver.delivered)
        sample = {"t": self.now(), "processes": procs, "cameras": cams, "webhook": status.get("webhook"),
                  "clips": status.get("clips"), "watch_threads": status.get("threads"),
                  "alerts_written": status.get("alerts_written"), "status_age": None if not status else
                  round(time.time() - status.get("written_at", 0), 1), "serve_counts": counts,
                  "jsonl_records": len(alerts), "events_opened": sum(r["type"] == "open" for r in alerts),
                  "events_closed": sum(r["type"] == "close" for r in alerts), "webhook_delivered": delivered}
        with self.lock:
            self.run.samples.append(sample)

    def feeder(self) -> None:
        names = [n for n in SERVE_VIDEOS if n != "long"]
        i = 0
        while not self.halt.wait(self.profile.job_every):
            name, upload = names[i % len(names)], i % 2 == 1
            self.submit(name, upload)
            i += 1

    def submit(self, name: str, upload: bool, why: str = "") -> str | None:
        at = self.now()
        code, body = self.serve.submit(self.media["serve"][name], upload)
        with self.lock:
            self.run.jobs.append({"id": body.get("id"), "video": name, "upload": upload, "at": at, "status": code,
                                  "why": why})
        return body.get("id") if code == 202 else None

    # ---------------------------------------------------------------- faults
    def mark(self, fault: Fault, **details: Any) -> dict[str, Any]:
        """A fault's entry in the timeline, with the log sizes (its traces come after) and
        the status before it."""
        entry = {"kind": fault.kind, "target": fault.target, "at": self.now(), "planned_at": fault.at,
                 "seconds": fault.seconds, "slow_seconds": fault.slow_seconds,
                 "watch_log_offset": self.watch.log.stat().st_size, "serve_log_offset": self.serve.log.stat().st_size,
                 "status_before": self.watch.state(), **details}
        with self.lock:
            self.run.faults.append(entry)
        self.say(f"fault: {fault.kind} {fault.target}")
        return entry

    def wait_until(self, at: float) -> bool:
        """Sleep until ``at`` seconds into the soak; False when the soak ended first."""
        return not self.halt.wait(max(0.0, at - (time.monotonic() - self.t0)))

    def fault(self, f: Fault) -> None:
        if not self.wait_until(f.at):
            return
        getattr(self, f"fault_{f.kind}")(f)

    def fault_publisher_cut(self, f: Fault) -> None:
        pub = self.publishers[f.target]
        entry = self.mark(f)
        with self.supervisor.lock:
            pub.held = True
            entry["publisher_exit"] = pub.terminate()  # -9: killed, its RTSP mount may be left behind
        starts = pub.starts
        self.halt.wait(f.seconds)
        pub.held = False
        entry["restarted_at"] = self.now()
        # how often the supervisor had to start it again in the next minute (1: it came back at once;
        # many: the server refused it, e.g. rtsp-server-perl's 403 for a stale mount, soak.md finding 7)
        self.halt.wait(60.0)  # cut short when the soak ends
        entry["publisher_starts_after"] = pub.starts - starts

    def fault_stream_stall(self, f: Fault) -> None:
        pub = self.publishers[f.target]
        entry = self.mark(f)
        with self.supervisor.lock:
            pub.held = True
            pub.pause()
        self.halt.wait(f.seconds)
        with self.supervisor.lock:
            pub.resume()
            pub.held = False
        entry["resumed_at"] = self.now()

    def fault_resolution_change(self, f: Fault) -> None:
        pub = self.publishers[f.target]
        clips = self.media["cams"]
        with self.supervisor.lock:
            pub.clip = clips["b"] if pub.clip == clips["a"] else clips["a"]
            entry = self.mark(f, size=pub.clip.stem)
            pub.terminate()  # the supervisor restarts it at once, at the other size, on the same port
            pub.start()
        entry["restarted_at"] = self.now()

    def fault_webhook_down(self, f: Fault) -> None:
        entry = self.mark(f)
        self.receiver.down()
        self.halt.wait(f.seconds)
        self.receiver.delay = self.profile.webhook_slow_delay
        self.receiver.up()
        entry["up_at"] = self.now()
        self.halt.wait(f.slow_seconds)
        self.receiver.delay = 0.0
        entry["fast_at"] = self.now()

    def fault_worker_kill(self, f: Fault) -> None:
        job_id = self.submit("long", upload=False, why="worker_kill")
        if job_id is None:
            self.mark(f, error="the long job was refused")
            return
        deadline = time.monotonic() + 300
        while (job := self.serve.job(job_id))["windows"]["done"] < 1:
            if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
                self.mark(f, job=job_id, error=f"the job never ran a window ({job['state']})")
                return
            time.sleep(0.05)
        victim = self.serve.worker_of(job_id)
        entry = self.mark(f, job=job_id, pid=victim)
        os.kill(victim, signal.SIGKILL)
        entry["killed_at"] = self.now()

    def fault_clips_read_only(self, f: Fault) -> None:
        clips = self.watch.clips
        clips.mkdir(exist_ok=True)
        subprocess.run(["chattr", "+i", str(clips)], check=True)
        entry = self.mark(f)
        probe = clips / ".soak-probe"
        try:
            probe.write_text("x")
            probe.unlink()
            entry["probe"] = "written: the folder was NOT read-only"
        except OSError as exc:
            entry["probe"] = f"refused: {exc.strerror}"
        self.halt.wait(f.seconds)
        subprocess.run(["chattr", "-i", str(clips)], check=True)
        entry["writable_at"] = self.now()

    # ---------------------------------------------------------------- the end
    def finish(self) -> dict[str, Any]:
        """Let the jobs finish, the webhook catch up, then stop the watcher (closing its
        events) and the server; what they left."""
        self.say("draining: jobs, then the webhook queue, then SIGTERM to the watcher")
        self.receiver.up()
        self.receiver.delay = 0.0
        for job in self.run.jobs:
            if job["status"] == 202:
                job["final"] = self.wait_job(job["id"], 600)
                if job["final"]["state"] == "done":
                    job["verdict"] = verdict(self.serve.result(job["id"]))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            w = (self.watch.state() or {}).get("webhook") or {}
            if w.get("pending", 1) == 0:
                break
            time.sleep(1)
        self.sample()
        self.watch.proc.send_signal(signal.SIGTERM)
        try:
            watch_code = self.watch.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.watch.proc.kill()
            watch_code = self.watch.proc.wait()
        time.sleep(1.0)  # the last POSTs' answers
        events = self.job_events()
        serve_code = self.serve.stop()
        return {"watch_exit": watch_code, "serve_exit": serve_code, "job_events": events,
                "watch_report": read_json(self.watch.report)}

    def job_events(self) -> dict[str, list[str]]:
        from uprm.serve.store import open_store

        store = open_store(None, self.serve.data / "jobs.sqlite3")
        try:
            out: dict[str, list[str]] = {}
            for e in store.events():
                out.setdefault(e["job"], []).append(e["event"])
            return out
        finally:
            store.close()

    def cleanup(self) -> None:
        clips = self.work / "clips"
        if clips.exists():
            subprocess.run(["chattr", "-i", str(clips)], check=False)
        for name in ("watch", "serve"):
            proc = getattr(getattr(self, name, None), "proc", None)
            stop_process(proc, 30)
        if hasattr(self, "supervisor"):
            self.supervisor.stop()
        if hasattr(self, "rtsp"):
            self.rtsp.stop()
        if hasattr(self, "receiver"):
            self.receiver.close()


# -- the checks ---------------------------------------------------------------------------------------


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """The slope (per hour) of the least-squares line through ``(seconds, value)`` points."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / var * 3600.0


def series(samples: list[dict[str, Any]], metric: str) -> dict[str, list[tuple[float, float]]]:
    """Per process (workers by pid), ``(t, metric)`` over the samples."""
    out: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        for role, p in s["processes"].items():
            out.setdefault(role, []).append((s["t"], p[metric]))
    return out


def flat_check(samples: list[dict[str, Any]], metric: str, bound: float, duration: float,
               warmup_share: float) -> dict[str, Any]:
    """The slope over the last ``1 - warmup_share`` of the run (and of each process's own
    life: a restarted worker's start is its warm-up) of every process whose samples there
    span at least half of that stretch (4 or more); passes when each is below ``bound``
    per hour. A process that lived too short a time there is listed, not fitted."""
    start = duration * warmup_share
    slopes, skipped = {}, []
    for role, points in series(samples, metric).items():
        born = points[0][0]  # a process started during the soak (a restarted worker) loads its model first
        warm = born + max((duration - born) * warmup_share, PROCESS_WARMUP) if born > 0 else 0.0
        kept = [(t, v) for t, v in points if t >= max(start, warm)]
        long_enough = len(kept) >= 4 and kept[-1][0] - kept[0][0] >= (duration - start) / 2
        slope = slope_per_hour(kept) if long_enough else None
        if slope is None:
            skipped.append(role)
        else:
            slopes[role] = round(slope, 2)
    ok = bool(slopes) and all(v < bound for v in slopes.values())
    return {"passed": ok, "bound_per_h": bound, "slopes_per_h": slopes, "too_short": skipped}


def cameras_check(samples: list[dict[str, Any]], bound: float) -> dict[str, Any]:
    """Does every camera recover? Per camera, the longest stretch of samples over which its
    count of windows did not grow (from its first window; a stretch still open at the
    last sample counts to that sample); passes when none is longer than ``bound`` seconds.
    A fault may stop a camera for its length, but the camera must come back after it."""
    longest: dict[str, float] = {}
    gaps: list[dict[str, Any]] = []
    names = sorted({c for s in samples for c in s.get("cameras", {})})
    for cam in names:
        points = [(s["t"], s["cameras"][cam].get("windows", 0)) for s in samples if cam in s.get("cameras", {})]
        grew, seen = [], 0  # the sample times at which the camera's count of windows had grown
        for t, n in points:
            if n > seen:
                grew.append(t)
                seen = n
        end = points[-1][0]
        stretches = list(zip(grew, [*grew[1:], None]))  # (from, to); the last one is still open
        lengths = [((b if b is not None else end) - a, a, b) for a, b in stretches]
        longest[cam] = round(max((n for n, _, _ in lengths), default=0.0), 1)
        gaps += [{"camera": cam, "from": round(a, 1), "to": None if b is None else round(b, 1)}
                 for n, a, b in lengths if n > bound]
    return {"passed": bool(names) and not gaps, "bound_s": bound, "longest_gap_s": longest, "gaps": gaps}


def events_check(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    opened = {r["id"] for r in alerts if r["type"] == "open"}
    closed = {r["id"] for r in alerts if r["type"] == "close"}
    twice = [k for k, n in Counter((r["id"], r["type"]) for r in alerts).items() if n > 1]
    return {"passed": bool(opened) and opened == closed and not twice, "opened": len(opened), "closed": len(closed),
            "never_closed": sorted(opened - closed), "closed_unopened": sorted(closed - opened),
            "written_twice": [list(k) for k in twice]}


def webhook_check(alerts: list[dict[str, Any]], delivered: list[dict[str, Any]],
                  timeout: float = WEBHOOK_TIMEOUT) -> dict[str, Any]:
    """Every record of the JSONL delivered; a record delivered more than once only when a
    POST of it was answered after the sender's ``timeout`` (the sender then tries again:
    at-least-once)."""
    written = {(r["id"], r["type"]) for r in alerts}
    counts = Counter((d["id"], d["type"]) for d in delivered)
    late = Counter((d["id"], d["type"]) for d in delivered if d["delay"] >= timeout)
    lost = sorted(written - set(counts))
    extra = sorted(set(counts) - written)
    duplicated = sorted(k for k, n in counts.items() if n > 1 and n - 1 > late[k])
    return {"passed": bool(written) and not lost and not extra and not duplicated, "written": len(written),
            "delivered": sum(counts.values()), "lost": [list(k) for k in lost],
            "not_in_jsonl": [list(k) for k in extra], "duplicated": [list(k) for k in duplicated],
            "allowed_duplicates": sum(late.values())}


def jobs_check(jobs: list[dict[str, Any]], references: dict[str, Any],
               events: dict[str, list[str]]) -> dict[str, Any]:
    """Every accepted job done, its ``done`` event once, its verdict its video's reference."""
    accepted = [j for j in jobs if j["status"] == 202]
    problems = []
    for j in accepted:
        final = j.get("final") or {}
        done = events.get(j["id"], []).count("done")
        if final.get("state") != "done":
            problems.append(f"{j['id']} ({j['video']}): {final.get('state')} {final.get('error')}")
        elif done != 1:
            problems.append(f"{j['id']} ({j['video']}): done {done} times")
        elif j.get("verdict") != references[j["video"]]["verdict"]:
            problems.append(f"{j['id']} ({j['video']}, {'upload' if j['upload'] else 'path'}): a result other "
                            "than the reference")
    refused = [j for j in jobs if j["status"] != 202]
    attempts = Counter(int((j.get("final") or {}).get("attempts", 0)) for j in accepted)
    return {"passed": bool(accepted) and not problems, "accepted": len(accepted), "refused": len(refused),
            "uploads": sum(j["upload"] for j in accepted), "attempts": dict(sorted(attempts.items())),
            "problems": problems}


def _after(path: Path, offset: int) -> str:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def _status_after(samples: list[dict[str, Any]], at: float) -> list[dict[str, Any]]:
    return [s for s in samples if s["t"] > at]


def fault_checks(run: Run, watch_log: Path, serve_log: Path, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each injected fault in the status and the logs, with its camera or job."""
    out = []
    for f in run.faults:
        kind, target = f["kind"], f["target"]
        wlog, slog = _after(watch_log, f["watch_log_offset"]), _after(serve_log, f["serve_log_offset"])
        before = {c["camera"]: c for c in (f.get("status_before") or {}).get("cameras", [])}
        later = _status_after(run.samples, f["at"])
        evidence: dict[str, Any] = {}
        if kind in ("publisher_cut", "stream_stall"):
            logged = [line for line in wlog.splitlines() if f"camera {target}: stream dropped" in line
                      or f"camera {target}: reconnected" in line]
            base = before.get(target, {}).get("reconnects", 0)
            seen = [s["t"] for s in later if (s["cameras"].get(target) or {}).get("reconnects", 0) > base]
            evidence = {"log": logged[:2], "status_reconnects_from": base,
                        "status_shows_it_at": seen[0] if seen else None}
            ok = any("stream dropped" in x for x in logged) and any("reconnected" in x for x in logged) and bool(seen)
        elif kind == "resolution_change":
            logged = [line for line in wlog.splitlines() if f"camera {target}: the stream's frame size changed" in line]
            base = before.get(target, {}).get("size_changes", 0)
            seen = [s["t"] for s in later if (s["cameras"].get(target) or {}).get("size_changes", 0) > base]
            evidence = {"log": logged[:1], "status_shows_it_at": seen[0] if seen else None}
            ok = bool(logged) and bool(seen)
        elif kind == "webhook_down":
            logged = [line for line in wlog.splitlines() if "webhook" in line and "not delivered" in line]
            base = ((f.get("status_before") or {}).get("webhook") or {}).get("retries", 0)
            seen = [s["t"] for s in later if (s.get("webhook") or {}).get("retries", 0) > base]
            cams = sorted({c for line in logged for c in CAMERAS if f"alert {c}-" in line})
            evidence = {"log": logged[:1], "cameras_named": cams, "status_shows_it_at": seen[0] if seen else None}
            ok = bool(logged) and bool(cams) and bool(seen)
        elif kind == "worker_kill":
            job_id = f.get("job")
            job = jobs.get(job_id or "", {})
            final = job.get("final") or {}
            logged = [line for line in slog.splitlines() if job_id and job_id in line and "stopped" in line]
            died = [line for line in slog.splitlines() if "exited with status" in line]
            evidence = {"job": job_id, "attempts": final.get("attempts"), "state": final.get("state"),
                        "log": (logged + died)[:2], "error": f.get("error")}
            ok = bool(job_id) and final.get("attempts") == 2 and final.get("state") == "done" and bool(logged)
        elif kind == "clips_read_only":
            logged = [line for line in wlog.splitlines() if "clip " in line and "failed" in line]
            base = ((f.get("status_before") or {}).get("clips") or {}).get("failed", 0)
            seen = [s["t"] for s in later if (s.get("clips") or {}).get("failed", 0) > base]
            cams = sorted({c for line in logged for c in CAMERAS if f"/{c}-" in line})
            evidence = {"probe": f.get("probe"), "log": logged[:1], "cameras_named": cams,
                        "status_shows_it_at": seen[0] if seen else None}
            ok = str(f.get("probe", "")).startswith("refused") and bool(logged) and bool(cams) and bool(seen)
        else:
            ok = False
        out.append({"kind": kind, "target": target, "at": f["at"], "passed": ok, **evidence})
    kinds = {f["kind"] for f in run.faults}
    missing = [k for k in FAULT_KINDS if k not in kinds]
    return {"passed": not missing and all(x["passed"] for x in out), "faults": out, "kinds_missing": missing}


def clean_exit(ending: dict[str, Any], serve_log: Path, driver_errors: list[str]) -> dict[str, Any]:
    """Both stopped by SIGTERM: the watcher exits 0; uvicorn re-raises the SIGTERM after
    its graceful shutdown (status -15, what systemd counts as a clean stop), so the
    server's is clean when its log ends the shutdown ("Finished server process"). And
    the soak's own threads (faults, jobs) raised nothing."""
    graceful = "Finished server process" in serve_log.read_text(errors="replace")
    serve_ok = ending["serve_exit"] == 0 or (ending["serve_exit"] == -signal.SIGTERM and graceful)
    return {"passed": ending["watch_exit"] == 0 and serve_ok and not driver_errors,
            "watch_exit": ending["watch_exit"], "serve_exit": ending["serve_exit"],
            "serve_shutdown_logged": graceful, "driver_errors": driver_errors}


def check(run: Run, ending: dict[str, Any], work: Path) -> dict[str, Any]:
    p = run.profile
    alerts = read_alerts(work / "alerts.jsonl")
    jobs = {j["id"]: j for j in run.jobs if j.get("id")}
    checks = {
        "rss_flat": flat_check(run.samples, "rss_mb", p["rss_bound_mb_per_h"], run.soak_seconds, p["warmup_share"]),
        "fds_flat": flat_check(run.samples, "fds", p["fds_bound_per_h"], run.soak_seconds, p["warmup_share"]),
        "cameras_recover": cameras_check(run.samples, p["recovery_bound_s"]),
        "events_closed": events_check(alerts),
        "webhook_delivered": webhook_check(alerts, ending["delivered"]),
        "jobs_exactly_once": jobs_check(run.jobs, run.references, ending["job_events"]),
        "faults_shown": fault_checks(run, work / "watch.log", work / "serve.log", jobs),
        "clean_exit": clean_exit(ending, work / "serve.log", ending.get("driver_errors", [])),
    }
    return checks


# -- the report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version()}


def plot(result: dict[str, Any], report: Path) -> list[str]:
    """RSS and descriptors per process over time, and alerts (open records) per hour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    samples = result["samples"]
    for metric, label, suffix in (("rss_mb", "RSS (MB)", "rss"), ("fds", "open descriptors", "fds")):
        fig, ax = plt.subplots(figsize=(8, 4))
        for role, points in series(samples, metric).items():
            ax.plot([t / 60 for t, _ in points], [v for _, v in points], label=role, marker=".", markersize=3)
        for f in result["faults"]:
            ax.axvline(f["at"] / 60, color="grey", alpha=0.3, linewidth=0.8)
        ax.set_xlabel("minutes (grey lines: faults)")
        ax.set_ylabel(label)
        ax.set_title(f"soak: {label} per process")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = report.with_name(f"{report.stem}_{suffix}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path.name)
    bins = alerts_per_hour(result)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([b["from_min"] for b in bins], [b["per_hour"] for b in bins], width=bins[0]["minutes"] * 0.9 if bins else 1,
           align="edge")
    ax.set_xlabel("minutes")
    ax.set_ylabel("alerts (events opened) per hour")
    ax.set_title("soak: alerts per hour")
    fig.tight_layout()
    path = report.with_name(f"{report.stem}_alerts.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    made.append(path.name)
    return made


def alerts_per_hour(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Events opened per bin of the run (an hour, or a twelfth of a shorter run), as a rate per hour."""
    from datetime import datetime

    seconds = result["soak_seconds"]
    width = 3600.0 if seconds >= 3 * 3600 else max(60.0, seconds / 12)
    opens = [datetime.fromisoformat(r["written_at"]).timestamp() - result["started"]
             for r in result["alerts"] if r["type"] == "open"]
    out = []
    t = 0.0
    while t < seconds:
        n = sum(t <= x < t + width for x in opens)
        span = min(width, seconds - t)
        out.append({"from_min": round(t / 60, 2), "minutes": round(width / 60, 2), "opened": n,
                    "per_hour": round(n * 3600 / span, 1)})
        t += width
    return out


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def markdown(result: dict[str, Any]) -> str:
    c, p, m = result["checks"], result["profile"], result["machine"]
    passed = all(x["passed"] for x in c.values())
    flags = " --ci" if p["name"] == "ci" else f" --minutes {p['minutes']:g}"
    lines = [
        "# Soak: `uprm watch` and `uprm serve` with faults injected (`soak.py`)",
        "",
        f"Measured {result['when']} by `python benchmarks/soak.py{flags}` in one run: {result['soak_seconds'] / 60:.1f} "
        f"min of soak after {result['setup_seconds']:.0f} s of setup. Machine: {m['cpus']} CPU cores "
        f"({m['processor']}), shared with other work (load average at the end {m['load_average_at_end'][0]}); "
        f"Python {m['python']}.",
        "",
        "- **Cameras**: 4 looping synthetic threat videos (a 6-s threat every "
        f"{p['loop_seconds']:g} s) streamed by ffmpeg in real time: cam1, cam2 MPEG-TS over UDP (128×96, 10 fps), cam3 "
        "MPEG-TS over HTTP, cam4 RTSP (rtsp-server-perl); one `uprm watch` process, windows of 4 s every 2 s, "
        "cool-down 2 s, `--alerts --webhook --clips --status-file --format json`, the watch tests' tiny trained "
        "detector (1 torch thread).",
        f"- **Jobs**: `uprm serve --workers 2 --threads 1 --media-root`, a job every {p['job_every']:g} s (uploads and "
        "media-root paths in turn) over 3 short videos (8-16 s, 64×64, 4 fps); each video's first job, before any "
        "fault, is its reference.",
        f"- **Samples** every {p['sample_every']:g} s: RSS, descriptors, threads per process (/proc); the watcher's "
        "status file (ring buffers, webhook queue, clips, cameras); the serve queue; alert and event counts.",
        "",
        f"## Checks: {'all passed' if passed else 'FAILED'}",
        "",
        "| check | result | figures |",
        "| --- | --- | --- |",
    ]
    r, f = c["rss_flat"], c["fds_flat"]
    lines.append(f"| RSS flat after warm-up (slope over the last {100 - 100 * p['warmup_share']:.0f} %) | "
                 f"{'pass' if r['passed'] else 'FAIL'} | bound {r['bound_per_h']:g} MB/h; "
                 + ", ".join(f"{k} {v:+.2f} MB/h" for k, v in r["slopes_per_h"].items()) + " |")
    lines.append(f"| descriptors flat after warm-up | {'pass' if f['passed'] else 'FAIL'} | bound "
                 f"{f['bound_per_h']:g}/h; " + ", ".join(f"{k} {v:+.2f}/h" for k, v in f["slopes_per_h"].items()) + " |")
    if "cameras_recover" in c:  # runs before 2026-12-08 did not have this check
        g = c["cameras_recover"]
        gaps = "; ".join(f"{x['camera']} from {x['from'] / 60:.1f} min to "
                         + (f"{x['to'] / 60:.1f} min" if x["to"] is not None else "the end") for x in g["gaps"])
        lines.append(f"| every camera gives new windows again after its faults | {'pass' if g['passed'] else 'FAIL'} | "
                     f"bound {g['bound_s']:g} s without a new window; longest: "
                     + ", ".join(f"{k} {v:g} s" for k, v in g["longest_gap_s"].items())
                     + (f"; without video: {gaps}" if gaps else "") + " |")
    e = c["events_closed"]
    lines.append(f"| every event that opened closed | {'pass' if e['passed'] else 'FAIL'} | {e['opened']} opened, "
                 f"{e['closed']} closed, {len(e['never_closed'])} never closed, {len(e['written_twice'])} written "
                 "twice |")
    w = c["webhook_delivered"]
    lines.append(f"| every JSONL record delivered to the webhook | {'pass' if w['passed'] else 'FAIL'} | "
                 f"{w['written']} records, {w['delivered']} POSTs received, {len(w['lost'])} lost, "
                 f"{len(w['duplicated'])} duplicated beyond the rule ({w['allowed_duplicates']} allowed: answered "
                 "after the timeout) |")
    j = c["jobs_exactly_once"]
    lines.append(f"| every accepted job done once, with the reference result | {'pass' if j['passed'] else 'FAIL'} | "
                 f"{j['accepted']} accepted ({j['uploads']} uploads), {j['refused']} refused, attempts "
                 f"{j['attempts']}, {len(j['problems'])} problems |")
    fs = c["faults_shown"]
    shown = sum(x["passed"] for x in fs["faults"])
    lines.append(f"| each fault in the status and the logs, with its camera or job | "
                 f"{'pass' if fs['passed'] else 'FAIL'} | {shown} of {len(fs['faults'])} faults |")
    x = c["clean_exit"]
    lines.append(f"| both processes exit cleanly (SIGTERM) | {'pass' if x['passed'] else 'FAIL'} | watch "
                 f"{x['watch_exit']}, serve {x['serve_exit']}, {len(x.get('driver_errors', []))} driver errors |")
    lines += ["", "## Fault timeline", "", "| at | fault | target | lasted | shown | evidence (status, log) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for x, timeline in zip(fs["faults"], result["faults"]):
        ev = {k: v for k, v in x.items() if k not in ("kind", "target", "at", "passed")}
        text = "; ".join(f"{k}: {_short(v)}" for k, v in ev.items() if v not in (None, [], ""))
        lasted = f"{timeline['seconds']:g} s" if timeline["seconds"] else "a moment"
        if timeline.get("slow_seconds"):
            lasted += f" down, then {timeline['slow_seconds']:g} s slow ({p['webhook_slow_delay']:g} s per POST)"
        lines.append(f"| {x['at'] / 60:.1f} min | {x['kind']} | {x['target']} | {lasted} | "
                     f"{'yes' if x['passed'] else 'NO'} | {text} |")
    lines += ["", "## Over time", "", "| min | " + " | ".join(_roles(result)) + " | ring frames (max) | webhook "
              "pending | alerts | serve queued |", "| --- " * (len(_roles(result)) + 5) + "|"]
    for s in _thin(result["samples"], 24):
        cells = []
        for role in _roles(result):
            pr = s["processes"].get(role) if not role.startswith("worker") else _worker(s, role)
            cells.append("-" if pr is None else f"{pr['rss_mb']:.0f} MB, {pr['fds']} fds, {pr['threads']} thr")
        rings = [c.get("ring_frames") or 0 for c in s["cameras"].values()]
        lines.append(f"| {s['t'] / 60:.1f} | " + " | ".join(cells) + f" | {max(rings) if rings else '-'} | "
                     f"{_fmt((s.get('webhook') or {}).get('pending'))} | {s['jsonl_records']} | "
                     f"{_fmt((s.get('serve_counts') or {}).get('queued'))} |")
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in result.get("plots", [])), "",
              *(["## Findings and fixes", "", *result["findings"], ""] if result.get("findings") else []),
              "## Reading", "", *result.get("reading", ["(to be written after the run)"]), ""]
    return "\n".join(lines)


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    text = text.replace("|", "/")
    return text if len(text) <= 160 else text[:157] + "..."


def _roles(result: dict[str, Any]) -> list[str]:
    return ["watch", "serve", "worker A", "worker B"]


def _worker(sample: dict[str, Any], role: str) -> dict[str, Any] | None:
    workers = sorted((k for k in sample["processes"] if k.startswith("worker ")), key=lambda k: int(k.split()[1]))
    i = 0 if role == "worker A" else 1
    return sample["processes"][workers[i]] if len(workers) > i else None


def _thin(samples: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    if len(samples) <= n:
        return samples
    step = (len(samples) - 1) / (n - 1)
    return [samples[round(i * step)] for i in range(n)]


# -- main ---------------------------------------------------------------------------------------------


def slim(result: dict[str, Any]) -> dict[str, Any]:
    """What soak.json keeps of the records (the checks already used them whole): each
    alert's id, type and time; the watcher's report without its list of events, clips and
    settings (counted)."""
    result["alerts"] = [{k: r.get(k) for k in ("id", "type", "written_at")} for r in result["alerts"]]
    report = result.get("watch_report")
    if report:
        report["events"] = len(report.get("events") or [])
        report["clips"] = len(report.get("clips") or [])
        report.pop("settings", None)
    return result


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=120.0, help="how long the soak runs [default: 120]")
    p.add_argument("--ci", action="store_true", help="2 minutes, one fault of each kind, samples every 5 s, loose "
                                                     "slope bounds (tests/test_soak_benchmark.py)")
    p.add_argument("--work", type=Path, help="working folder (kept) [default: a temporary folder, removed]")
    p.add_argument("--report", type=Path, default=HERE / "soak.md",
                   help="the Markdown report; the JSON (.json) and plots (_rss.png, _fds.png, _alerts.png) beside "
                        "it [default: benchmarks/soak.md]")
    p.add_argument("--no-plots", action="store_true", help="no matplotlib plots")
    p.add_argument("--render", type=Path, metavar="JSON", help="run nothing: write the Markdown report beside JSON "
                                                               "(a run's soak.json, e.g. after its reading was added)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        atomic_write(args.render.with_suffix(".md"), markdown(json.loads(args.render.read_text())))
        return 0
    profile = ci_profile() if args.ci else full_profile(args.minutes)
    say = Progress(args.quiet)
    for tool in ("ffmpeg", "rtsp-server-perl", "chattr"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/system-packages.sh installs ffmpeg and "
                             "rtsp-server-perl; chattr is e2fsprogs)")
    with tempfile.TemporaryDirectory(prefix="uprm-soak-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        soak = Soak(work, profile, say)
        try:
            soak.setup()
            say(f"soak: {profile.minutes:g} min, {len(profile.faults)} faults")
            soak.soak()
            ending = soak.finish()
        finally:
            soak.cleanup()
        with soak.receiver.lock:
            ending["delivered"] = list(soak.receiver.delivered)
        ending["driver_errors"] = list(soak.errors)
        run = soak.run
        checks = check(run, ending, work)
        result = slim({**asdict(run), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.started)),
                       "machine": machine(), "checks": checks, "alerts": read_alerts(work / "alerts.jsonl"),
                       "delivered": ending["delivered"], "watch_report": ending["watch_report"]})
        for f in result["faults"]:
            f.pop("status_before", None)
    result["alerts_per_hour"] = alerts_per_hour(result)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        result["plots"] = plot(result, args.report)
    atomic_write(args.report.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    atomic_write(args.report, markdown(result))
    failed = [name for name, c in checks.items() if not c["passed"]]
    say(f"-> {args.report}: " + ("all checks passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
