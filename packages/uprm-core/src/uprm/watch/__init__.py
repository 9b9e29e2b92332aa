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

The module is callable: ``uprm.watch(...)`` is :func:`~uprm.watch.watcher.watch`. Its
names are listed once, in ``__init__.pyi``, and imported on first use (lazy-loader).

>>> import uprm
>>> report = uprm.watch(["cam1=udp://127.0.0.1:5000"], "runs/uprm", window=8, stride=2,
...                     alerts="alerts.jsonl", max_seconds=600)          # doctest: +SKIP
>>> report.events, report.latency, report.cameras["cam1"]["skipped"]      # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import Any

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)


class _CallableModule(types.ModuleType):
    """``uprm.watch`` is this package and, called, :func:`~uprm.watch.watcher.watch` — so
    ``uprm.watch(...)`` works whether ``uprm.watch`` was reached as the package or as the
    function (which imports torch and PyAV on first use)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
