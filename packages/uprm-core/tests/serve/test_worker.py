"""The worker's pieces alone: progress reported from detection's callback, readiness, job errors
told without server paths or tracebacks, safe video ids; and the ``uprm serve`` command's
checks before it binds anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.errors import VideoError
from uprm.serve.config import ServeConfig
from uprm.serve.store import Job
from uprm.serve.worker import Progress, Worker, safe_video_id


class Clock:
    """An injected clock: the throttle never reads the machine's uptime."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.mark.parametrize("start", [0.0, 5.0, 1e6])  # a machine booted 0 s, 5 s or days ago
def test_the_first_progress_report_is_never_dropped(start):
    reports, clock = [], Clock(start)
    progress = Progress(total=6, report=reports.append, every=3600.0, clock=clock)
    for done in range(1, 7):
        progress(done, 6)
    assert reports == [1, 6]  # the first report at once, then throttled, the last window always


def test_progress_reports_at_most_every_interval_of_the_clock():
    reports, clock = [], Clock(100.0)
    progress = Progress(total=10, report=reports.append, every=0.25, clock=clock)
    for done, now in [(2, 100.0), (4, 100.1), (6, 100.25), (8, 100.3), (10, 100.31)]:
        clock.now = now
        progress(done, 10)
    assert reports == [2, 6, 10]


def test_progress_stops_the_job_when_the_server_is_gone():
    from uprm.serve.worker import Stop

    progress = Progress(total=4, report=lambda done: None, parent=-1)  # never our parent
    with pytest.raises(Stop, match="server is gone"):
        progress(1, 4)


def test_detect_video_calls_progress_after_each_batch(tmp_path, videos):
    from uprm.detection import detect_video
    from uprm.modeling import UPRMConfig, build_model

    checkpoint = build_model(UPRMConfig.tiny(experts=["coarse"])).save_pretrained(tmp_path / "ckpt")
    video = videos["quiet"]  # 12 s
    calls = []
    detection = detect_video(video, checkpoint, 2.0, 1.0, batch_size=3, on_progress=lambda d, t: calls.append((d, t)))
    total = len(detection.windows)
    assert total > 3
    assert calls == [(min(n, total), total) for n in range(3, total + 3, 3)]


def test_a_worker_state_is_readiness_only_for_a_live_worker_of_this_server():
    import os
    import subprocess
    import sys

    from uprm.serve.app import live_worker_state

    me = os.getpid()
    ready = {"state": "ready", "pid": me, "server": me}
    assert live_worker_state(ready, me) == ready
    assert live_worker_state({**ready, "server": me + 1}, me) == {"state": "starting"}  # an earlier server's worker
    assert live_worker_state(None, me) == {"state": "starting"}
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    assert live_worker_state({**ready, "pid": dead}, me) == {"state": "starting"}  # that worker has exited
    failed = {"state": "failed", "pid": dead, "server": me, "error": "bad checkpoint"}
    assert live_worker_state(failed, me) == failed  # a failure is reported after the worker exited


def test_safe_video_ids():
    assert safe_video_id("shop cam 1.mp4") == "shop_cam_1"
    assert safe_video_id("../../etc/passwd") == "passwd"
    assert safe_video_id("cam/../x.mkv") == "x"
    assert safe_video_id("...mp4") == "video"
    assert safe_video_id("ñandú cam.mp4") == "ñandú_cam"


def _job(tmp_path, video, name="clip.mp4"):
    return Job(seq=1, id="a" * 32, state="running", source="upload", name=name, video=str(video),
               media_type="video/mp4", size=1, duration=1.0, created=0.0, started=0.0, finished=None, progress=0.0,
               windows_done=0, windows_total=None, attempts=1, error_code=None, error=None, result=None)


def test_job_errors_name_the_video_not_the_server_paths(tmp_path):
    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "data")
    worker = Worker(config, store=None, parent=None)
    upload = config.uploads_dir / ("a" * 32)
    job = _job(tmp_path, upload)
    code, message = worker._describe(job, VideoError(upload, "no such file"))
    assert code == "video_error" and message == "VideoError: clip.mp4: no such file"
    code, message = worker._describe(job, RuntimeError(f"internal {config.data_dir}/x"))
    assert code == "internal_error" and "incident" in message and str(tmp_path) not in message


def test_the_command_refuses_to_listen_beyond_loopback_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("UPRM_TOKEN", raising=False)
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--host", "0.0.0.0", "--data-dir",
                                      str(tmp_path / "d")])
    assert result.exit_code == 1 and "needs a bearer token" in result.output
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--host", "0.0.0.0", "--data-dir",
                                      str(tmp_path / "d")], env={"UPRM_TOKEN": "short"})
    assert result.exit_code == 1 and "16 characters" in result.output
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path / "d")])
    assert result.exit_code == 2  # no such checkpoint folder


def test_the_command_says_which_extra_is_missing(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uprm.serve.server", None)  # as if fastapi/uvicorn were absent
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path)])
    assert result.exit_code == 1 and 'pip install "uprm-core[serve]"' in result.output


def test_help_does_not_need_the_extra():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--media-root" in result.output and "UPRM_TOKEN" in result.output


def test_one_server_per_data_folder_and_a_busy_port_is_named(tmp_path):
    import socket

    from uprm.serve.config import ServeConfigError
    from uprm.serve.server import bind, data_lock, url_of

    with data_lock(tmp_path), pytest.raises(ServeConfigError, match="another uprm serve"), data_lock(tmp_path):
        pass
    with data_lock(tmp_path):  # released: free again
        pass
    sock = bind("127.0.0.1", 0)
    try:
        assert url_of(sock).startswith("http://127.0.0.1:")
        with pytest.raises(ServeConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
    if socket.has_ipv6:
        try:
            six = bind("::1", 0)
        except ServeConfigError:
            return  # no IPv6 loopback on this machine
        assert url_of(six).startswith("http://[::1]:")
        six.close()


def test_a_restarted_server_never_reports_the_previous_worker_as_ready(tmp_path, monkeypatch):
    """What an earlier server's worker wrote ("ready") is in the store when a new server
    starts; /healthz must say "starting" until the new worker reports for itself."""
    import os

    from fastapi.testclient import TestClient

    import uprm.serve.app as app_module
    from uprm.serve.app import create_app
    from uprm.serve.store import JobStore

    class NoWorker:  # the supervisor, without starting a process
        def __init__(self, config, store):
            self.store = store

        def start(self):
            pass

        def stop(self):
            pass

        def wake(self):
            pass

    monkeypatch.setattr(app_module, "Supervisor", NoWorker)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    config = ServeConfig(checkpoint=tmp_path / "ckpt", data_dir=tmp_path / "data")
    config.check_paths()
    store = JobStore(config.db_path)
    store.set_meta("worker", {"state": "ready", "since": 0.0, "pid": os.getpid(), "server": os.getpid() + 1})
    with TestClient(create_app(config)) as client:
        health = client.get("/healthz").json()
        assert health["ready"] is False and health["worker"] == "starting"
        # the new worker (this process stands in for it) says it is ready: now it is
        store.set_meta("worker", {"state": "ready", "since": 1.0, "pid": os.getpid(), "server": os.getpid()})
        health = client.get("/healthz").json()
        assert health["ready"] is True and health["worker"] == "ready"
    store.close()


def test_a_job_s_reference_cycles_are_collected_when_it_ends(tmp_path, monkeypatch):
    """Soak finding 6: the cycles a job leaves (matplotlib figures) are freed after each job."""
    import gc
    import weakref

    class Cycle:
        pass

    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "data")
    worker = Worker(config, store=_Store(), parent=None)
    refs = []

    def detect(job):
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        refs.append(weakref.ref(a))
        return "vid"

    monkeypatch.setattr(worker, "_detect", detect)
    gc.disable()
    try:
        worker.run(_job(tmp_path, tmp_path / "clip.mp4"))
        assert refs and refs[0]() is None
    finally:
        gc.enable()


class _Store:
    def finish(self, *args, **kwargs):
        return True
