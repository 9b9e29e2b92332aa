"""Several workers on one store, against real processes, in SQLite and in a real
PostgreSQL: ``uprm serve --workers 2`` under concurrent uploads and status reads runs
each job exactly once, on both workers; a worker SIGKILLed mid-job has its job run again
by the other (attempts 2) while the server and the other worker go on; ``uprm
serve-worker`` runs a PostgreSQL store's jobs with no server at all, and fails a job
whose media is not on its host naming the file and the host. Plus the pieces without
processes: the health of several workers, the threads split between them, the flags."""

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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(request, start_server, checkpoint, wait_job):
    """``uprm serve --workers 2`` (one torch thread each) on SQLite, then on PostgreSQL;
    returned once both workers are ready."""
    args = ["--workers", "2", "--threads", "1", "--max-queue", "8"]
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"serve_{secrets.token_hex(4)}")
        args += ["--store", url]
    server = start_server(checkpoint, *args, name=f"workers-{request.param}")
    server.store_url = url
    deadline = time.monotonic() + 240
    while httpx.get(f"{server.url}/healthz").json().get("workers") != ["ready", "ready"]:
        assert time.monotonic() < deadline, "the two workers did not both get ready"
        time.sleep(0.2)
    yield server
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


def test_serve_worker_runs_a_shared_stores_jobs_and_names_the_host_of_missing_media(postgres, checkpoint, videos,
                                                                                     tmp_path):
    """No server: jobs written into a PostgreSQL store are run by ``uprm serve-worker``
    reading its own data folder; an upload that is not in it fails naming it and the host."""
    from uprm.serve.pgstore import PostgresStore

    url = postgres.create_database("serve_worker")
    data = tmp_path / "shared"
    (data / "uploads").mkdir(parents=True)
    store = PostgresStore(url)
    here, missing = "a" * 32, "b" * 32
    shutil.copy(videos["short"], data / "uploads" / here)
    for job_id in (here, missing):
        store.add(job_id, source="upload", name=f"{job_id[0]}.mp4", video=f"/elsewhere/uploads/{job_id}",
                  media_type="video/mp4", size=1, duration=12.0, max_queue=10)
    log = tmp_path / "serve-worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uprm", "serve-worker", "--store", url, "--checkpoint",
                                 str(checkpoint), "--data-dir", str(data), "--threads", "1"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while {store.get(j).state for j in (here, missing)} - {"done", "failed"}:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        done, failed = store.get(here), store.get(missing)
        assert done.state == "done" and (data / "results" / here / f"{done.result}.json").is_file()
        assert failed.state == "failed" and failed.error_code == "media_not_found"
        assert f"<data>/uploads/{missing}" in failed.error and f"on host {socket.gethostname()}" in failed.error
        assert str(data) not in failed.error
        assert store.get_meta(f"worker@{socket.gethostname()}.0")["state"] == "ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        store.close()
    assert code == 0, log.read_text()[-3000:]
    assert "uprm serve-worker: 1 worker on" in log.read_text()


# -- the pieces, without processes ---------------------------------------------------------------------


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
