"""Several hosts watching one camera list: ``--shard K/N`` keeps the K-th of N shares,
and every alert names the host and the shard (plain Python, no torch, no PyAV).

The rule: the camera at position ``i`` (1-based) of the list belongs to shard
``(i - 1) % N + 1``, so shard K takes cameras K, K+N, K+2N, ... The shares differ by at
most one camera, and each host computes its own from the same list without talking to
the others, so the list must be given in the same order on every host (one file or
ConfigMap). Cameras keep the name they have in the whole list (an unnamed one at position
7 is ``cam7`` on whichever host watches it). Changing N moves most cameras (each host
restarts with its new share); adding a camera at the end moves none.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["HOST_ENV", "host_name", "parse_shard", "select_shard", "shard_of"]

#: the environment variable that names this host in alert records (else the host name)
HOST_ENV = "UPRM_HOST_NAME"

_SHARD = re.compile(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*")

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)``; a ``ValueError`` saying what is wrong (the caller names
    the flag or field): not ``K/N`` with whole numbers, ``N`` below 1, ``K`` outside 1..N."""
    match = _SHARD.fullmatch(str(text))
    if match is None:
        raise ValueError("expected K/N with whole numbers K and N, e.g. 2/4 (the 2nd of 4 shares)")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1:
        raise ValueError("N must be at least 1")
    if not 1 <= k <= n:
        raise ValueError("K must be between 1 and N")
    return k, n


def shard_of(position: int, n: int) -> int:
    """The shard (1..n) of the camera at ``position`` (1-based) of the list."""
    return (position - 1) % n + 1


def select_shard(items: Sequence[T], k: int, n: int) -> list[T]:
    """The items of shard ``k`` of ``n`` (see the module doc), in list order."""
    return [item for position, item in enumerate(items, start=1) if shard_of(position, n) == k]


def host_name(given: str | None = None) -> str:
    """The name alerts give this host: ``given``, else ``$UPRM_HOST_NAME``, else
    :func:`socket.gethostname` (a Kubernetes pod's name)."""
    return (given or os.environ.get(HOST_ENV) or socket.gethostname()).strip()
