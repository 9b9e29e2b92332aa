"""The job store in PostgreSQL (``uprm serve --store postgresql://…``), for workers on
several hosts.

The same tables and operations as the SQLite store (:class:`uprm.serve.store.Store`
holds the SQL; this class gives it PostgreSQL's transactions): jobs, events, reviews and
the meta table, with the types PostgreSQL wants (``BIGSERIAL`` keys, ``DOUBLE
PRECISION`` times). A claim takes the oldest queued row with ``SELECT … FOR UPDATE SKIP
LOCKED`` inside its transaction, so concurrent claimers on any host each get another
job and never wait for each other; acceptances take a transaction-scoped advisory lock
so the queue limit holds under concurrent uploads; leases are judged by the database's
clock (``clock_timestamp()``), so the hosts' clocks need not agree.

Schema versions: the version is the ``schema_version`` row of ``meta``; the tables are
created, and later versions' steps applied, under an advisory lock, so processes that
open a new database at once do not race. A database written by a newer uprm is refused
(:class:`~uprm.serve.store.StoreTooNew`).

psycopg 3 and psycopg-pool are imported here only (the ``postgresql`` extra); each
process keeps a small pool of connections (threads of the API share it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from uprm.errors import MissingExtraError, ServeConfigError
from uprm.serve.store import SCHEMA_VERSION, Store, StoreTooNew, redact

__all__ = ["PostgresStore"]

#: the key of ``pg_advisory_xact_lock`` that serialises schema changes and acceptances
_SCHEMA_LOCK = 0x75707231  # "upr1"
_QUEUE_LOCK = 0x75707232

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    source TEXT NOT NULL CHECK (source IN ('upload', 'path')),
    name TEXT NOT NULL,
    video TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    duration DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL,
    started DOUBLE PRECISION,
    finished DOUBLE PRECISION,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    windows_done INTEGER NOT NULL DEFAULT 0,
    windows_total INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error TEXT,
    result TEXT,
    model TEXT,
    worker TEXT,
    lease DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS events (
    n BIGSERIAL PRIMARY KEY,
    job TEXT NOT NULL,
    event TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    pid INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events (job);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    n BIGSERIAL PRIMARY KEY,
    job TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    segments TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_job ON reviews (job, n);
"""

#: ``{version: SQL from the version before}`` for databases created by an earlier uprm
#: (PostgreSQL stores began at version 3, so none yet)
_MIGRATIONS: dict[int, str] = {}


def _psycopg() -> tuple[Any, Any, Any]:
    """psycopg, its ``dict_row`` and psycopg_pool's ``ConnectionPool``; the install line
    of the ``postgresql`` extra when they are missing."""
    try:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool
    except ImportError as exc:
        missing = ["psycopg[binary]", "psycopg-pool"] if "psycopg_pool" not in str(exc) else ["psycopg-pool"]
        raise MissingExtraError("--store postgresql://…", {"postgresql": missing}) from exc
    return psycopg, dict_row, ConnectionPool


class _Sql:
    """A psycopg connection that reads the store's ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Any = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(args))


class PostgresStore(Store):
    """The jobs database at ``url`` (``postgresql://user:password@host:port/database``;
    libpq's environment — ``PGPASSWORD``, ``~/.pgpass`` — works too). The tables are
    created when missing.

    Args:
        pool_size: the most connections this process opens.
        timeout: seconds to wait for the server, or for a free connection.
    """

    NOW: ClassVar[str] = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    LOCK_ROWS: ClassVar[str] = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, pool_size: int = 8, timeout: float = 30.0) -> None:
        psycopg, dict_row, ConnectionPool = _psycopg()
        self.url, self.location = url, redact(url)
        self.integrity_error = psycopg.errors.IntegrityError
        try:
            with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
                self._migrate(_Sql(conn))
        except psycopg.OperationalError as exc:
            raise ServeConfigError(f"cannot reach the store {self.location}: {str(exc).strip()}") from exc
        self.pool = ConnectionPool(url, min_size=1, max_size=max(1, pool_size), timeout=timeout, open=True,
                                   kwargs={"row_factory": dict_row}, check=ConnectionPool.check_connection,
                                   name="uprm-store")

    def _migrate(self, db: _Sql) -> None:
        """Create the tables, or bring them to :data:`SCHEMA_VERSION` (module doc)."""
        db.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        row = None
        if db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreTooNew(f"{self.location}: written by a newer uprm (schema {version}, this one reads up to "
                              f"{SCHEMA_VERSION}); upgrade uprm or use another database")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            db.execute(_MIGRATIONS[step])
        db.conn.execute(_SCHEMA)
        db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    @contextmanager
    def _write(self) -> Iterator[_Sql]:
        """One transaction, committed when the block ends (rolled back on an error)."""
        with self.pool.connection() as conn:
            yield _Sql(conn)

    _read = _write

    def _lock_queue(self, db: Any) -> None:
        db.execute(f"SELECT pg_advisory_xact_lock({_QUEUE_LOCK})")

    def close(self) -> None:
        self.pool.close()
