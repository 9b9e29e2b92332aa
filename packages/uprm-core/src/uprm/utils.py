"""Small shared utilities: JSON-safe values, atomic file writes, and telling a
``torch.save`` file by its first bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Throttle", "atomic_path", "atomic_write_json", "atomic_write_text", "is_torch_save", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with everything JSON cannot hold turned into a string (paths, tuples
    become lists, modules and tensors become their type name)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one
    ``os.replace``, on error it is removed. A reader never sees a half-written file,
    and a killed writer leaves the old file (or none) in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file owner-only; give it the mode a plain open() would
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content — what identifies a weights file in an expert's
    ``extraction_config()`` (content, not name or place). Memoised per (path, size, mtime)."""
    resolved = Path(path).expanduser().resolve()
    st = resolved.stat()
    key = (str(resolved), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with resolved.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest


def is_torch_save(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 4 bytes) is a ``torch.save``
    file: a zip archive, or from old versions a raw pickle (protocol 2-5)."""
    return head[:4] == b"PK\x03\x04" or (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5)


class Throttle:
    """Lets something happen at most every ``every`` seconds of ``clock``, the first
    time at once: it starts from "never happened", not from the clock's zero (a
    ``time.monotonic()`` of a machine booted less than ``every`` seconds ago must not
    swallow the first report).

    >>> t = Throttle(1.0, clock=iter([100.0, 100.5, 101.2]).__next__)
    >>> [t.ready(), t.ready(), t.ready()]
    [True, False, True]
    """

    def __init__(self, every: float, clock: Any = None) -> None:
        import time

        self.every = float(every)
        self.clock = clock or time.monotonic
        self.last: float | None = None

    def ready(self, force: bool = False) -> bool:
        """Whether it may happen now (``force``: yes, and the clock restarts); when
        ``True``, the time is taken as the last time it happened."""
        now = self.clock()
        if force or self.last is None or now - self.last >= self.every:
            self.last = now
            return True
        return False
