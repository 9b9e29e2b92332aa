"""A throw-away PostgreSQL server for tests: Debian's ``initdb`` into a temporary folder,
``postgres`` on a free loopback port with its unix socket in that folder, stopped and
removed afterwards.

PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` (uid 65534,
through util-linux's ``setpriv``) in a folder that user owns. The programs are found as
``scripts/system-packages.sh`` finds them: on ``PATH``, else in ``$UPRM_PG_LIB/*/bin``
(default ``/usr/lib/postgresql``, where Debian keeps them), the newest version first.
Settings favour speed over durability (``fsync=off``): it is for tests only.

::

    with PostgresServer() as server:
        url = server.create_database("jobs")   # postgresql://uprm@127.0.0.1:PORT/jobs
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["PostgresMissing", "PostgresServer", "find_postgres"]

#: the user that runs the server when the tests run as root (``nobody``)
NOBODY = 65534
USER = "uprm"


class PostgresMissing(RuntimeError):
    """``initdb`` or ``postgres`` is not installed (Debian's ``postgresql`` package)."""


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def find_postgres(program: str = "initdb") -> Path:
    """The path of one of PostgreSQL's server programs (module doc), or :class:`PostgresMissing`."""
    found = shutil.which(program)
    if found:
        return Path(found)
    lib = Path(os.environ.get("UPRM_PG_LIB") or "/usr/lib/postgresql")
    candidates = sorted(lib.glob(f"*/bin/{program}"), key=_version, reverse=True)
    if not candidates:
        raise PostgresMissing(f"{program} is not on PATH nor in {lib}/*/bin: install Debian's postgresql "
                              "(scripts/system-packages.sh does)")
    return candidates[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server in a temporary folder (module doc); a context manager.

    Attributes:
        port: its loopback TCP port (the unix socket is in :attr:`folder`).
        folder: the temporary folder (data, socket, log), removed by :meth:`stop`.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.initdb, self.postgres = find_postgres("initdb"), find_postgres("postgres")
        self.folder = Path(tempfile.mkdtemp(prefix="uprm-pg-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = self.folder / "postgres.log"

    def _as_owner(self) -> list[str]:
        """The prefix that runs a program as the folder's owner: none, or ``setpriv`` to
        ``nobody`` when this process is root."""
        if os.geteuid() != 0:
            return []
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise PostgresMissing("running PostgreSQL as root needs setpriv (util-linux) to become nobody")
        return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

    def start(self) -> PostgresServer:
        prefix = self._as_owner()
        if prefix:
            os.chown(self.folder, NOBODY, NOBODY)
        data = self.folder / "data"
        init = subprocess.run([*prefix, str(self.initdb), "-D", str(data), "-U", USER, "--auth=trust",
                               "--encoding=UTF8", "--no-sync", "--no-instructions"],
                              capture_output=True, text=True, timeout=self.timeout)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stderr[-2000:]}")
        self.port = _free_port()
        settings = {"listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
                    "full_page_writes": "off", "max_connections": "200", "shared_buffers": "16MB"}
        options = [a for key, value in settings.items() for a in ("-c", f"{key}={value}")]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([*prefix, str(self.postgres), "-D", str(data), "-p", str(self.port),
                                          "-k", str(self.folder), *options],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while "ready to accept connections" not in self.log.read_text(errors="replace"):
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{log}")
            time.sleep(0.05)

    def url(self, database: str = "postgres") -> str:
        """``postgresql://uprm@127.0.0.1:PORT/database`` (trust authentication: no password)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (a fast shutdown, then a kill) and remove its folder."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
