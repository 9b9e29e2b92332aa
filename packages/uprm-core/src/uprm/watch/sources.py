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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.watch.settings import WatchError

__all__ = ["DEVICE_FORMATS", "STREAM_SCHEMES", "Source", "open_container", "parse_source", "parse_sources"]

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp")
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "lavfi")

#: FFmpeg options of live sources: open after the first packets instead of probing
#: seconds of data (a live MPEG-TS stream otherwise opens ~9 s late)
LIVE_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
RTSP_OPTIONS = {"rtsp_transport": "tcp"}

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
        options = {**LIVE_OPTIONS, **(RTSP_OPTIONS if scheme.startswith("rtsp") else {})}
        return Source(name, target, "stream", None, options)
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
    for ever: ``open_timeout`` to open, ``read_timeout`` for each read)."""
    import av

    options = {**source.options, **(av_options or {})}
    kwargs: dict[str, Any] = {"options": options}
    if source.format:
        kwargs["format"] = source.format
    if source.live:
        kwargs["timeout"] = (float(open_timeout), float(read_timeout))
    return av.open(source.target, mode="r", **kwargs)
