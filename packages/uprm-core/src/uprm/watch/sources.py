"""What a camera is: a stream URL, a video file or a local capture device, and how PyAV
opens it.

``SOURCE`` on the command line, each optionally named ``NAME=SOURCE``:

* ``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``rtp://``,
  ``srt://``, ``tcp://`` URLs: live streams (reconnected when they drop);
* a path (or ``file://`` URL) of a video file: read at its own frame rate with
  ``--realtime``, else as fast as the windows are taken;
* a capture device: ``/dev/videoN`` (Video4Linux), or ``FORMAT:TARGET`` with an FFmpeg
  device format, e.g. ``v4l2:/dev/video0``, ``avfoundation:0`` (macOS),
  ``dshow:video=USB Camera`` (Windows).

RTSP transport: unless ``rtsp_transport`` is given (``--av-option rtsp_transport=udp``,
respected as it is, without fallback), an ``rtsp://`` camera is opened over TCP
(interleaved in the RTSP connection) and, when the server refuses that in its answer to
SETUP (e.g. Debian's rtsp-server-perl answers 400 Bad Request), over UDP; the transport
that worked is tried first when the camera reconnects (:func:`open_negotiated`).
``rtsps://`` is TCP only (TLS), as in FFmpeg.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.watch.settings import WatchError

__all__ = ["DEVICE_FORMATS", "RTSP_TRANSPORTS", "STREAM_SCHEMES", "Source", "open_container", "open_negotiated",
           "parse_source", "parse_sources", "transport_refused"]

log = logging.getLogger("uprm.watch")

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp")
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "lavfi")

#: FFmpeg options of live sources: open after the first packets instead of probing
#: seconds of data (a live MPEG-TS stream otherwise opens ~9 s late)
LIVE_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
#: the RTSP transports tried in this order when none is given: TCP first, because its
#: refusal is an explicit answer to SETUP (~0.1 s, measured against rtsp-server-perl on
#: loopback) while UDP that a firewall or NAT drops fails silently (SETUP and PLAY
#: succeed, then no packet comes: only the read timeout tells), and TCP loses no packets
RTSP_TRANSPORTS = ("tcp", "udp")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Source:
    """One camera.

    Attributes:
        name: the camera's name in alerts, clips and logs.
        target: what PyAV opens (URL, path or device).
        kind: ``"stream"``, ``"file"`` or ``"device"``.
        format: FFmpeg input format (devices), else ``None``.
        options: FFmpeg options this kind of source gets by default.
    """

    name: str
    target: str
    kind: str
    format: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        """Streams and devices run in real time and reconnect; files end."""
        return self.kind != "file"

    def describe(self) -> str:
        return f"{self.format}:{self.target}" if self.format else self.target

    @property
    def rtsp(self) -> bool:
        """An ``rtsp://`` or ``rtsps://`` stream (whose transport is negotiated)."""
        return self.kind == "stream" and self.target.lower().startswith(("rtsp://", "rtsps://"))


def _split_name(spec: str) -> tuple[str | None, str]:
    head, sep, rest = spec.partition("=")
    if sep and _NAME.fullmatch(head) and not Path(spec).exists():
        return head, rest
    return None, spec


def parse_source(spec: str, index: int = 1) -> Source:
    """A :class:`Source` from ``[NAME=]SOURCE`` (see the module doc); unnamed cameras are
    ``cam<index>``. A path that does not exist is a :class:`WatchError`."""
    name, target = _split_name(spec.strip())
    name = name or f"cam{index}"
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme in STREAM_SCHEMES:
        return Source(name, target, "stream", None, dict(LIVE_OPTIONS))
    if scheme == "file":
        target = target[len("file://"):]
    elif scheme:
        raise WatchError(f"camera {name!r}: unsupported source scheme {scheme!r} in {target!r} "
                         f"(streams: {', '.join(STREAM_SCHEMES)}; or a file path or a device)")
    fmt, sep, device = target.partition(":")
    if sep and fmt in DEVICE_FORMATS:
        return Source(name, device, "device", fmt, dict(LIVE_OPTIONS))
    if target.startswith("/dev/video"):
        return Source(name, target, "device", "v4l2", dict(LIVE_OPTIONS))
    path = Path(target).expanduser()
    if not path.is_file():
        raise WatchError(f"camera {name!r}: {target!r} is neither a stream URL, a device nor an existing video file")
    return Source(name, str(path), "file")


def parse_sources(specs: Sequence[str | Source]) -> list[Source]:
    """Sources of ``specs`` (``[NAME=]SOURCE`` strings, ``cam1``, ``cam2``, ... for the
    unnamed, or :class:`Source` objects); names must be unique."""
    sources = [spec if isinstance(spec, Source) else parse_source(spec, i) for i, spec in enumerate(specs, start=1)]
    if not sources:
        raise WatchError("no source to watch: give at least one stream URL, file or device")
    seen: dict[str, str] = {}
    for s in sources:
        if s.name in seen:
            raise WatchError(f"two cameras are named {s.name!r} ({seen[s.name]} and {s.target}); "
                             "name them with NAME=SOURCE")
        seen[s.name] = s.target
    return sources


def open_container(source: Source, open_timeout: float, read_timeout: float,
                   av_options: Mapping[str, str] | None = None) -> Any:
    """The open PyAV container of ``source`` (live sources time out instead of blocking
    for ever: ``open_timeout`` to open, ``read_timeout`` for each read), with
    ``source.options`` and ``av_options`` (the latter win) as FFmpeg options."""
    import av

    options = {**source.options, **(av_options or {})}
    kwargs: dict[str, Any] = {"options": options}
    if source.format:
        kwargs["format"] = source.format
    if source.live:
        kwargs["timeout"] = (float(open_timeout), float(read_timeout))
    return av.open(source.target, mode="r", **kwargs)


def transport_refused(exc: BaseException) -> bool:
    """Did the RTSP server refuse the transport asked for? Its answer to SETUP was 400 Bad
    Request (rtsp-server-perl to TCP), another 4xx than 401/403/404/429 (461 Unsupported
    Transport), or a 5xx (501 Not Implemented). An unreachable server, a wrong path, wrong
    credentials or a timeout are not refusals: the other transport would fail the same way."""
    import av.error

    return isinstance(exc, (av.error.HTTPBadRequestError, av.error.HTTPOtherClientError, av.error.HTTPServerError))


def transports_to_try(source: Source, av_options: Mapping[str, str] | None = None,
                      preferred: str | None = None) -> list[str | None]:
    """The ``rtsp_transport`` values to open ``source`` with, in order: ``[None]`` for a
    source that is not RTSP (nothing to negotiate); the given value alone when the source's
    or the user's options name one; else ``preferred`` (the one that worked last) and then
    the rest of :data:`RTSP_TRANSPORTS` (``rtsps://``: TCP only)."""
    if not source.rtsp:
        return [None]
    given = {**source.options, **(av_options or {})}.get("rtsp_transport")
    if given:
        return [given]
    choices = ["tcp"] if source.target.lower().startswith("rtsps://") else list(RTSP_TRANSPORTS)
    if preferred in choices:
        choices.remove(preferred)
        choices.insert(0, preferred)
    return list(choices)


def open_negotiated(source: Source, open_timeout: float, read_timeout: float,
                    av_options: Mapping[str, str] | None = None,
                    preferred: str | None = None) -> tuple[Any, str | None]:
    """``(container, transport)``: :func:`open_container` over the first RTSP transport of
    :func:`transports_to_try` that the server accepts (the next one is tried only when the
    server refused the last, :func:`transport_refused`; any other error is raised at once).
    ``transport`` is ``"tcp"``, ``"udp"`` (or the ``rtsp_transport`` the user gave), or
    ``None`` for a source that is not RTSP."""
    choices = transports_to_try(source, av_options, preferred)
    for i, transport in enumerate(choices):
        options = dict(av_options or {})
        if transport is not None:
            options["rtsp_transport"] = transport
        try:
            return open_container(source, open_timeout, read_timeout, options), transport
        except Exception as exc:
            if i + 1 == len(choices) or not transport_refused(exc):
                raise
            log.info("camera %s: %s refused RTSP over %s (%s); trying %s", source.name, source.describe(),
                     str(transport).upper(), exc, str(choices[i + 1]).upper())
    raise AssertionError("unreachable: the last choice returns or raises")
