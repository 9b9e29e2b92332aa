"""Where alerts go: an append-only JSONL file (each record flushed and fsynced as it is
written), a webhook (POSTed from a background thread with a bounded queue, retried with
back-off by tenacity until delivered, so a slow or dead receiver never holds up the video
and gets every record once it is back: at least once), and the records themselves.

A record (one JSON object per line of ``--alerts``, and the body of each POST)::

    {"type": "open" | "close", "id": "cam1-20260101T120000Z-1", "camera": "cam1",
     "source": "udp://127.0.0.1:5000", "number": 1,
     "start": 12.0, "end": 20.0,                       # stream seconds
     "start_wall": "2026-01-01T12:00:00.125+00:00",    # wall clock (UTC) of those moments
     "end_wall": "2026-01-01T12:00:08.125+00:00",
     "score": 0.93, "cause": "a person taking an unattended bag",
     "category": "Stealing", "severity": "medium",     # from the taxonomy's cause phrasings; null when unknown
     "expert_weights": {"background": 0.41, "coarse": 0.59}, "windows": 3,
     "written_at": "2026-01-01T12:00:08.900+00:00",
     "host": "watch-0", "shard": "1/2",               # who raised it: --host-name (else the host name), --shard
     "latency_s": 0.41,                                # open: newest frame of the window -> this record
     "reason": "cooldown", "duration": 8.0,            # close only
     "clip": "clips/cam1-20260101T120000Z-1.mp4"}      # with --clips (written post-roll seconds after close)

``category`` and ``severity`` come from the site taxonomy (``--taxonomy``; default
UCF-Crime's 13 categories and Normal): the category whose cause phrasing the event's cause
contains (:mod:`uprm.detection.categories`), else ``null`` for both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_never, wait_exponential

from uprm._version import __version__
from uprm.taxonomy import Taxonomy, load_taxonomy
from uprm.watch.events import Event
from uprm.watch.shards import host_name

__all__ = ["AlertLog", "WebhookSender", "alert_record", "iso_time", "read_alerts"]

log = logging.getLogger("uprm.watch")


def iso_time(epoch: float | None) -> str | None:
    """``time.time()`` → ISO-8601 UTC with milliseconds (``None`` stays ``None``)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def alert_record(kind: str, event: Event, *, source: str, written_at: float, clip: str | None = None,
                 latency: float | None = None, taxonomy: Taxonomy | None = None, host: str | None = None,
                 shard: str = "1/1") -> dict[str, Any]:
    """The record of ``event`` opening (``kind="open"``) or closing (``"close"``), with the
    category and severity ``taxonomy`` (default: UCF-Crime's) gives its cause, and the
    ``host`` (default :func:`~uprm.watch.shards.host_name`) and ``shard`` that raised it."""
    # here, not at the top: importing uprm.detection loads numpy, and the watcher's event
    # logic and ``uprm watch --help`` stay light (test_schedule's import test)
    from uprm.detection.categories import category_of_cause

    category = category_of_cause(event.cause, load_taxonomy(taxonomy))
    record: dict[str, Any] = {
        "type": kind, "id": event.id, "camera": event.camera, "source": source, "number": event.number,
        "start": round(event.start, 3), "end": round(event.end, 3),
        "start_wall": iso_time(event.start_wall), "end_wall": iso_time(event.end_wall),
        "score": round(event.score, 6), "cause": event.cause,
        "category": category.name if category is not None else None,
        "severity": category.severity if category is not None else None,
        "expert_weights": {k: round(v, 6) for k, v in event.expert_weights.items()},
        "windows": event.windows, "written_at": iso_time(written_at),
        "host": host or host_name(), "shard": shard,
    }
    if latency is not None:
        record["latency_s"] = round(latency, 3)
    if kind == "close":
        record["reason"] = event.reason
        record["duration"] = round(event.end - event.start, 3)
    if clip is not None:
        record["clip"] = clip
    return record


class AlertLog:
    """Appends records to a JSONL file: each record is one ``write`` of one whole line on
    a descriptor opened with ``O_APPEND`` (so lines of concurrent writers never mix),
    followed by ``fsync`` (so an alert that was reported survives a crash)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._lock = threading.Lock()
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: the alert log is closed")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AlertLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_alerts(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of an alerts file (a torn last line, from a crash mid-write, is left out)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


_STOP = object()


class _Retryable(Exception):
    """A POST worth another try: a connection error, a timeout, a 5xx, 408 or 429."""


class _Refused(Exception):
    """A POST the receiver refused for good (another 4xx): not retried."""


class _Closed(Exception):
    """``close`` gave up waiting while a record was waiting for its next try."""


def _post_json(url: str, record: dict[str, Any], timeout: float) -> int:
    body = json.dumps(record).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"uprm-watch/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class WebhookSender:
    """POSTs records to ``url`` from its own thread.

    ``submit`` never blocks: a record that finds the queue full (``queue_size``) is
    dropped and counted. A failed POST (a connection error, a timeout, a 5xx, 408 or
    429) is retried after ``backoff``, ``2·backoff``, ... seconds (at most
    ``max_backoff``; tenacity's ``wait_exponential``) until it is delivered — or
    ``retries`` times, when given — while the records behind it wait in the queue, in
    order; other 4xx answers are not retried. A record that is not delivered is counted
    as ``failed`` and logged. Delivery is at least once: a POST that timed out after the
    receiver took it is sent again (a receiver keys records on ``id`` and ``type``).
    ``close(drain)`` gives the queue ``drain`` seconds to empty; what is left is counted
    as ``unsent``.

    Args:
        post: ``post(url, record, timeout) -> HTTP status`` (tests pass their own).
        sleep: how the thread waits between tries (tests pass one that records the
            waits); by default a wait that ``close`` cuts short.

    Attributes:
        stats: ``sent``, ``failed`` (gave up), ``dropped`` (queue full), ``retries``,
            ``unsent`` (left at close).
    """

    def __init__(self, url: str, queue_size: int = 256, retries: int | None = None, backoff: float = 0.5,
                 timeout: float = 5.0, max_backoff: float = 30.0,
                 post: Callable[[str, dict[str, Any], float], int] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.url = url
        self.retries = None if retries is None else int(retries)
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self.max_backoff = float(max_backoff)
        self._post = post or _post_json
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=int(queue_size))
        self._abort = threading.Event()
        self._closed = False
        self.stats = {"sent": 0, "failed": 0, "dropped": 0, "retries": 0, "unsent": 0}
        self._retrying = Retrying(
            stop=stop_never if self.retries is None else stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Retryable), sleep=sleep or self._wait, before_sleep=self._before_retry,
            reraise=True)
        self._thread = threading.Thread(target=self._run, name="uprm-watch-webhook", daemon=True)
        self._thread.start()

    def submit(self, record: dict[str, Any]) -> bool:
        """Queue ``record``; ``False`` (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.stats["dropped"] += 1
            log.warning("webhook %s: queue full, alert %s dropped", self.url, record.get("id"))
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._abort.is_set():
                    return
                continue
            if item is _STOP:
                return
            if self._abort.is_set():
                if not self._closed:
                    self.stats["unsent"] += 1
                continue
            self._deliver(item)

    def _deliver(self, record: dict[str, Any]) -> None:
        try:
            self._retrying(self._send, record)
        except _Closed:
            self.stats["unsent"] += 1
        except (_Retryable, _Refused) as exc:
            self.stats["failed"] += 1
            log.warning("webhook %s: alert %s not delivered (%s)", self.url, record.get("id"), exc)
        else:
            self.stats["sent"] += 1

    def _send(self, record: dict[str, Any]) -> None:
        """One POST; raises :class:`_Retryable` or :class:`_Refused` unless it was accepted (2xx)."""
        try:
            status = self._post(self.url, record, self.timeout)
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return
        if 400 <= status < 500 and status not in (408, 429):
            raise _Refused(f"HTTP {status}")
        raise _Retryable(f"HTTP {status}")

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats["retries"] += 1
        record = state.args[0] if state.args else {}
        log.info("webhook %s: alert %s not delivered (%s); retrying in %.1f s", self.url, record.get("id"),
                 state.outcome.exception() if state.outcome else "?", state.upcoming_sleep)

    def _wait(self, seconds: float) -> None:
        """Wait between tries; :class:`_Closed` when ``close`` stops waiting for the queue."""
        if self._abort.wait(seconds):
            raise _Closed

    def close(self, drain: float = 10.0) -> None:
        """Stop after the queue is sent or ``drain`` seconds have passed."""
        deadline = time.monotonic() + max(0.0, drain)
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abort.set()
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_STOP)
            self._thread.join(self.timeout + 1.0)
        if self._thread.is_alive():  # stuck in a request: what is still queued is not sent
            self._closed = True
            self.stats["unsent"] += sum(1 for item in list(self._queue.queue) if item is not _STOP)
