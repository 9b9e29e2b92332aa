"""A worker killed in the middle of a job (SIGKILL, its server alive) leaves the job
``running`` in the database; the supervisor starts a new worker, which puts the job
back in the queue *at its start* and runs it again: the job ends ``done`` on its second
attempt with the result an uninterrupted run gives. (When the *server* is killed the
worker returns its job itself; this is the path where nobody could.) On the SQLite store
and on a real PostgreSQL (``--store postgresql://…``)."""

from __future__ import annotations

import os
import secrets
import signal
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def _read(server, what):
    """``what(store)`` on the server's job store, opened as a second process would."""
    from uprm.serve.store import open_store

    store = open_store(server.store_url, server.data_dir / "jobs.sqlite3")
    try:
        return what(store)
    finally:
        store.close()


def _events(server, job_id: str) -> list[tuple[str, str | None]]:
    return _read(server, lambda store: [(e["event"], e["detail"]) for e in store.events(job_id)])


def _row(server, job_id: str) -> tuple[str, int]:
    job = _read(server, lambda store: store.get(job_id))
    return job.state, job.attempts


def _submit(client: httpx.Client, path) -> str:
    with path.open("rb") as fh:
        r = client.post("/v1/jobs", files={"video": (path.name, fh, "video/mp4")})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _without_clock(result: dict) -> dict:
    """A result without what the clock decides (seconds, windows/s)."""
    result = {k: v for k, v in result.items() if k != "timings"}
    result["stats"] = {k: v for k, v in result.get("stats", {}).items() if k not in ("seconds", "windows_per_s")}
    return result


def _close(a, b) -> bool:
    """Equal, floats to 1e-6 relative (another process may sum in another order)."""
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_job_whose_worker_was_killed_runs_again_when_the_next_worker_starts(store, request, start_server,
                                                                              checkpoint, videos, wait_job,
                                                                              server_tools):
    url = None
    if store == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"requeue_{secrets.token_hex(4)}")
    server = start_server(checkpoint, "--threads", "1", *(["--store", url] if url else []), name=f"requeue-{store}")
    server.store_url = url
    with httpx.Client(base_url=server.url, timeout=60) as client:
        job_id = _submit(client, videos["longer"])  # 120 s: 29 windows, seconds of work
        wait_job(client, job_id, states=("running", "done", "failed"))
        [worker] = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while server_tools["alive"](worker):
            assert time.monotonic() < deadline, "the SIGKILLed worker is still there"
            time.sleep(0.05)
        # nobody handed the job back: the row is as the dead worker left it
        assert _row(server, job_id) == ("running", 1), "the job ended before the worker was killed"

        job = wait_job(client, job_id)
        assert server.proc.poll() is None  # the server itself never stopped
        assert server.worker_pids() and server.worker_pids() != [worker]
        assert job["state"] == "done" and job["attempts"] == 2, job
        assert job["windows"] == {"done": 29, "total": 29} and job["error"] is None
        assert _events(server, job_id) == [
            ("queued", None), ("started", None), ("requeued", "the worker stopped while running it"),
            ("started", None), ("done", None)]
        again = client.get(job["links"]["result"]).json()

        whole = wait_job(client, _submit(client, videos["longer"]))  # the same video, uninterrupted
        assert whole["state"] == "done" and whole["attempts"] == 1
        uninterrupted = client.get(whole["links"]["result"]).json()
    assert again["segments"], "the video has a threat: the comparison must cover segments"
    assert _close(_without_clock(again), _without_clock(uninterrupted))
