"""The settings of one ``uprm serve`` process, checked where they enter.

The API process and its worker process share them as JSON (``DATA/serve.json``), so
both run with exactly the same settings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.errors import ServeConfigError

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


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``uprm serve`` needs.

    Attributes:
        checkpoint: a trained checkpoint directory (``uprm train --out DIR``).
        data_dir: the jobs database (SQLite), the uploads and the results.
        media_root: the folder ``POST /v1/jobs {"path": ...}`` may read from (``None``:
            path jobs are refused).
        host, port: where to listen (``127.0.0.1`` by default; ``port=0`` picks a free one).
        token: the bearer token; required (at least 16 characters) when ``host`` is
            not a loopback address; when set it is checked everywhere, loopback too.
        max_upload_bytes: a larger upload is refused with 413.
        max_queue: jobs waiting to run; one more is refused with 429.
        max_attempts: a job whose worker died this many times while running it fails.
        window, stride, batch_size, merge_gap, max_side, sidecar_dir, expert_options,
        device, evidence: detection settings, as ``uprm detect``.
        threads: torch threads of the worker (``None``: torch's default, every core); fewer
            leave CPU to the API while a job runs.
    """

    checkpoint: str
    data_dir: str
    media_root: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    max_upload_bytes: int = 2 << 30
    max_queue: int = 100
    max_attempts: int = 3
    window: float = 8.0
    stride: float = 4.0
    batch_size: int = 4
    merge_gap: float | None = None
    max_side: int | None = None
    sidecar_dir: str | None = None
    expert_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "auto"
    evidence: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("checkpoint", "data_dir", "media_root", "sidecar_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(Path(value).expanduser().resolve()))
        if self.token is not None and not self.token.strip():
            object.__setattr__(self, "token", None)
        self._check_numbers()

    def _check_numbers(self) -> None:
        positive = {"max_upload_bytes": self.max_upload_bytes, "max_queue": self.max_queue,
                    "max_attempts": self.max_attempts, "window": self.window, "stride": self.stride,
                    "batch_size": self.batch_size}
        for name, value in positive.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ServeConfigError(f"{name} must be a positive number, got {value!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ServeConfigError(f"threads must be a positive integer, got {self.threads!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ServeConfigError(f"port must be 0-65535, got {self.port!r}")

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
        """The checkpoint, media root and sidecar folder exist; the data folder is made."""
        ckpt = Path(self.checkpoint)
        if not (ckpt / "config.json").is_file():
            raise ServeConfigError(f"checkpoint {ckpt}: no config.json (a `uprm train --out DIR` folder is needed)")
        for name in ("media_root", "sidecar_dir"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_dir():
                raise ServeConfigError(f"{name} {value}: not a folder")
        for folder in (self.root, self.uploads_dir, self.results_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # -- sharing with the worker -------------------------------------------------------

    def to_json(self) -> str:
        """The settings as JSON, without the token (the worker never needs it, so it is
        never written to disk)."""
        return json.dumps({**dataclasses.asdict(self), "token": None}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self) -> Path:
        """``DATA/serve.json``: the settings the worker reads (no token)."""
        from uprm.utils import atomic_write_text

        path = self.root / "serve.json"
        atomic_write_text(path, self.to_json())
        return path

    def requested(self) -> dict[str, Any]:
        """The detection settings recorded in each result (as ``uprm detect`` records them)."""
        return {"window": float(self.window), "stride": float(self.stride), "merge_gap": self.merge_gap,
                "max_side": self.max_side, "sidecar_dir": self.sidecar_dir}
