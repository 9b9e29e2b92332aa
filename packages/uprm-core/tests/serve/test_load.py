"""Load and crashes against a real ``uprm serve`` on loopback: 20 concurrent jobs and 100
concurrent status reads — every job finishes or is refused with 429, none is lost or run
twice, jobs run in order of acceptance, memory stays bounded; then the server is
SIGKILLed mid-job, its worker goes with it, and after a restart every accepted job
finishes and finished results are still there. Each test runs on the SQLite store (the
data folder's) and on a real PostgreSQL (``--store postgresql://…``, the package's test
server), the store read back through its own class."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

#: MiB a process may grow by over the load test (measured: API ~2, worker ~10)
API_GROWTH_MB = 60
WORKER_GROWTH_MB = 250


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, start_server, checkpoint):
    """The package's ``guarded`` server (token, a queue of 6, one thread) on SQLite, or
    one started alike on a new PostgreSQL database; ``.store_url`` says which."""
    if request.param == "sqlite":
        server = request.getfixturevalue("guarded")
        server.store_url = None
        return server
    url = request.getfixturevalue("postgres").create_database(f"load_{secrets.token_hex(4)}")
    token = secrets.token_hex(16)
    server = start_server(checkpoint, "--token", token, "--max-queue", "6", "--threads", "1", "--store", url,
                          name="guarded-postgresql")
    server.token, server.store_url = token, url
    return server


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=60,
                      headers={"Authorization": f"Bearer {service.token}"}) as c:
        yield c


def open_store(server):
    """The server's job store, opened as a second process would (close it after)."""
    from uprm.serve.store import open_store

    return open_store(server.store_url, server.data_dir / "jobs.sqlite3")


def audit(server):
    """``{job: [events]}``, the jobs in the order they started and the jobs in acceptance
    order, read from the server's store."""
    store = open_store(server)
    try:
        rows = store.events()
        order = [job.id for job in reversed(store.list(limit=1_000_000))]
    finally:
        store.close()
    events: dict[str, list[str]] = {}
    for row in rows:
        events.setdefault(row["job"], []).append(row["event"])
    started = [row["job"] for row in rows if row["event"] == "started"]
    return events, started, order


def submit(url, token, path):
    with path.open("rb") as fh, httpx.Client(base_url=url, timeout=120) as c:
        return c.post("/v1/jobs", files={"video": (path.name, fh, "video/mp4")},
                      headers={"Authorization": f"Bearer {token}"})


@pytest.mark.slow
def test_twenty_concurrent_jobs_and_a_hundred_status_reads(service, client, videos, wait_job, server_tools):
    rss = server_tools["rss_mb"]
    assert client.get("/v1/experts").json()["model"]["threads"] == 1  # --threads reached the worker
    earlier = set(audit(service)[2])  # jobs of other tests on this server
    warm = submit(service.url, service.token, videos["short"]).json()  # the first job warms the worker up
    assert wait_job(client, warm["id"])["state"] == "done"
    [worker] = service.worker_pids()
    before = rss(service.pid), rss(worker)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: submit(service.url, service.token, videos["short"]), range(20)))
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
    events, started, order = audit(service)
    for job_id in [warm["id"], *accepted]:
        assert events[job_id] == ["queued", "started", "done"], (job_id, events[job_id])  # none run twice
    assert set(events) - earlier == {warm["id"], *accepted}  # nothing of the refused ones was kept
    assert started == order  # in order of acceptance
    uploads = {p.name for p in (service.data_dir / "uploads").iterdir()}
    assert uploads - earlier == {warm["id"], *accepted}
    after = rss(service.pid), rss(worker)
    print(f"RSS MiB api {before[0]:.0f} -> {after[0]:.0f}, worker {before[1]:.0f} -> {after[1]:.0f}")
    assert after[0] - before[0] < API_GROWTH_MB and after[1] - before[1] < WORKER_GROWTH_MB
    assert service.worker_pids() == [worker]  # the same worker ran them all


@pytest.mark.slow
def test_sigkill_mid_job_then_restart_loses_nothing(service, client, videos, wait_job, server_tools):
    done_before = client.get("/v1/jobs?state=done&limit=1").json()["jobs"]
    assert done_before, "run with the load test or after any finished job"
    old_result = client.get(done_before[0]["links"]["result"]).content
    ids = [submit(service.url, service.token, videos[name]).json()["id"] for name in ("longer", "long", "short")]
    deadline = time.monotonic() + 240
    while True:  # until the first job is half-way
        job = client.get(f"/v1/jobs/{ids[0]}").json()
        if job["state"] == "running" and job["windows"]["done"] >= 1:
            break
        assert time.monotonic() < deadline and job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    workers = service.kill()
    deadline = time.monotonic() + 60
    while any(server_tools["alive"](pid) for pid in workers):  # the worker dies with its server
        assert time.monotonic() < deadline, "the worker outlived its SIGKILLed server"
        time.sleep(0.1)

    service.start()
    with httpx.Client(base_url=service.url, timeout=60,
                      headers={"Authorization": f"Bearer {service.token}"}) as again:
        finished = [wait_job(again, job_id) for job_id in ids]
        assert [j["state"] for j in finished] == ["done"] * 3
        assert again.get(done_before[0]["links"]["result"]).content == old_result
        assert finished[0]["windows"]["done"] == finished[0]["windows"]["total"] == 29  # 120 s, 8 s every 4 s
        # the requeued job's result equals an uninterrupted job's on the same video
        whole = wait_job(again, submit(service.url, service.token, videos["longer"]).json()["id"])
        results = [_without_clock(again.get(j["links"]["result"]).json()) for j in (finished[0], whole)]
        assert _close(*results)
    events, _, _ = audit(service)
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
def test_a_stopped_server_returns_the_running_job_without_using_an_attempt(service, videos, wait_job, server_tools):
    headers = {"Authorization": f"Bearer {service.token}"}
    with httpx.Client(base_url=service.url, timeout=60, headers=headers) as c:
        job_id = submit(service.url, service.token, videos["longer"]).json()["id"]
        wait_job(c, job_id, states=("running",))
    workers = service.worker_pids()
    service.proc.terminate()  # SIGTERM, as systemd or Ctrl-C: a graceful stop
    assert service.proc.wait(120) in (0, -15)  # uvicorn re-raises the signal after its graceful shutdown
    assert not any(server_tools["alive"](pid) for pid in workers)
    store = open_store(service)
    try:
        job, last = store.get(job_id), store.events(job_id)[-1]
    finally:
        store.close()
    assert (job.state, job.attempts) == ("queued", 0)
    assert (last["event"], last["detail"]) == ("requeued", "the worker was stopped")
    service.start()
    with httpx.Client(base_url=service.url, timeout=60, headers=headers) as c:
        job = wait_job(c, job_id)
    assert job["state"] == "done" and job["attempts"] == 1
