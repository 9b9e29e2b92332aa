"""The knobs of a watcher, in one validated object (plain Python, no torch, no PyAV)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from uprm.errors import WatchError

__all__ = ["WatchError", "WatchSettings"]


@dataclass
class WatchSettings:
    """How ``uprm watch`` samples, decides and alerts (docs/watch.md has the user guide).

    Windows and events:
        window: seconds of video each window covers (the last ``window`` seconds).
        stride: seconds between windows of a camera, rounded to the sampling grid
            (a multiple of ``window / num_frames``, at least one).
        threshold: an event opens when a window's P("Yes") is at or above it.
        cooldown: an open event closes once P("Yes") has stayed below ``threshold`` for
            this many seconds of stream time (0: at the first window below).
        batch_size: windows (of all cameras) per pass through the experts and the LLM.

    Frames:
        fps: frames per second kept in each camera's ring buffer (the source may be faster).
        max_side: downscale frames so their longer side is at most this (None: as decoded).
        realtime: read file sources at their own frame rate (else as fast as inference
            takes their windows, none skipped).
        gap_tolerance: a window is incomplete (skipped, counted) when one of its sampling
            points has no frame within this many seconds (default: max(window/num_frames, 1)).

    Alerts:
        alerts: JSONL file that each event's open and close records are appended to.
        webhook: URL the records are POSTed to (JSON), from a background thread.
        webhook_queue, webhook_retries, webhook_backoff, webhook_timeout: its bounded
            queue, attempts after the first, first back-off (doubling), request timeout.
        webhook_drain: seconds given to unsent records at exit.
        clips: folder of MP4 clips of the events, with ``pre_roll`` and ``post_roll`` seconds.
        clip_max_seconds: a clip longer than this is cut there (the event goes on).

    Sources:
        open_timeout, read_timeout: seconds PyAV waits to open a source, and for data.
        reconnect_min, reconnect_max: back-off between reconnects (doubling).
        max_reconnects: give a camera up after this many failed attempts in a row (None: never).
        av_options: extra FFmpeg options for every source (e.g. ``{"rtsp_transport": "udp"}``).

    Model:
        device: torch device (None: where the model is; "auto": cuda if available).
        expert_options: override experts' perception options when loading a checkpoint.
        threads: torch CPU threads (None: torch's default).
    """

    window: float = 8.0
    stride: float = 2.0
    threshold: float = 0.5
    cooldown: float = 8.0
    batch_size: int = 8
    fps: float = 10.0
    max_side: int | None = 512
    realtime: bool = False
    gap_tolerance: float | None = None
    alerts: str | None = None
    webhook: str | None = None
    webhook_queue: int = 256
    webhook_retries: int = 5
    webhook_backoff: float = 0.5
    webhook_timeout: float = 5.0
    webhook_drain: float = 10.0
    clips: str | None = None
    pre_roll: float = 5.0
    post_roll: float = 5.0
    clip_max_seconds: float = 300.0
    open_timeout: float = 10.0
    read_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    max_reconnects: int | None = None
    av_options: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    expert_options: dict[str, dict[str, Any]] | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        positive = ("window", "stride", "fps", "webhook_timeout", "open_timeout", "read_timeout", "reconnect_min",
                    "clip_max_seconds")
        for name in positive:
            value = float(getattr(self, name))
            if not value > 0 or not math.isfinite(value):
                raise WatchError(f"{name} must be a positive number of seconds (or frames/s), got {value}")
        for name in ("cooldown", "pre_roll", "post_roll", "webhook_backoff", "webhook_drain"):
            if not float(getattr(self, name)) >= 0:
                raise WatchError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise WatchError(f"threshold is a probability (P(Yes)) in [0, 1], got {self.threshold}")
        for name in ("batch_size", "webhook_queue"):
            if int(getattr(self, name)) < 1:
                raise WatchError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_side is not None and int(self.max_side) < 16:
            raise WatchError(f"max_side must be at least 16 pixels, got {self.max_side}")
        if self.reconnect_max < self.reconnect_min:
            raise WatchError(f"reconnect_max ({self.reconnect_max}) is below reconnect_min ({self.reconnect_min})")
        if self.webhook:
            _check_webhook(str(self.webhook))
        self.av_options = {str(k): str(v) for k, v in (self.av_options or {}).items()}

    @classmethod
    def from_options(cls, **options: Any) -> WatchSettings:
        """Settings from keyword options; an unknown name is a :class:`WatchError` naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise WatchError(f"unknown watch setting(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_webhook(url: str) -> None:
    """An http(s) URL with a host, else a :class:`WatchError` naming it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise WatchError(f"webhook must be an http:// or https:// URL with a host, got {url!r}")
