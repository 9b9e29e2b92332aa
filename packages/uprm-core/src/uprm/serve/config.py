"""The settings of one ``uprm serve`` process, checked where they enter.

The API process and its worker process share them as JSON (``DATA/serve.json``), so
both run with exactly the same settings.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from uprm.errors import ServeConfigError
from uprm.options import DetectOptions
from uprm.settings import PathStr

__all__ = ["MIN_TOKEN_LENGTH", "ServeConfig", "ServeConfigError", "is_loopback"]

#: a token shorter than this is refused when the server listens beyond loopback
MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


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
        threads: torch threads of the worker (``None``: torch's default, every core); fewer
            leave CPU to the API while a job runs.
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

    @field_validator("checkpoint", "data_dir", "media_root", "models_dir")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().resolve())

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
        never written to disk)."""
        return json.dumps({**self.to_dict(), "token": None}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Settings written by :meth:`to_json` (keys a newer version added are ignored)."""
        data = json.loads(text)
        return cls.load({k: v for k, v in data.items() if k in cls.model_fields})

    def write(self) -> Path:
        """``DATA/serve.json``: the settings the worker reads (no token)."""
        from uprm.utils import atomic_write_text

        path = self.root / "serve.json"
        atomic_write_text(path, self.to_json())
        return path
