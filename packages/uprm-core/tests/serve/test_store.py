"""The job store, in SQLite and in a real PostgreSQL (``make_store``): order, limits
under concurrency, one claimer per job among several workers, recovery after a dead
worker (at start, by a live sibling, by an expired lease), giving up on a job that kills
workers, the event log; the schema versions of both."""

from __future__ import annotations

import threading

import pytest

from uprm.serve.store import JobStore, QueueFull


def add(store, job_id, max_queue=100):
    return store.add(job_id, source="upload", name=f"{job_id}.mp4", video=f"/v/{job_id}", media_type="video/mp4",
                     size=1, duration=1.0, max_queue=max_queue)


def events(store, job_id):
    return [e["event"] for e in store.events(job_id)]


def test_jobs_run_in_order_of_acceptance(make_store):
    store = make_store()
    for name in ("c", "a", "b"):
        add(store, name)
    assert [store.position(store.get(n)) for n in ("c", "a", "b")] == [0, 1, 2]
    claimed = [store.claim(3).id for _ in range(3)]
    assert claimed == ["c", "a", "b"] and store.claim(3) is None
    job = store.get("c")
    assert job.state == "running" and job.attempts == 1 and store.position(job) is None
    store.set_progress("c", 3, 4)
    assert (store.get("c").progress, store.get("c").windows_done, store.get("c").windows_total) == (0.75, 3, 4)
    store.finish("c", "c")
    store.fail("a", "video_error", "bad")
    assert (store.get("c").state, store.get("c").progress, store.get("c").result) == ("done", 1.0, "c")
    assert (store.get("a").state, store.get("a").error_code, store.get("a").error) == ("failed", "video_error", "bad")
    assert events(store, "c") == ["queued", "started", "done"]
    assert store.counts() == {"queued": 0, "running": 1, "done": 1, "failed": 1}


def test_the_queue_limit_holds_under_concurrent_submissions(make_store):
    store = make_store()
    accepted, refused = [], []
    barrier = threading.Barrier(20)

    def submit(i):
        barrier.wait()
        try:
            add(store, f"job{i}", max_queue=5)
            accepted.append(i)
        except QueueFull:
            refused.append(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 5 and len(refused) == 15
    assert store.counts()["queued"] == 5 and len(store.ids()) == 5


def test_a_dead_workers_job_goes_back_first_and_a_job_that_kills_workers_fails(make_store):
    store = make_store()
    add(store, "first")
    add(store, "second")
    assert store.claim(2).id == "first"
    # the worker dies; a new one starts
    assert make_store().requeue_running() == ["first"]
    assert store.get("first").state == "queued" and store.get("first").attempts == 1
    assert store.claim(2).id == "first"  # keeps its place in the line
    store.requeue_running()
    job = store.claim(2)  # "first" used its two attempts: it fails, "second" runs
    assert job.id == "second"
    first = store.get("first")
    assert first.state == "failed" and first.error_code == "worker_died"
    assert events(store, "first") == ["queued", "started", "requeued", "started", "requeued", "failed"]


def test_a_worker_asked_to_stop_returns_its_job_without_using_an_attempt(make_store):
    store = make_store()
    add(store, "a")
    store.claim(1)
    store.release("a")
    job = store.get("a")
    assert job.state == "queued" and job.attempts == 0
    assert store.claim(1).id == "a"


def test_the_connection_of_a_thread_that_ended_is_closed(tmp_path):
    """The soak's finding: uvicorn's request pool lets idle threads go and starts new ones;
    each kept its SQLite connection (2 descriptors) until the store closed, so the server's
    descriptors grew with every burst of requests."""
    import os

    store = JobStore(tmp_path / "jobs.sqlite3")
    store.set_meta("x", 1)

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = descriptors()
    for _ in range(10):
        thread = threading.Thread(target=store.get_meta, args=("x",))
        thread.start()
        thread.join()
    assert len(store._every) == 2  # this thread's connection and the last thread's, closed by the next
    assert descriptors() - before <= 3  # was 20: 2 per thread
    store.close()
    assert store._every == []


def test_only_finished_jobs_are_deleted_and_meta_round_trips(make_store):
    store = make_store()
    add(store, "a")
    assert store.delete("a") is None
    store.claim(3)
    store.finish("a", "a")
    assert store.delete("a").id == "a" and store.get("a") is None
    store.set_meta("worker", {"state": "ready"})
    store.set_meta("worker", {"state": "loading"})
    assert store.get_meta("worker") == {"state": "loading"} and store.get_meta("nothing", 1) == 1


def test_a_duplicate_id_is_refused(make_store):
    store = make_store()
    add(store, "a")
    with pytest.raises(store.integrity_error):
        add(store, "a")
    assert store.counts()["queued"] == 1


#: the tables of a store written before reviews and model fingerprints (schema version 1)
V1_SCHEMA = """
CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
    source TEXT NOT NULL, name TEXT NOT NULL, video TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL,
    duration REAL, created REAL NOT NULL, started REAL, finished REAL, progress REAL NOT NULL DEFAULT 0,
    windows_done INTEGER NOT NULL DEFAULT 0, windows_total INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT, error TEXT, result TEXT);
CREATE TABLE events (n INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, event TEXT NOT NULL, at REAL NOT NULL,
    pid INTEGER NOT NULL, detail TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO jobs (id, state, source, name, video, media_type, size, duration, created, progress, result)
    VALUES ('old', 'done', 'upload', 'old.mp4', '/v/old', 'video/mp4', 1, 10.0, 0.0, 1.0, 'old');
"""


def test_a_store_of_the_earlier_schema_is_migrated_and_a_newer_one_refused(tmp_path):
    import sqlite3

    from uprm.serve.store import SCHEMA_VERSION, StoreTooNew

    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    store = JobStore(path)
    old = store.get("old")
    assert old.state == "done" and old.result == "old" and old.model is None  # kept, with the new column
    review = store.add_review("old", "alice", [{"start": 1.0, "end": 2.0, "category": "Arson", "cause": None,
                                                "verdict": "added"}])
    assert review["reviewer"] == "alice" and store.reviews("old") == [review]
    assert store.current_reviews() == [(old, review)]
    store.close()
    again = JobStore(path)  # migrating twice is a no-op
    assert again.reviews("old") == [review]
    assert again._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert again.get("old").worker is None and again.get("old").lease is None  # version 3's columns
    again.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreTooNew, match="newer uprm"):
        JobStore(path)


def test_a_review_is_kept_only_for_a_finished_job_and_the_fingerprint_with_it(make_store):
    store = make_store()
    add(store, "a")
    assert store.add_review("a", "alice", []) is None  # queued
    store.claim(3)
    assert store.add_review("a", "alice", []) is None  # running
    store.finish("a", "a", "sha256:abc")
    assert store.get("a").model == "sha256:abc"
    first = store.add_review("a", "alice", [])
    second = store.add_review("a", "bob", [])
    assert [r["n"] for r in store.reviews("a")] == [second["n"], first["n"]]
    assert store.current_reviews() == [(store.get("a"), second)]


def test_a_postgresql_store_has_a_schema_version_and_refuses_a_newer_one(postgres):
    from uprm.serve.pgstore import PostgresStore
    from uprm.serve.store import SCHEMA_VERSION, StoreTooNew

    url = postgres.create_database("uprm_versions")
    store = PostgresStore(url)
    add(store, "a")
    again = PostgresStore(url)  # opening it again keeps it
    assert again.get("a").state == "queued" and again.get_meta("schema_version") == SCHEMA_VERSION == 3
    store.set_meta("schema_version", 99)
    with pytest.raises(StoreTooNew, match="newer uprm"):
        PostgresStore(url)
    store.close()
    again.close()


# -- several workers on one store ------------------------------------------------------------------------


def test_workers_racing_for_jobs_each_claim_a_different_job(make_store):
    """Four workers (two processes' stores, two threads each) claim 24 jobs at once:
    each job is claimed exactly once."""
    stores = [make_store(), make_store()]
    for i in range(24):
        add(stores[0], f"j{i:02d}")
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def work(n):
        store, me = stores[n % 2], f"host:{n}:m"
        barrier.wait()
        while (job := store.claim(3, worker=me)) is not None:
            claimed.setdefault(job.id, []).append(me)
            assert store.finish(job.id, job.id, worker=me)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == [f"j{i:02d}" for i in range(24)]
    assert all(len(by) == 1 for by in claimed.values()), claimed
    assert stores[1].counts() == {"queued": 0, "running": 0, "done": 24, "failed": 0}


def _dead_pid() -> int:
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_a_live_sibling_requeues_the_job_of_a_dead_worker_of_this_machine_and_spares_live_ones(make_store):
    import os

    from uprm.serve.store import worker_id

    store = make_store()
    for name in ("dead", "alive", "far"):
        add(store, name)
    dead, alive = worker_id(_dead_pid()), worker_id(os.getpid())
    assert store.claim(3, worker=dead).id == "dead"
    assert store.claim(3, worker=alive).id == "alive"
    assert store.claim(3, worker="other-host:1:abcdef12", lease=60).id == "far"  # another host, lease running
    sibling = make_store()
    assert sibling.recover() == ["dead"]
    job = sibling.get("dead")
    assert (job.state, job.attempts, job.worker) == ("queued", 1, None)
    assert [e["detail"] for e in sibling.events("dead")][-1] == "the worker stopped while running it"
    assert (sibling.get("alive").state, sibling.get("far").state) == ("running", "running")
    again = sibling.claim(3, worker=alive)
    assert again.id == "dead" and again.attempts == 2  # the attempt of the dead worker counted


def test_an_expired_lease_sends_the_job_to_another_worker_and_the_old_one_cannot_write(make_store):
    store = make_store()
    add(store, "a")
    far = "other-host:7:abcdef12"
    assert store.claim(3, worker=far, lease=60).id == "a"
    assert store.renew("a", far, lease=-1)  # as if it had not renewed for a minute
    assert store.recover() == ["a"]
    assert store.events("a")[-1]["detail"] == "the worker other-host:7 stopped renewing its lease"
    job = store.claim(3, worker="here:1:abcdef12")
    assert job.id == "a" and job.attempts == 2 and job.worker == "here:1:abcdef12"
    # the first worker wakes up: its job is no longer its own
    assert not store.renew("a", far)
    store.set_progress("a", 5, 10, worker=far)
    assert not store.finish("a", "stale", worker=far) and not store.fail("a", "x", "y", worker=far)
    assert not store.release("a", worker=far)
    job = store.get("a")
    assert (job.state, job.windows_done, job.result) == ("running", 0, None)
    assert store.finish("a", "a", worker="here:1:abcdef12") and store.get("a").result == "a"
    assert [e["event"] for e in store.events("a")] == ["queued", "started", "requeued", "started", "done"]


def test_a_running_job_of_an_earlier_schema_has_no_worker_and_goes_back_to_the_queue(tmp_path):
    """A store written before leases (a worker died with a job running, then uprm was
    upgraded): the job names no worker, so the first recovery re-queues it."""
    import sqlite3

    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA.replace("'old', 'done'", "'old', 'running'"))
    store = JobStore(path)
    assert store.get("old").worker is None
    assert store.recover() == ["old"] and store.get("old").state == "queued"
    store.close()
