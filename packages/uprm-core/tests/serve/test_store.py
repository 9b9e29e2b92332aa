"""The SQLite job queue: order, limits under concurrency, recovery after a dead worker,
giving up on a job that kills workers, the event log."""

from __future__ import annotations

import threading

import pytest

from uprm.serve.store import JobStore, QueueFull


def add(store, job_id, max_queue=100):
    return store.add(job_id, source="upload", name=f"{job_id}.mp4", video=f"/v/{job_id}", media_type="video/mp4",
                     size=1, duration=1.0, max_queue=max_queue)


def events(store, job_id):
    return [e["event"] for e in store.events(job_id)]


def test_jobs_run_in_order_of_acceptance(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
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


def test_the_queue_limit_holds_under_concurrent_submissions(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
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


def test_a_dead_workers_job_goes_back_first_and_a_job_that_kills_workers_fails(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    add(store, "first")
    add(store, "second")
    assert store.claim(2).id == "first"
    # the worker dies; a new one starts
    assert JobStore(tmp_path / "jobs.sqlite3").requeue_running() == ["first"]
    assert store.get("first").state == "queued" and store.get("first").attempts == 1
    assert store.claim(2).id == "first"  # keeps its place in the line
    store.requeue_running()
    job = store.claim(2)  # "first" used its two attempts: it fails, "second" runs
    assert job.id == "second"
    first = store.get("first")
    assert first.state == "failed" and first.error_code == "worker_died"
    assert events(store, "first") == ["queued", "started", "requeued", "started", "requeued", "failed"]


def test_a_worker_asked_to_stop_returns_its_job_without_using_an_attempt(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    add(store, "a")
    store.claim(1)
    store.release("a")
    job = store.get("a")
    assert job.state == "queued" and job.attempts == 0
    assert store.claim(1).id == "a"


def test_only_finished_jobs_are_deleted_and_meta_round_trips(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    add(store, "a")
    assert store.delete("a") is None
    store.claim(3)
    store.finish("a", "a")
    assert store.delete("a").id == "a" and store.get("a") is None
    store.set_meta("worker", {"state": "ready"})
    store.set_meta("worker", {"state": "loading"})
    assert store.get_meta("worker") == {"state": "loading"} and store.get_meta("nothing", 1) == 1


def test_a_duplicate_id_is_refused(tmp_path):
    import sqlite3

    store = JobStore(tmp_path / "jobs.sqlite3")
    add(store, "a")
    with pytest.raises(sqlite3.IntegrityError):
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
    assert again._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    again.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreTooNew, match="newer uprm"):
        JobStore(path)


def test_a_review_is_kept_only_for_a_finished_job_and_the_fingerprint_with_it(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
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
