"""The knobs of a watcher, in one validated object (plain Python, no torch, no PyAV)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from uprm.errors import WatchError, WatchSettingsError
from uprm.options import FILE_ONLY, DetectOptions
from uprm.watch.shards import parse_shard

__all__ = ["WatchError", "WatchSettings"]


class WatchSettings(DetectOptions):
    """How ``uprm watch`` samples, decides and alerts (docs/watch.md has the user guide).

    The model's options come from :class:`~uprm.options.DetectOptions` (window, stride,
    batch size, max side, device, threads, expert options; a live camera's defaults:
    stride 2 s, batches of 8, frames at most 512 pixels; the options only files use —
    merge gap, sidecar folder, evidence sheets — are refused).

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
            queue, attempts after the first (None: until delivered — a receiver that is
            down gets every record once it is back), first back-off (doubling, at most
            30 s), request timeout.
        webhook_drain: seconds given to unsent records at exit.
        clips: folder of MP4 clips of the events, with ``pre_roll`` and ``post_roll`` seconds.
        clip_max_seconds: a clip longer than this is cut there (the event goes on).

    Sources:
        open_timeout, read_timeout: seconds PyAV waits to open a source, and for data.
        reconnect_min, reconnect_max: back-off between reconnects (doubling).
        max_reconnects: give a camera up after this many failed attempts in a row (None: never).
        av_options: extra FFmpeg options for every source (e.g. ``{"rtsp_transport": "udp"}``).

    Model:
        device: torch device (None: a given model stays where it is, a checkpoint goes to
            "auto": cuda if available, else cpu).
        replicas: model replicas on this host, each running the windows of its share of the
            cameras (camera i of this host goes to replica i mod N): on GPUs one per device,
            on CPUs the torch threads split between them. 1: one model, as before.

    Several hosts:
        shard: ``"K/N"``: watch only the K-th of N shares of the camera list (camera i of
            the list, 1-based, is in share ``(i - 1) % N + 1``; :mod:`uprm.watch.shards`).
        host_name: the host's name in alert records (None: ``$UPRM_HOST_NAME``, else the
            machine's host name).
    """

    error: ClassVar[type[WatchSettingsError]] = WatchSettingsError

    stride: float = Field(2.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(8, ge=1)
    max_side: int | None = Field(512, ge=16)
    device: str | None = None  # type: ignore[assignment]
    evidence: bool = False
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    cooldown: float = Field(8.0, ge=0, allow_inf_nan=False)
    fps: float = Field(10.0, gt=0, allow_inf_nan=False)
    realtime: bool = False
    gap_tolerance: float | None = Field(None, gt=0, allow_inf_nan=False)
    alerts: str | None = None
    webhook: str | None = None
    webhook_queue: int = Field(256, ge=1)
    webhook_retries: int | None = Field(None, ge=0)
    webhook_backoff: float = Field(0.5, ge=0, allow_inf_nan=False)
    webhook_timeout: float = Field(5.0, gt=0, allow_inf_nan=False)
    webhook_drain: float = Field(10.0, ge=0, allow_inf_nan=False)
    clips: str | None = None
    pre_roll: float = Field(5.0, ge=0, allow_inf_nan=False)
    post_roll: float = Field(5.0, ge=0, allow_inf_nan=False)
    clip_max_seconds: float = Field(300.0, gt=0, allow_inf_nan=False)
    open_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    read_timeout: float = Field(5.0, gt=0, allow_inf_nan=False)
    reconnect_min: float = Field(0.5, gt=0, allow_inf_nan=False)
    reconnect_max: float = Field(30.0, gt=0, allow_inf_nan=False)
    max_reconnects: int | None = Field(None, ge=0)
    av_options: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(1, ge=1)
    shard: str = "1/1"
    host_name: str | None = None

    @field_validator("av_options", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        try:
            k, n = parse_shard(value)
        except ValueError as exc:
            raise ValueError(f"{exc} (got {value!r})") from None
        return f"{k}/{n}"

    @property
    def shard_parts(self) -> tuple[int, int]:
        """``(K, N)`` of :attr:`shard`."""
        return parse_shard(self.shard)

    @field_validator("webhook")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value:
            _check_webhook(value)
        return value or None

    @model_validator(mode="after")
    def _consistent(self) -> WatchSettings:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError(f"reconnect_max ({self.reconnect_max}) is below reconnect_min ({self.reconnect_min})")
        used = [name for name in FILE_ONLY if name != "evidence" and getattr(self, name) is not None]
        if used or self.evidence:
            raise ValueError(f"{(used or ['evidence'])[0]} is an option of detection over files, not of uprm watch")
        return self

    @classmethod
    def from_options(cls, **options: Any) -> WatchSettings:
        """Settings from keyword options; an unknown name is an error naming it and the
        known ones."""
        unknown = sorted(set(options) - set(cls.model_fields))
        if unknown:
            raise cls.error(f"unknown watch setting(s) {unknown}; known: {sorted(cls.model_fields)}")
        return cls(**options)


def _check_webhook(url: str) -> None:
    """An http(s) URL with a host, else a ``ValueError`` naming it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"webhook must be an http:// or https:// URL with a host, got {url!r}")
