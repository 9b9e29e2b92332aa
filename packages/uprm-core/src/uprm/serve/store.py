"""The job queue: SQLite (WAL) beside the uploads, shared by the API and the worker.

A job is ``queued`` when accepted, ``running`` while the worker runs it, then ``done``
or ``failed``. Jobs run in order of acceptance (``seq``). Every change of state is one
transaction and leaves a row in ``events`` (queued, started, requeued, done, failed),
so what happened to a job can be read back after any crash. Commits are durable
(``synchronous=FULL``): an accepted job survives a SIGKILL or a power cut. On the
worker's start, jobs left ``running`` by a dead worker go back to ``queued``
(:meth:`JobStore.requeue_running`); a job whose worker died ``max_attempts`` times
fails instead of killing workers for ever.

Reviews (:meth:`JobStore.add_review`): an operator's verdict on a finished job's
segments, one row per saved review with who and when; the latest is the job's current
review and the earlier ones stay as its history. They are deleted with their job.

The schema has a version (SQLite's ``user_version``): a store written by an earlier
version is migrated when it is opened (:data:`SCHEMA_VERSION`; version 1 had no
``reviews`` table and no ``jobs.model`` column), in one transaction that the API and
the worker may race for safely.

Each thread gets its own connection; writers wait for each other (``busy_timeout``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.errors import ServeConfigError

__all__ = ["SCHEMA_VERSION", "STATES", "Job", "JobStore", "QueueFull", "StoreTooNew"]

STATES = ("queued", "running", "done", "failed")
#: the version of the tables this code reads and writes (``PRAGMA user_version``)
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    source TEXT NOT NULL CHECK (source IN ('upload', 'path')),
    name TEXT NOT NULL,
    video TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    duration REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress REAL NOT NULL DEFAULT 0,
    windows_done INTEGER NOT NULL DEFAULT 0,
    windows_total INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS events (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    event TEXT NOT NULL,
    at REAL NOT NULL,
    pid INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events (job);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _to_v2(db: sqlite3.Connection) -> None:
    """Version 2: the checkpoint fingerprint a job ran with, and the reviews."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
    if "model" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN model TEXT")
    db.execute("CREATE TABLE IF NOT EXISTS reviews (n INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, "
               "reviewer TEXT NOT NULL, at REAL NOT NULL, segments TEXT NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS reviews_job ON reviews (job, n)")


#: ``{version: the step from the version before}``, applied in order
_MIGRATIONS = {2: _to_v2}


class StoreTooNew(ServeConfigError):
    """The store was written by a newer version of uprm (a higher schema version)."""


class QueueFull(Exception):
    """The queue holds ``max_queue`` waiting jobs already."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} jobs are waiting")
        self.waiting = waiting


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``."""

    seq: int
    id: str
    state: str
    source: str
    name: str
    video: str
    media_type: str
    size: int
    duration: float | None
    created: float
    started: float | None
    finished: float | None
    progress: float
    windows_done: int
    windows_total: int | None
    attempts: int
    error_code: str | None
    error: str | None
    result: str | None
    model: str | None = None


class JobStore:
    """The jobs database at ``path`` (created when missing)."""

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        db = self._conn()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store of an earlier schema version up to :data:`SCHEMA_VERSION`
        (module doc); refuse one of a later version."""
        with self._write() as db:
            version = max(1, int(db.execute("PRAGMA user_version").fetchone()[0]))
            if version > SCHEMA_VERSION:
                raise StoreTooNew(f"{self.path}: written by a newer uprm (schema {version}, this one reads up to "
                                  f"{SCHEMA_VERSION}); upgrade uprm or use another data folder")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- connections ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock from the start)."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    @staticmethod
    def _event(db: sqlite3.Connection, job: str, event: str, detail: str | None = None) -> None:
        db.execute("INSERT INTO events (job, event, at, pid, detail) VALUES (?, ?, ?, ?, ?)",
                   (job, event, time.time(), os.getpid(), detail))

    # -- the API's side ----------------------------------------------------------------------

    def waiting(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0])

    def add(self, job_id: str, *, source: str, name: str, video: str, media_type: str, size: int,
            duration: float | None, max_queue: int) -> Job:
        """Accept a job, unless ``max_queue`` jobs are waiting (:class:`QueueFull`)."""
        with self._write() as db:
            waiting = int(db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0])
            if waiting >= max_queue:
                raise QueueFull(waiting)
            db.execute("INSERT INTO jobs (id, state, source, name, video, media_type, size, duration, created) "
                       "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, source, name, video, media_type, size, duration, time.time()))
            self._event(db, job_id, "queued")
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(**dict(row)) if row is not None else None

    def position(self, job: Job) -> int | None:
        """How many queued jobs run before ``job`` (``None`` when it is not queued)."""
        if job.state != "queued":
            return None
        return int(self._conn().execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq < ?",
                                        (job.seq,)).fetchone()[0])

    def list(self, limit: int = 50, state: str | None = None) -> list[Job]:
        query, args = "SELECT * FROM jobs", []
        if state is not None:
            query, args = query + " WHERE state = ?", [state]
        rows = self._conn().execute(query + " ORDER BY seq DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [Job(**dict(r)) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        found = {r[0]: int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in STATES}

    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM events", ()
        if job_id is not None:
            query, args = query + " WHERE job = ?", (job_id,)
        return [dict(r) for r in self._conn().execute(query + " ORDER BY n", args).fetchall()]

    def delete(self, job_id: str) -> Job | None:
        """Forget a finished job (``done`` or ``failed``); returns it, or ``None``."""
        with self._write() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ? AND state IN ('done', 'failed')",
                             (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM reviews WHERE job = ?", (job_id,))
            self._event(db, job_id, "deleted")
        return Job(**dict(row))

    # -- the worker's side ---------------------------------------------------------------------

    def requeue_running(self) -> list[str]:
        """Jobs left ``running`` (their worker died) go back to ``queued``, keeping their
        place. Call only while holding the worker lock."""
        with self._write() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs WHERE state = 'running' ORDER BY seq")]
            for job_id in ids:
                db.execute("UPDATE jobs SET state = 'queued', progress = 0, windows_done = 0 WHERE id = ?",
                           (job_id,))
                self._event(db, job_id, "requeued", "the worker stopped while running it")
        return ids

    def claim(self, max_attempts: int) -> Job | None:
        """The oldest queued job, now ``running``; a job already tried ``max_attempts``
        times fails instead (its runs killed the worker)."""
        while True:
            with self._write() as db:
                row = db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
                if row is None:
                    return None
                job_id, attempts = row["id"], int(row["attempts"])
                if attempts >= max_attempts:
                    message = f"the worker stopped {attempts} times while running this job; giving up"
                    db.execute("UPDATE jobs SET state = 'failed', finished = ?, error_code = 'worker_died', "
                               "error = ? WHERE id = ?", (time.time(), message, job_id))
                    self._event(db, job_id, "failed", message)
                    continue
                db.execute("UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1, progress = 0,"
                           " windows_done = 0 WHERE id = ?", (time.time(), job_id))
                self._event(db, job_id, "started")
            return self.get(job_id)

    def set_progress(self, job_id: str, done: int, total: int) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        with self._write() as db:
            db.execute("UPDATE jobs SET progress = ?, windows_done = ?, windows_total = ? "
                       "WHERE id = ? AND state = 'running'", (fraction, done, total, job_id))

    def finish(self, job_id: str, result: str, model: str | None = None) -> None:
        """The job is done: its result's video id and the fingerprint of the checkpoint
        that ran it (``model``)."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'done', finished = ?, progress = 1, result = ?, model = ? "
                       "WHERE id = ? AND state = 'running'", (time.time(), result, model, job_id))
            self._event(db, job_id, "done")

    def fail(self, job_id: str, code: str, message: str) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'failed', finished = ?, error_code = ?, error = ? "
                       "WHERE id = ? AND state = 'running'", (time.time(), code, message, job_id))
            self._event(db, job_id, "failed", message)

    def release(self, job_id: str) -> None:
        """Put a running job back in the queue without counting the attempt (the worker
        was asked to stop)."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'queued', progress = 0, windows_done = 0, "
                       "attempts = MAX(0, attempts - 1) WHERE id = ? AND state = 'running'", (job_id,))
            self._event(db, job_id, "requeued", "the worker was stopped")

    # -- shared state: the worker's state, the experts, the model ---------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default

    def ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT id FROM jobs")}

    # -- reviews ---------------------------------------------------------------------------------

    def add_review(self, job_id: str, reviewer: str, segments: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Save a review of a finished job (it becomes the job's current review); the
        saved review, or ``None`` when the job is not ``done``."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ? AND state = 'done'", (job_id,)).fetchone() is None:
                return None
            cursor = db.execute("INSERT INTO reviews (job, reviewer, at, segments) VALUES (?, ?, ?, ?)",
                                (job_id, reviewer, time.time(), json.dumps(segments)))
            self._event(db, job_id, "reviewed", f"review {cursor.lastrowid} by {reviewer}")
            row = db.execute("SELECT * FROM reviews WHERE n = ?", (cursor.lastrowid,)).fetchone()
        return _review(row)

    def reviews(self, job_id: str) -> list[dict[str, Any]]:
        """Every review of a job, the current (latest) first."""
        rows = self._conn().execute("SELECT * FROM reviews WHERE job = ? ORDER BY n DESC", (job_id,)).fetchall()
        return [_review(r) for r in rows]

    def current_reviews(self) -> list[tuple[Job, dict[str, Any]]]:
        """``(job, its current review)`` of every reviewed job, in the order the jobs
        were accepted."""
        rows = self._conn().execute("SELECT * FROM reviews WHERE n IN (SELECT MAX(n) FROM reviews GROUP BY job)")
        found = [(self.get(r["job"]), _review(r)) for r in rows.fetchall()]
        return sorted(((job, review) for job, review in found if job is not None), key=lambda jr: jr[0].seq)


def _review(row: sqlite3.Row) -> dict[str, Any]:
    """A ``reviews`` row as ``{"n", "job", "reviewer", "at", "segments"}``."""
    return {"n": int(row["n"]), "job": row["job"], "reviewer": row["reviewer"], "at": float(row["at"]),
            "segments": json.loads(row["segments"])}
