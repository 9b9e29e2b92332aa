"""The settings of one ``uprm serve`` process, checked where they enter.

The API process and its worker process share them as JSON (``DATA/serve.json``), so
both run with exactly the same settings.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from uprm.errors import ServeConfigError
from uprm.options import DetectOptions
from uprm.settings import PathStr

if TYPE_CHECKING:
    from uprm.serve.store import Store

__all__ = ["MIN_TOKEN_LENGTH", "ServeConfig", "ServeConfigError", "is_loopback"]

#: a token shorter than this is refused when the server listens beyond loopback
MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
#: the environment variable in which a server hands its workers the store's whole URL
STORE_ENV = "UPRM_SERVE_STORE"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (``127.0.0.1``, ``::1``, ``localhost``)."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeConfig(DetectOptions):
    """Everything ``uprm serve`` needs: the server's settings and, inherited from
    :class:`~uprm.options.DetectOptions`, how its worker runs detection (window, stride,
    batch size, merge gap, max side, sidecar folder, expert options, device, threads,
    evidence sheets — as ``uprm detect``).

    Attributes:
        checkpoint: a trained checkpoint directory (``uprm train --out DIR``).
        data_dir: the jobs database (SQLite), the uploads and the results.
        media_root: the folder ``POST /v1/jobs {"path": ...}`` may read from (``None``:
            path jobs are refused).
        models_dir: the folder ``POST /v1/model {"checkpoint": ...}`` may switch to a
            checkpoint from (``None``: switching is refused; a restart with another
            ``checkpoint`` still switches).
        host, port: where to listen (``127.0.0.1`` by default; ``port=0`` picks a free one).
        token: the bearer token; required (at least 16 characters) when ``host`` is
            not a loopback address; when set it is checked everywhere, loopback too.
        max_upload_bytes: a larger upload is refused with 413.
        max_queue: jobs waiting to run; one more is refused with 429.
        max_attempts: a job whose worker died this many times while running it fails.
        threads: torch threads of each worker (``None``: torch's default, every core, split
            between the workers when there are several); fewer leave CPU to the API while a
            job runs.
        workers: worker processes on this host, each with its own model (on GPUs one per
            device, ``cuda:0``, ``cuda:1``, …, when ``device`` is ``auto``).
        store: where the jobs, reviews and results index are kept: ``None`` for SQLite in
            the data folder, or ``postgresql://user@host:port/database`` to share them
            with workers on other hosts (``uprm serve-worker``). Its password (better kept
            in ``PGPASSWORD`` or ``~/.pgpass``) is never written to ``serve.json``.
        lease: seconds a worker holds a job without renewing its claim; a job of a worker
            on another host that stopped renewing runs again after this long.
    """

    error: ClassVar[type[ServeConfigError]] = ServeConfigError

    checkpoint: PathStr
    data_dir: PathStr
    media_root: PathStr | None = None
    models_dir: PathStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    token: str | None = Field(None, repr=False)
    max_upload_bytes: int = Field(2 << 30, gt=0)
    max_queue: int = Field(100, gt=0)
    max_attempts: int = Field(3, gt=0)
    workers: int = Field(1, ge=1)
    store: str | None = Field(None, repr=False)
    lease: float = Field(30.0, gt=0)

    @field_validator("checkpoint", "data_dir", "media_root", "models_dir")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().resolve())

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        from uprm.serve.store import is_postgresql

        if value is None or not value.strip():
            return None
        if not is_postgresql(value.strip()):
            raise ValueError("give postgresql://user@host:port/database (without it the jobs are kept in SQLite in "
                             "the data folder)")
        return value.strip()

    @field_validator("token")
    @classmethod
    def _blank_token_is_none(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None

    def check_listen(self) -> None:
        """A server beyond loopback needs a token of at least 16 characters (checked by
        the app and the server, not by the worker, which never sees the token)."""
        if is_loopback(self.host):
            return
        if self.token is None:
            raise ServeConfigError(
                f"listening on {self.host} (beyond this machine) needs a bearer token: pass --token or set "
                "UPRM_TOKEN (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if len(self.token) < MIN_TOKEN_LENGTH:
            raise ServeConfigError(f"the token must have at least {MIN_TOKEN_LENGTH} characters when listening "
                                   f"on {self.host}")

    # -- the files of the data folder --------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        return self.root / "jobs.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def open_store(self) -> Store:
        """The job store these settings name (:func:`uprm.serve.store.open_store`)."""
        from uprm.serve.store import open_store

        return open_store(self.store, self.db_path)

    @property
    def store_name(self) -> str:
        """Where the jobs are, for messages (a PostgreSQL URL without its password)."""
        if self.store is None:
            return str(self.db_path)
        from uprm.serve.store import redact

        return redact(self.store)

    def check_paths(self) -> None:
        """The checkpoint, media root, models folder and sidecar folder exist; the data
        folder is made."""
        ckpt = Path(self.checkpoint)
        if not (ckpt / "config.json").is_file():
            raise ServeConfigError(f"checkpoint {ckpt}: no config.json (a `uprm train --out DIR` folder is needed)")
        for name in ("media_root", "models_dir", "sidecar_dir"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_dir():
                raise ServeConfigError(f"{name} {value}: not a folder")
        for folder in (self.root, self.uploads_dir, self.results_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # -- sharing with the worker -------------------------------------------------------

    def to_json(self) -> str:
        """The settings as JSON, without the token (the worker never needs it, so it is
        never written to disk) and without the store's password (the supervisor hands
        the store to its workers in :data:`STORE_ENV`)."""
        store = None if self.store is None else self.store_name
        return json.dumps({**self.to_dict(), "token": None, "store": store}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Settings written by :meth:`to_json` (keys a newer version added are ignored);
        the store is taken whole from :data:`STORE_ENV` when set."""
        data = json.loads(text)
        if os.environ.get(STORE_ENV):
            data["store"] = os.environ[STORE_ENV]
        return cls.load({k: v for k, v in data.items() if k in cls.model_fields})

    def write(self) -> Path:
        """``DATA/serve.json``: the settings the worker reads (no token)."""
        from uprm.utils import atomic_write_text

        path = self.root / "serve.json"
        atomic_write_text(path, self.to_json())
        return path
