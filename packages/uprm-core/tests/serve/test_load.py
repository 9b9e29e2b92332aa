"""Load and crashes against a real ``uprm serve`` on loopback: 20 concurrent jobs and 100
concurrent status reads — every job finishes or is refused with 429, none is lost or run
twice, jobs run in order of acceptance, memory stays bounded; then the server is
SIGKILLed mid-job, its worker goes with it, and after a restart every accepted job
finishes and finished results are still there."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

#: MiB a process may grow by over the load test (measured: API ~2, worker ~10)
API_GROWTH_MB = 60
WORKER_GROWTH_MB = 250


@pytest.fixture(scope="module")
def client(guarded):
    with httpx.Client(base_url=guarded.url, timeout=60,
                      headers={"Authorization": f"Bearer {guarded.token}"}) as c:
        yield c


def audit(data_dir):
    """``{job: [events]}`` and the jobs in acceptance order, read from the database."""
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        events: dict[str, list[str]] = {}
        for job, event in db.execute("SELECT job, event FROM events ORDER BY n"):
            events.setdefault(job, []).append(event)
        started = [job for job, in db.execute("SELECT job FROM events WHERE event = 'started' ORDER BY n")]
        order = [job for job, in db.execute("SELECT id FROM jobs ORDER BY seq")]
    return events, started, order


def submit(url, token, path):
    with path.open("rb") as fh, httpx.Client(base_url=url, timeout=120) as c:
        return c.post("/v1/jobs", files={"video": (path.name, fh, "video/mp4")},
                      headers={"Authorization": f"Bearer {token}"})


@pytest.mark.slow
def test_twenty_concurrent_jobs_and_a_hundred_status_reads(guarded, client, videos, wait_job, server_tools):
    rss = server_tools["rss_mb"]
    assert client.get("/v1/experts").json()["model"]["threads"] == 1  # --threads reached the worker
    earlier = set(audit(guarded.data_dir)[2])  # jobs of other tests on this server
    warm = submit(guarded.url, guarded.token, videos["short"]).json()  # the first job warms the worker up
    assert wait_job(client, warm["id"])["state"] == "done"
    [worker] = guarded.worker_pids()
    before = rss(guarded.pid), rss(worker)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: submit(guarded.url, guarded.token, videos["short"]), range(20)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 429}, codes
    assert 429 in codes and 202 in codes  # the queue holds 6: some were refused
    assert all(r.json()["code"] == "queue_full" for r in responses if r.status_code == 429)
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]

    def status(i):
        return client.get(f"/v1/jobs/{accepted[i % len(accepted)]}")

    with ThreadPoolExecutor(50) as pool:
        reads = list(pool.map(status, range(100)))
    assert [r.status_code for r in reads] == [200] * 100
    assert {r.json()["state"] for r in reads} <= {"queued", "running", "done"}

    finished = [wait_job(client, job_id) for job_id in accepted]
    assert [j["state"] for j in finished] == ["done"] * len(accepted)
    assert all(len(client.get(j["links"]["result"]).json()["windows"]) == 2 for j in finished)
    events, started, order = audit(guarded.data_dir)
    for job_id in [warm["id"], *accepted]:
        assert events[job_id] == ["queued", "started", "done"], (job_id, events[job_id])  # none run twice
    assert set(events) - earlier == {warm["id"], *accepted}  # nothing of the refused ones was kept
    assert started == order  # in order of acceptance
    uploads = {p.name for p in (guarded.data_dir / "uploads").iterdir()}
    assert uploads - earlier == {warm["id"], *accepted}
    after = rss(guarded.pid), rss(worker)
    print(f"RSS MiB api {before[0]:.0f} -> {after[0]:.0f}, worker {before[1]:.0f} -> {after[1]:.0f}")
    assert after[0] - before[0] < API_GROWTH_MB and after[1] - before[1] < WORKER_GROWTH_MB
    assert guarded.worker_pids() == [worker]  # the same worker ran them all


@pytest.mark.slow
def test_sigkill_mid_job_then_restart_loses_nothing(guarded, client, videos, wait_job, server_tools):
    done_before = client.get("/v1/jobs?state=done&limit=1").json()["jobs"]
    assert done_before, "run with the load test or after any finished job"
    old_result = client.get(done_before[0]["links"]["result"]).content
    ids = [submit(guarded.url, guarded.token, videos[name]).json()["id"] for name in ("longer", "long", "short")]
    deadline = time.monotonic() + 240
    while True:  # until the first job is half-way
        job = client.get(f"/v1/jobs/{ids[0]}").json()
        if job["state"] == "running" and job["windows"]["done"] >= 1:
            break
        assert time.monotonic() < deadline and job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    workers = guarded.kill()
    deadline = time.monotonic() + 60
    while any(server_tools["alive"](pid) for pid in workers):  # the worker dies with its server
        assert time.monotonic() < deadline, "the worker outlived its SIGKILLed server"
        time.sleep(0.1)

    guarded.start()
    with httpx.Client(base_url=guarded.url, timeout=60,
                      headers={"Authorization": f"Bearer {guarded.token}"}) as again:
        finished = [wait_job(again, job_id) for job_id in ids]
        assert [j["state"] for j in finished] == ["done"] * 3
        assert again.get(done_before[0]["links"]["result"]).content == old_result
        assert finished[0]["windows"]["done"] == finished[0]["windows"]["total"] == 29  # 120 s, 8 s every 4 s
        # the requeued job's result equals an uninterrupted job's on the same video
        whole = wait_job(again, submit(guarded.url, guarded.token, videos["longer"]).json()["id"])
        results = [_without_clock(again.get(j["links"]["result"]).json()) for j in (finished[0], whole)]
        assert _close(*results)
    events, _, _ = audit(guarded.data_dir)
    assert events[ids[0]].count("done") == 1 and events[ids[0]].count("started") == 2
    assert "requeued" in events[ids[0]]
    for job_id in ids[1:]:
        assert events[job_id] == ["queued", "started", "done"]


def _without_clock(result: dict) -> dict:
    """A job's result without what the clock decides (seconds, windows/s)."""
    result = dict(result)
    result.pop("timings", None)
    result["stats"] = {k: v for k, v in result.get("stats", {}).items() if k not in ("seconds", "windows_per_s")}
    return result


def _close(a, b) -> bool:
    """Equal, floats to 1e-6 relative (a restarted worker may sum in another order)."""
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_a_stopped_server_returns_the_running_job_without_using_an_attempt(guarded, videos, wait_job, server_tools):
    headers = {"Authorization": f"Bearer {guarded.token}"}
    with httpx.Client(base_url=guarded.url, timeout=60, headers=headers) as c:
        job_id = submit(guarded.url, guarded.token, videos["longer"]).json()["id"]
        wait_job(c, job_id, states=("running",))
    workers = guarded.worker_pids()
    guarded.proc.terminate()  # SIGTERM, as systemd or Ctrl-C: a graceful stop
    assert guarded.proc.wait(120) in (0, -15)  # uvicorn re-raises the signal after its graceful shutdown
    assert not any(server_tools["alive"](pid) for pid in workers)
    with sqlite3.connect(guarded.data_dir / "jobs.sqlite3") as db:
        state, attempts = db.execute("SELECT state, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        last = db.execute("SELECT event, detail FROM events WHERE job = ? ORDER BY n DESC", (job_id,)).fetchone()
    assert (state, attempts) == ("queued", 0) and last == ("requeued", "the worker was stopped")
    guarded.start()
    with httpx.Client(base_url=guarded.url, timeout=60, headers=headers) as c:
        job = wait_job(c, job_id)
    assert job["state"] == "done" and job["attempts"] == 1
