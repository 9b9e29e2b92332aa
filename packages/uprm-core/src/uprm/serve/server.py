"""Binding the socket and running uvicorn with the app (``uprm serve``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from uprm.serve.config import ServeConfig, ServeConfigError

__all__ = ["bind", "data_lock", "run"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


@contextlib.contextmanager
def data_lock(root: Path) -> Iterator[None]:
    """One server per data folder: ``DATA/serve.lock`` held while it runs (released by
    the kernel when the process dies, even by SIGKILL)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "serve.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServeConfigError(f"another uprm serve is using the data folder {root}") from None
        yield
    finally:
        os.close(fd)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(config: ServeConfig, log_level: str = "info", announce: Callable[[str], None] = print) -> None:
    """Serve ``config`` until interrupted: check it, lock the data folder, bind, print the
    URL (``announce``), run uvicorn (the worker starts with the app)."""
    import uvicorn

    from uprm.serve.app import create_app

    config.check_listen()
    config.check_paths()
    with data_lock(config.root):
        sock = bind(config.host, config.port)
        app = create_app(config)
        server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, server_header=False,
                                               timeout_graceful_shutdown=10))
        announce(url_of(sock))
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
