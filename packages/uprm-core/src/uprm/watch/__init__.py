"""Watching live cameras: ``uprm watch`` and ``uprm.watch``.

Cameras (RTSP/HTTP/UDP streams, video files, capture devices) are read by one PyAV
thread each into a bounded ring buffer of recent frames (:mod:`~uprm.watch.reader`,
:mod:`~uprm.watch.frames`); every ``stride`` seconds of a camera's stream the last
``window`` seconds are sampled (:mod:`~uprm.watch.schedule`) and the due windows of all
cameras go through the experts and the model in one batch (:mod:`~uprm.watch.infer`;
windows are skipped, and counted, when inference is slower than real time); each
camera's windows drive an event with threshold/cool-down hysteresis
(:mod:`~uprm.watch.events`); each event is written when it opens and when it closes to
an append-only JSONL file, POSTed to a webhook and saved as an MP4 with pre- and post-roll
(:mod:`~uprm.watch.alerts`, :mod:`~uprm.watch.clips`). Dropped streams reconnect with
back-off; SIGINT/SIGTERM (``uprm watch``) or ``stop`` close the open events and flush
the alerts. User guide: docs/watch.md.

The module is callable: ``uprm.watch(...)`` is :func:`watch`.

>>> import uprm
>>> report = uprm.watch(["cam1=udp://127.0.0.1:5000"], "runs/uprm", window=8, stride=2,
...                     alerts="alerts.jsonl", max_seconds=600)          # doctest: +SKIP
>>> report.events, report.latency, report.cameras["cam1"]["skipped"]      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from uprm.watch.events import Event, EventTracker, WindowScore
from uprm.watch.settings import WatchError, WatchSettings

__all__ = [
    "AlertLog",
    "Event",
    "EventTracker",
    "Source",
    "WatchError",
    "WatchReport",
    "WatchSettings",
    "Watcher",
    "WebhookSender",
    "WindowScore",
    "parse_source",
    "read_alerts",
    "watch",
]

_LAZY = {
    "AlertLog": "uprm.watch.alerts",
    "WebhookSender": "uprm.watch.alerts",
    "read_alerts": "uprm.watch.alerts",
    "Source": "uprm.watch.sources",
    "parse_source": "uprm.watch.sources",
    "WatchReport": "uprm.watch.watcher",
    "Watcher": "uprm.watch.watcher",
}


def watch(*args: Any, **kwargs: Any) -> Any:
    """:func:`uprm.watch.watcher.watch` (imports torch and PyAV on first use)."""
    from uprm.watch.watcher import watch as _watch

    return _watch(*args, **kwargs)


watch.__doc__ = "Watch live cameras with a UPRM model and raise alerts; see :func:`uprm.watch.watcher.watch`."


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'uprm.watch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _CallableModule(types.ModuleType):
    """``uprm.watch`` is this package and, called, :func:`watch` — so ``uprm.watch(...)``
    works whether ``uprm.watch`` was reached as the package or as the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
