"""Two workers on one store, against real processes: ``uprm serve --workers 2`` on
SQLite, and on a real PostgreSQL ``uprm serve --store URL`` with ``uprm serve-worker
--store URL`` beside it (as a second host would run it, sharing the data folder). Under
concurrent uploads and status reads each job runs exactly once, on both workers; a worker
SIGKILLed mid-job has its job run again by the other (attempts 2) while the server goes
on. Plus the pieces without processes: a job whose media is not on the worker's host
fails naming the file and the host, the health of several workers, the threads split
between them, the password kept out of serve.json, the flags."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from uprm.cli import cli


def _open_store(server):
    from uprm.serve.store import open_store

    return open_store(server.store_url, server.data_dir / "jobs.sqlite3")


def _serve_worker(url: str, checkpoint: Path, data: Path) -> subprocess.Popen:
    """``uprm serve-worker`` on the server's store and data folder (one worker, one thread)."""
    log = data.parent / "serve-worker.log"
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "uprm", "serve-worker", "--store", url, "--checkpoint",
                                 str(checkpoint), "--data-dir", str(data), "--threads", "1"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _both_ready(server) -> bool:
    if server.helper is None:
        return httpx.get(f"{server.url}/healthz").json().get("workers") == ["ready", "ready"]
    store = _open_store(server)
    try:
        remote = store.get_meta(f"worker@{socket.gethostname()}.0") or {}
    finally:
        store.close()
    assert server.helper.poll() is None, (server.data_dir.parent / "serve-worker.log").read_text()[-3000:]
    return remote.get("state") == "ready" and httpx.get(f"{server.url}/healthz").json()["ready"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(request, start_server, checkpoint, server_tools):
    """Two workers (one torch thread each) on one store, once both are ready (module doc);
    ``pair.worker_pids()`` gives both."""
    args = ["--threads", "1", "--max-queue", "8"]
    url = helper = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"serve_{secrets.token_hex(4)}")
        server = start_server(checkpoint, *args, "--store", url, name="workers-postgresql")
        helper = _serve_worker(url, checkpoint, server.data_dir)
    else:
        server = start_server(checkpoint, *args, "--workers", "2", name="workers-sqlite")
    server.store_url, server.helper = url, helper
    own = server.worker_pids
    server.worker_pids = lambda: own() + (server_tools["children"](helper.pid) if helper is not None else [])
    deadline = time.monotonic() + 240
    while not _both_ready(server):
        assert time.monotonic() < deadline, "the two workers did not both get ready"
        time.sleep(0.2)
    yield server
    if helper is not None:
        helper.send_signal(signal.SIGTERM)  # a graceful stop, as systemd does
        assert helper.wait(60) == 0
        assert "uprm serve-worker: 1 worker on" in (server.data_dir.parent / "serve-worker.log").read_text()
    server.stop()


def _submit(url: str, path: Path) -> httpx.Response:
    with path.open("rb") as fh, httpx.Client(base_url=url, timeout=120) as c:
        return c.post("/v1/jobs", files={"video": (path.name, fh, "video/mp4")})


def test_two_workers_share_the_queue_and_run_each_job_exactly_once(pair, videos, wait_job):
    workers = sorted(pair.worker_pids())
    assert len(workers) == 2
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: _submit(pair.url, videos["short"]), range(10)))
    assert {r.status_code for r in responses} <= {202, 429}
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    assert accepted
    with httpx.Client(base_url=pair.url, timeout=60) as client, ThreadPoolExecutor(20) as pool:
        reads = list(pool.map(lambda i: client.get(f"/v1/jobs/{accepted[i % len(accepted)]}"), range(40)))
        assert [r.status_code for r in reads] == [200] * 40
        finished = [wait_job(client, job_id) for job_id in accepted]
    assert [(j["state"], j["attempts"]) for j in finished] == [("done", 1)] * len(accepted)
    store = _open_store(pair)
    try:
        for job_id in accepted:
            assert [e["event"] for e in store.events(job_id)] == ["queued", "started", "done"]  # none ran twice
        starters = {e["pid"] for job_id in accepted for e in store.events(job_id) if e["event"] == "started"}
    finally:
        store.close()
    assert starters == set(workers)  # both workers took jobs, and only they did
    assert sorted(pair.worker_pids()) == workers  # nobody died


def test_a_worker_killed_mid_job_has_its_job_run_again_by_the_other(pair, videos, wait_job, server_tools):
    with httpx.Client(base_url=pair.url, timeout=60) as client:
        job_id = _submit(pair.url, videos["long"]).json()["id"]  # 64 s: 15 windows
        deadline = time.monotonic() + 240
        while (job := client.get(f"/v1/jobs/{job_id}").json())["windows"]["done"] < 1:
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        store = _open_store(pair)
        try:
            victim = int(store.get(job_id).worker.split(":")[1])
            [survivor] = [pid for pid in pair.worker_pids() if pid != victim]
            os.kill(victim, signal.SIGKILL)
            job = wait_job(client, job_id)
            events = [(e["event"], e["detail"]) for e in store.events(job_id)]
            second = [e["pid"] for e in store.events(job_id) if e["event"] == "started"][-1]
        finally:
            store.close()
    assert not server_tools["alive"](victim) and pair.proc.poll() is None
    assert job["state"] == "done" and job["attempts"] == 2 and job["windows"] == {"done": 15, "total": 15}
    assert events == [("queued", None), ("started", None), ("requeued", "the worker stopped while running it"),
                      ("started", None), ("done", None)]
    assert second == survivor  # the live sibling took it over, not the restarted worker


# -- the pieces, without processes ---------------------------------------------------------------------


def _job(video: str, source: str = "upload", name: str = "cam1.mp4"):
    from uprm.serve.store import Job

    return Job(seq=1, id="c" * 32, state="running", source=source, name=name, video=video, media_type="video/mp4",
               size=1, duration=1.0, created=0.0, started=0.0, finished=None, progress=0.0, windows_done=0,
               windows_total=None, attempts=1, error_code=None, error=None, result=None)


def test_a_job_whose_media_is_not_on_this_host_fails_naming_the_file_and_the_host(tmp_path, videos):
    from uprm.serve.config import ServeConfig
    from uprm.serve.errors import ApiError
    from uprm.serve.worker import Worker

    data, media = tmp_path / "data", videos["shop"].parent
    config = ServeConfig(checkpoint=tmp_path, data_dir=data, media_root=media)
    config.uploads_dir.mkdir(parents=True)
    worker = Worker(config, None, None)
    host = socket.gethostname()
    # an upload accepted by a server whose data folder is mounted elsewhere: read from this worker's own
    shutil.copy(videos["quiet"], config.uploads_dir / ("c" * 32))
    assert worker._video_path(_job(f"/srv/elsewhere/uploads/{'c' * 32}")) == config.uploads_dir / ("c" * 32)
    with pytest.raises(ApiError) as missing:
        worker._video_path(_job(f"/srv/elsewhere/uploads/{'d' * 32}"))
    assert missing.value.code == "media_not_found"
    assert f"'cam1.mp4' (<data>/uploads/{'d' * 32}) is not on host {host}" in missing.value.detail
    assert str(data) not in missing.value.detail
    with pytest.raises(ApiError) as absent:
        worker._video_path(_job(str(media / "nowhere.mp4"), "path", "cams/nowhere.mp4"))
    assert absent.value.code == "media_not_found" and f"on host {host}" in absent.value.detail
    assert "'cams/nowhere.mp4'" in absent.value.detail and str(media) not in absent.value.detail
    assert worker._video_path(_job(str(videos["shop"]), "path", "shop.mp4")) == videos["shop"].resolve()
    no_root = Worker(config.model_copy(update={"media_root": None}), None, None)
    with pytest.raises(ApiError, match=f"on host {host}"):
        no_root._video_path(_job(str(videos["shop"]), "path", "shop.mp4"))


def test_the_health_of_several_workers_is_the_best_of_them_and_failed_only_when_all_failed():
    from uprm.serve.app import health_body

    one = health_body([{"state": "ready"}])
    assert one == {"status": "ok", "ready": True, "worker": "ready", "version": one["version"]}  # as before
    two = health_body([{"state": "failed"}, {"state": "ready"}])
    assert (two["status"], two["ready"], two["worker"], two["workers"]) == ("ok", True, "ready", ["failed", "ready"])
    down = health_body([{"state": "failed"}, {"state": "failed"}])
    assert (down["status"], down["ready"]) == ("failed", False)
    assert health_body([{"state": "loading"}, {"state": "restarting"}])["worker"] == "loading"


def test_several_workers_split_the_cores_unless_threads_are_given(tmp_path):
    from uprm.serve.config import ServeConfig
    from uprm.serve.worker import Worker

    cores = len(os.sched_getaffinity(0))
    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", workers=2)
    assert Worker(config, None, None)._threads() == max(1, cores // 2)
    assert Worker(config.model_copy(update={"threads": 3}), None, None)._threads() == 3
    assert Worker(config.model_copy(update={"workers": 1}), None, None)._threads() is None  # torch's default
    assert Worker(config.model_copy(update={"device": "cpu"}), None, None)._device() == "cpu"


def test_the_store_password_never_reaches_serve_json(tmp_path, monkeypatch):
    from uprm.serve.config import STORE_ENV, ServeConfig

    url = "postgresql://uprm:s3cret@db.example:5432/jobs"
    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", store=url, workers=2)
    text = config.to_json()
    assert "s3cret" not in text and "postgresql://uprm:***@db.example:5432/jobs" in text
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert ServeConfig.from_json(text).workers == 2
    monkeypatch.setenv(STORE_ENV, url)  # what the supervisor hands its workers
    assert ServeConfig.from_json(text).store == url


def test_the_commands_check_the_store_and_the_workers(tmp_path, monkeypatch):
    monkeypatch.delenv("UPRM_STORE", raising=False)
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--store", "mysql://x/y",
                                      "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1 and "postgresql://user@host:port/database" in result.output
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--workers", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["serve-worker", "--checkpoint", str(tmp_path), "--data-dir",
                                      str(tmp_path / "d"), "--store", "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 1 and "cannot reach the store postgresql://nobody@127.0.0.1:1/none" in result.output
    for command in ("serve", "serve-worker"):
        text = CliRunner().invoke(cli, [command, "--help"]).output
        assert "--workers" in text and "--store" in text and "UPRM_STORE" in text


def test_a_missing_psycopg_names_the_extra(monkeypatch):
    from uprm.errors import MissingExtraError
    from uprm.serve.store import open_store

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r'pip install "uprm-core\[postgresql\]"'):
        open_store("postgresql://u@h/db", "unused.sqlite3")


def test_a_pool_gives_each_slot_its_state_key_and_hands_the_store_to_workers_off_disk(tmp_path, monkeypatch):
    import uprm.serve.supervisor as supervisor_module
    from uprm.serve.config import STORE_ENV, ServeConfig
    from uprm.serve.supervisor import WorkerPool

    url = "postgresql://uprm:s3cret@db.example:5432/jobs"
    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", store=url, workers=2)
    local = WorkerPool(config, None)
    assert [s.key for s in local.supervisors] == ["worker", "worker.1"]
    assert [s.label for s in local.supervisors] == ["worker 0", "worker 1"]
    remote = WorkerPool(config, None, remote=True)
    host = socket.gethostname()
    assert [s.key for s in remote.supervisors] == [f"worker@{host}.0", f"worker@{host}.1"]
    written = remote.supervisors[1].config_file
    assert written.parent != config.root and "s3cret" not in written.read_text()  # private, no password
    started = []

    def popen(cmd, **kwargs):
        started.append((cmd, kwargs["env"]))

    monkeypatch.setattr(supervisor_module.subprocess, "Popen", popen)
    remote.supervisors[1]._spawn()
    local.supervisors[0].config_file = tmp_path / "serve.json"
    local.supervisors[0]._spawn()
    (cmd, env), (first, _) = started
    assert cmd[-4:] == [str(os.getpid()), "--slot", "1", "--remote"] and env[STORE_ENV] == url
    assert first[-2:] == [str(tmp_path / "serve.json"), str(os.getpid())]  # slot 0 of uprm serve: as before
    remote.stop()
    assert not written.parent.exists()


def test_the_heartbeat_renews_the_lease_and_a_run_whose_job_went_elsewhere_is_dropped(tmp_path):
    from uprm.serve.store import JobStore
    from uprm.serve.worker import Heartbeat, Lost, Progress

    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("a", source="upload", name="a.mp4", video="/v/a", media_type="video/mp4", size=1, duration=1.0,
              max_queue=10)
    me = "here:1:abcdef12"
    first = store.claim(3, worker=me, lease=0.2).lease
    beat = Heartbeat(store, me, lease=0.2)  # renews every 0.05 s
    beat.hold("a")
    deadline = time.monotonic() + 60
    while store.get("a").lease <= first:
        assert time.monotonic() < deadline, "the lease was never renewed"
        time.sleep(0.02)
    progress = Progress(4, lambda done: None, check=beat.check)
    progress(1, 4)  # still ours
    store.requeue_running()  # as a sibling's recovery would after an expired lease
    assert store.claim(3, worker="there:2:abcdef12").worker == "there:2:abcdef12"
    with pytest.raises(Lost, match="went to another worker"):
        while True:
            assert time.monotonic() < deadline, "the heartbeat never noticed"
            progress(2, 4)
            time.sleep(0.02)
    beat.hold(None)
    beat.stop()
    store.close()
