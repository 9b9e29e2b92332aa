"""A guard that refuses every network socket of the Python process it is loaded into.

Not a test module: it is loaded two ways.

- As the head of a ``python -c`` script (``tests/test_offline.py`` prepends its source):
  the refused attempts are then in the global ``attempts``.
- As ``sitecustomize`` (a test copies it as ``sitecustomize.py`` into a folder it puts
  first on ``PYTHONPATH``; never import it into the test process), so that every Python
  process a command starts — ``uprm serve``'s worker too — is guarded from its first line.

A refused attempt raises ``OSError`` (as a machine without a network would) and is
appended to the file named by ``UPRM_SOCKET_LOG`` (pid, command, address), so an
attempt that the code under test catches and hides is still seen. Unix sockets are
always allowed; loopback addresses only with ``UPRM_SOCKET_LOOPBACK=1`` (a command that
is itself a local server, and the test's client talking to it).

Python-level only: a C library opening its own sockets (FFmpeg reading a URL) is not
seen, so the main paths are run on local files.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

attempts: list = []
_LOG = os.environ.get("UPRM_SOCKET_LOG")
_LOOPBACK = os.environ.get("UPRM_SOCKET_LOOPBACK") == "1"
_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def _loopback(host) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard (a server binding)
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(*args, **kwargs):
    attempts.append(args[:2])
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {' '.join(sys.argv[:3])!r}: {args[:2]!r}\n")
    raise OSError(f"network access attempted: {args[:2]!r}")


def _allowed(sock, address) -> bool:
    if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        return True
    host = address[0] if isinstance(address, tuple) else address
    return _LOOPBACK and _loopback(host)


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname


def _guarded_connect(self, address):
    if _allowed(self, address):
        return _connect(self, address)
    return _refuse(address)


def _guarded_connect_ex(self, address):
    if _allowed(self, address):
        return _connect_ex(self, address)
    return _refuse(address)


def _guarded_sendto(self, data, *args):
    address = args[-1]
    if _allowed(self, address):
        return _sendto(self, data, *args)
    return _refuse(address)


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    if _LOOPBACK and _loopback(host):
        return _getaddrinfo(host, port, *args, **kwargs)
    return _refuse(host, port)


def _guarded_gethostbyname(host):
    if _LOOPBACK and _loopback(host):
        return _gethostbyname(host)
    return _refuse(host)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
socket.socket.sendto = _guarded_sendto
socket.getaddrinfo = _guarded_getaddrinfo
socket.gethostbyname = _guarded_gethostbyname
if not _LOOPBACK:  # with loopback allowed it goes through the guarded getaddrinfo and connect
    socket.create_connection = _refuse

