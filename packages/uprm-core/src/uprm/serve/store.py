"""The job queue: SQLite (WAL) beside the uploads by default, or PostgreSQL
(:mod:`uprm.serve.pgstore`) when several hosts share it; the API and the workers meet
only here.

A job is ``queued`` when accepted, ``running`` while a worker runs it, then ``done``
or ``failed``. Jobs run in order of acceptance (``seq``). Every change of state is one
transaction and leaves a row in ``events`` (queued, started, requeued, done, failed),
so what happened to a job can be read back after any crash. Commits are durable
(SQLite: ``synchronous=FULL``): an accepted job survives a SIGKILL or a power cut.

**Several workers.** A claim (:meth:`Store.claim`) is one transaction that takes the
oldest queued job — SQLite's ``BEGIN IMMEDIATE`` write lock, PostgreSQL's ``SELECT … FOR
UPDATE SKIP LOCKED`` — so each job has exactly one claimer. The claimer writes its name
(``host:pid:machine``, :func:`worker_id`) and a **lease** into the row: the store's clock
plus ``lease`` seconds, renewed by the worker while it runs the job
(:meth:`Store.renew`). A running job whose worker is gone goes back to the queue, its
attempt counted (:meth:`Store.recover`, which every worker calls at its start and
between jobs): at once when the worker ran on this machine and its process has exited,
otherwise when its lease has expired (another host, or a hung process). A job whose
worker died ``max_attempts`` times fails instead of killing workers for ever. Progress,
the end of a job and a release name the worker, so a worker that lost its job (its lease
expired while it hung) cannot overwrite what the job's new worker writes.

Reviews (:meth:`Store.add_review`): an operator's verdict on a finished job's
segments, one row per saved review with who and when; the latest is the job's current
review and the earlier ones stay as its history. They are deleted with their job.

The schema has a version (SQLite's ``user_version``): a store written by an earlier
version is migrated when it is opened (:data:`SCHEMA_VERSION`; version 1 had no
``reviews`` table and no ``jobs.model`` column, version 2 no ``jobs.worker`` and
``jobs.lease``), in one transaction that the API and the workers may race for safely.

SQLite: each thread gets its own connection; writers wait for each other (``busy_timeout``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from uprm.errors import ServeConfigError

__all__ = ["LEASE", "SCHEMA_VERSION", "STATES", "Job", "JobStore", "QueueFull", "Store", "StoreTooNew",
           "open_store", "process_alive", "redact", "worker_id"]

STATES = ("queued", "running", "done", "failed")
#: the version of the tables this code reads and writes (``PRAGMA user_version``)
SCHEMA_VERSION = 3
#: seconds a claim holds a job without a renewal (:meth:`Store.renew`)
LEASE = 30.0
#: why a job went back to the queue
DEAD = "the worker stopped while running it"
STOPPED = "the worker was stopped"

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


def _to_v3(db: sqlite3.Connection) -> None:
    """Version 3: the worker that claimed a running job and its lease (several workers)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
    for column, kind in (("worker", "TEXT"), ("lease", "REAL")):
        if column not in columns:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")


#: ``{version: the step from the version before}``, applied in order
_MIGRATIONS = {2: _to_v2, 3: _to_v3}


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
    worker: str | None = None
    lease: float | None = None


# -- who runs a job --------------------------------------------------------------------------------


def _machine() -> str:
    """This machine and PID namespace (a short hash of the boot id and the namespace): two
    containers that share a host name never judge each other's process ids."""
    parts = []
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        with contextlib.suppress(OSError):
            parts.append(Path(path).read_text().strip() if "boot" in path else os.readlink(path))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def worker_id(pid: int | None = None) -> str:
    """The name a worker writes into the jobs it claims: ``host:pid:machine``."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{_machine()}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    with contextlib.suppress(OSError):
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].startswith("Z")
    return True


def _gone_here(worker: str) -> bool:
    """Whether ``worker`` (a :func:`worker_id`) ran on this machine and has exited."""
    host, pid, machine = [*worker.rsplit(":", 2), "", ""][:3]
    if host != socket.gethostname() or machine != _machine() or not pid.isdigit():
        return False
    return not process_alive(int(pid))


# -- the store ---------------------------------------------------------------------------------------


class _Connection(Protocol):
    def execute(self, sql: str, args: Any = ...) -> Any: ...


class Store:
    """The store's operations, in SQL that SQLite and PostgreSQL both read (``?``
    placeholders; :mod:`uprm.serve.pgstore` translates them). A subclass gives the
    transactions (:meth:`_write`, :meth:`_read`), the store's clock in SQL (:attr:`NOW`)
    and what a claim appends to lock the row it takes (:attr:`LOCK_ROWS`)."""

    #: SQL for the store's clock, seconds since the epoch (leases are judged by one clock)
    NOW: ClassVar[str] = "(julianday('now') - 2440587.5) * 86400.0"
    #: appended to the SELECTs of a claim and a recovery
    LOCK_ROWS: ClassVar[str] = ""
    #: where the store is, for messages (a path, or a URL without its password)
    location: str = ""

    @contextmanager
    def _write(self) -> Iterator[_Connection]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    @contextmanager
    def _read(self) -> Iterator[_Connection]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _lock_queue(self, db: _Connection) -> None:
        """Serialise acceptances (the queue limit); SQLite's write lock already does."""

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _event(db: _Connection, job: str, event: str, detail: str | None = None) -> None:
        db.execute("INSERT INTO events (job, event, at, pid, detail) VALUES (?, ?, ?, ?, ?)",
                   (job, event, time.time(), os.getpid(), detail))

    def _one(self, sql: str, args: tuple = ()) -> Any:
        with self._read() as db:
            return db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        with self._read() as db:
            return list(db.execute(sql, args).fetchall())

    # -- the API's side ----------------------------------------------------------------------

    def waiting(self) -> int:
        return int(self._one("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'")["n"])

    def add(self, job_id: str, *, source: str, name: str, video: str, media_type: str, size: int,
            duration: float | None, max_queue: int) -> Job:
        """Accept a job, unless ``max_queue`` jobs are waiting (:class:`QueueFull`)."""
        with self._write() as db:
            self._lock_queue(db)
            waiting = int(db.execute("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'").fetchone()["n"])
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
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job(**dict(row)) if row is not None else None

    def position(self, job: Job) -> int | None:
        """How many queued jobs run before ``job`` (``None`` when it is not queued)."""
        if job.state != "queued":
            return None
        return int(self._one("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued' AND seq < ?", (job.seq,))["n"])

    def list(self, limit: int = 50, state: str | None = None) -> list[Job]:
        query, args = "SELECT * FROM jobs", []
        if state is not None:
            query, args = query + " WHERE state = ?", [state]
        return [Job(**dict(r)) for r in self._all(query + " ORDER BY seq DESC LIMIT ?", (*args, int(limit)))]

    def counts(self) -> dict[str, int]:
        found = {r["state"]: int(r["n"]) for r in self._all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")}
        return {s: found.get(s, 0) for s in STATES}

    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM events", ()
        if job_id is not None:
            query, args = query + " WHERE job = ?", (job_id,)
        return [dict(r) for r in self._all(query + " ORDER BY n", args)]

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

    # -- the workers' side ----------------------------------------------------------------------

    def requeue_running(self) -> list[str]:
        """Every job left ``running`` goes back to ``queued``, keeping its place. Only for
        a store no worker uses (workers call :meth:`recover`, which spares live ones)."""
        with self._write() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE state = 'running' ORDER BY seq")]
            for job_id in ids:
                self._requeue(db, job_id, DEAD)
        return ids

    def _requeue(self, db: _Connection, job_id: str, why: str) -> None:
        db.execute("UPDATE jobs SET state = 'queued', progress = 0, windows_done = 0, worker = NULL, lease = NULL "
                   "WHERE id = ?", (job_id,))
        self._event(db, job_id, "requeued", why)

    def recover(self) -> list[str]:
        """Running jobs whose worker is gone go back to the queue, keeping their place and
        their attempts (module doc): a worker of this machine whose process has exited, a
        lease that expired, or no worker recorded (a store of schema 2)."""
        with self._write() as db:
            rows = db.execute(f"SELECT id, worker, (lease IS NULL OR lease < {self.NOW}) AS expired FROM jobs "
                              f"WHERE state = 'running' ORDER BY seq{self.LOCK_ROWS}").fetchall()
            ids = []
            for row in rows:
                worker = row["worker"]
                if worker is None or _gone_here(worker):
                    why = DEAD
                elif row["expired"]:
                    why = f"the worker {worker.rsplit(':', 1)[0]} stopped renewing its lease"
                else:
                    continue
                self._requeue(db, row["id"], why)
                ids.append(row["id"])
        return ids

    def claim(self, max_attempts: int, *, worker: str | None = None, lease: float = LEASE) -> Job | None:
        """The oldest queued job, now ``running`` under ``worker`` (default: this process,
        :func:`worker_id`) for ``lease`` seconds; a job already tried ``max_attempts``
        times fails instead (its runs killed workers)."""
        worker = worker or worker_id()
        while True:
            with self._write() as db:
                row = db.execute("SELECT id, attempts FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
                                 + self.LOCK_ROWS).fetchone()
                if row is None:
                    return None
                job_id, attempts = row["id"], int(row["attempts"])
                if attempts >= max_attempts:
                    message = f"the worker stopped {attempts} times while running this job; giving up"
                    db.execute("UPDATE jobs SET state = 'failed', finished = ?, error_code = 'worker_died', "
                               "error = ? WHERE id = ?", (time.time(), message, job_id))
                    self._event(db, job_id, "failed", message)
                    continue
                db.execute("UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1, progress = 0, "
                           f"windows_done = 0, worker = ?, lease = {self.NOW} + ? WHERE id = ?",
                           (time.time(), worker, float(lease), job_id))
                self._event(db, job_id, "started")
            return self.get(job_id)

    @staticmethod
    def _mine(worker: str | None) -> tuple[str, tuple]:
        """The condition that a running job is still ``worker``'s (any worker's when ``None``)."""
        return ("", ()) if worker is None else (" AND worker = ?", (worker,))

    def renew(self, job_id: str, worker: str, lease: float = LEASE) -> bool:
        """Extend ``worker``'s lease on a running job; ``False`` when the job is no longer
        its own (it was given to another worker after the lease expired)."""
        with self._write() as db:
            cursor = db.execute(f"UPDATE jobs SET lease = {self.NOW} + ? WHERE id = ? AND state = 'running' "
                                "AND worker = ?", (float(lease), job_id, worker))
            return cursor.rowcount == 1

    def set_progress(self, job_id: str, done: int, total: int, *, worker: str | None = None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        mine, args = self._mine(worker)
        with self._write() as db:
            db.execute("UPDATE jobs SET progress = ?, windows_done = ?, windows_total = ? "
                       "WHERE id = ? AND state = 'running'" + mine, (fraction, done, total, job_id, *args))

    def finish(self, job_id: str, result: str, model: str | None = None, *, worker: str | None = None) -> bool:
        """The job is done: its result's video id and the fingerprint of the checkpoint
        that ran it (``model``). ``False`` (and nothing written) when the job is not
        running, or not ``worker``'s."""
        mine, args = self._mine(worker)
        with self._write() as db:
            cursor = db.execute("UPDATE jobs SET state = 'done', finished = ?, progress = 1, result = ?, model = ?, "
                                "lease = NULL WHERE id = ? AND state = 'running'" + mine,
                                (time.time(), result, model, job_id, *args))
            if cursor.rowcount != 1:
                return False
            self._event(db, job_id, "done")
        return True

    def fail(self, job_id: str, code: str, message: str, *, worker: str | None = None) -> bool:
        mine, args = self._mine(worker)
        with self._write() as db:
            cursor = db.execute("UPDATE jobs SET state = 'failed', finished = ?, error_code = ?, error = ?, "
                                "lease = NULL WHERE id = ? AND state = 'running'" + mine,
                                (time.time(), code, message, job_id, *args))
            if cursor.rowcount != 1:
                return False
            self._event(db, job_id, "failed", message)
        return True

    def release(self, job_id: str, *, worker: str | None = None) -> bool:
        """Put a running job back in the queue without counting the attempt (the worker
        was asked to stop)."""
        mine, args = self._mine(worker)
        with self._write() as db:
            cursor = db.execute("UPDATE jobs SET state = 'queued', progress = 0, windows_done = 0, worker = NULL, "
                                "lease = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                                "WHERE id = ? AND state = 'running'" + mine, (job_id, *args))
            if cursor.rowcount != 1:
                return False
            self._event(db, job_id, "requeued", STOPPED)
        return True

    # -- shared state: the workers' states, the experts, the model ---------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row is not None else default

    def ids(self) -> set[str]:
        return {r["id"] for r in self._all("SELECT id FROM jobs")}

    # -- reviews ---------------------------------------------------------------------------------

    def add_review(self, job_id: str, reviewer: str, segments: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Save a review of a finished job (it becomes the job's current review); the
        saved review, or ``None`` when the job is not ``done``."""
        with self._write() as db:
            if db.execute("SELECT 1 AS one FROM jobs WHERE id = ? AND state = 'done'", (job_id,)).fetchone() is None:
                return None
            row = db.execute("INSERT INTO reviews (job, reviewer, at, segments) VALUES (?, ?, ?, ?) RETURNING *",
                             (job_id, reviewer, time.time(), json.dumps(segments))).fetchall()[0]
            self._event(db, job_id, "reviewed", f"review {row['n']} by {reviewer}")
        return _review(row)

    def reviews(self, job_id: str) -> list[dict[str, Any]]:
        """Every review of a job, the current (latest) first."""
        return [_review(r) for r in self._all("SELECT * FROM reviews WHERE job = ? ORDER BY n DESC", (job_id,))]

    def current_reviews(self) -> list[tuple[Job, dict[str, Any]]]:
        """``(job, its current review)`` of every reviewed job, in the order the jobs
        were accepted."""
        rows = self._all("SELECT * FROM reviews WHERE n IN (SELECT MAX(n) FROM reviews GROUP BY job)")
        found = [(self.get(r["job"]), _review(r)) for r in rows]
        return sorted(((job, review) for job, review in found if job is not None), key=lambda jr: jr[0].seq)


class JobStore(Store):
    """The SQLite jobs database at ``path`` (created when missing)."""

    #: what a second job with the same id raises
    integrity_error: ClassVar[type[Exception]] = sqlite3.IntegrityError

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.timeout = timeout
        self._local = threading.local()
        #: every thread's connection, with its thread: a thread that ended (a request pool's thread let go
        #: when idle) has its connection closed when the next one opens — kept, each held 2 descriptors
        self._every: list[tuple[threading.Thread, sqlite3.Connection]] = []
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
                kept = []
                for thread, other in self._every:
                    if thread.is_alive():
                        kept.append((thread, other))
                    else:
                        other.close()
                self._every = [*kept, (threading.current_thread(), db)]
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

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    def close(self) -> None:
        with self._lock:
            for _, db in self._every:
                db.close()
            self._every.clear()
        self._local = threading.local()


def _review(row: Any) -> dict[str, Any]:
    """A ``reviews`` row as ``{"n", "job", "reviewer", "at", "segments"}``."""
    return {"n": int(row["n"]), "job": row["job"], "reviewer": row["reviewer"], "at": float(row["at"]),
            "segments": json.loads(row["segments"])}


def redact(url: str) -> str:
    """A store URL without its password (in the user part or a ``password=`` parameter),
    for messages, logs and ``serve.json``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[-1]}"
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def is_postgresql(store: str | None) -> bool:
    """Whether ``--store`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return store is not None and store.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_store(store: str | None, sqlite_path: str | os.PathLike, **options: Any) -> Store:
    """The store ``--store`` names: ``None`` is SQLite at ``sqlite_path`` (the data
    folder's ``jobs.sqlite3``); ``postgresql://…`` a PostgreSQL database
    (:class:`uprm.serve.pgstore.PostgresStore`, psycopg imported only then)."""
    if store is None:
        return JobStore(sqlite_path)
    if is_postgresql(store):
        from uprm.serve.pgstore import PostgresStore

        return PostgresStore(store, **options)
    raise ServeConfigError(f"--store {store!r}: give postgresql://user@host:port/database "
                           "(without --store the jobs are kept in SQLite in the data folder)")
