"""What a video is, told by its content, and which files a path job may read.

An upload is judged by its bytes, never by the content type or name the client sent:
:func:`sniff` recognises the container from its first bytes (MP4/MOV, Matroska/WebM,
AVI, MPEG-TS, MPEG-PS, FLV, Ogg, ASF) and :func:`probe` opens it with PyAV *forcing that
demuxer* — so a playlist or concat script dressed as a video can never make FFmpeg read
other files or URLs — then requires a video stream with a frame size, a duration and a
first frame that decodes, and an index that does not point past the end of the file.

:func:`resolve_media_path` confines path jobs to the media root: ``..`` is refused, and
a path (or a symlink) that ends up outside the root is refused after resolving it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from uprm.serve.errors import ApiError

__all__ = ["VIDEO_SUFFIXES", "MediaInfo", "list_media", "probe", "resolve_media_path", "sniff"]

#: the bytes read to recognise a container (MPEG-TS needs three 188-byte packets)
SNIFF_BYTES = 1024
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                  ".flv", ".ogv", ".ogg", ".wmv", ".asf", ".3gp"}
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"}


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found."""

    demuxer: str
    media_type: str
    duration: float
    width: int
    height: int
    codec: str
    size: int


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(FFmpeg demuxer, media type)`` of a container recognised from its first bytes,
    or ``None``."""
    if head[4:8] in _ISO_BOXES:
        return "mov", "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska", "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi", "video/x-msvideo"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts", "video/mp2t"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg", "video/mpeg"
    if head[:3] == b"FLV":
        return "flv", "video/x-flv"
    if head[:4] == b"OggS":
        return "ogg", "video/ogg"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf", "video/x-ms-asf"
    return None


def probe(path: str | os.PathLike, name: str | None = None) -> MediaInfo:
    """Check that ``path`` is a video by its content; :class:`ApiError` 415 when it is no
    video container, 400 when it is one but damaged. ``name`` (the client's file name or
    the path it gave) starts the error's detail, so the answer says which file it was."""
    if name is None:
        return _probe(Path(path))
    try:
        return _probe(Path(path))
    except ApiError as exc:
        exc.detail = f"{name}: {exc.detail}"
        exc.args = (exc.detail,)
        raise


def _probe(path: Path) -> MediaInfo:
    size = path.stat().st_size
    if size == 0:
        raise ApiError(400, "empty_file", "the file is empty (0 bytes)")
    with path.open("rb") as fh:
        found = sniff(fh.read(SNIFF_BYTES))
    if found is None:
        raise ApiError(415, "not_a_video", "the content is not a video container this service reads (MP4/MOV, "
                       "Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg, ASF); the declared content type is not trusted")
    demuxer, media_type = found
    import av

    try:
        with av.open(str(path), mode="r", format=demuxer) as container:
            return _inspect(container, demuxer, media_type, size)
    except av.error.FFmpegError as exc:
        raise ApiError(400, "damaged_video", f"a {demuxer} file that FFmpeg cannot read ({_reason(exc)})") from exc


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or type(exc).__name__)


def _inspect(container: Any, demuxer: str, media_type: str, size: int) -> MediaInfo:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise ApiError(415, "no_video_stream", f"a {demuxer} file without a video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise ApiError(400, "damaged_video", "the video stream has no frame size (damaged header)")
    _check_index(stream, size)
    duration = _duration(container, stream)
    try:
        first = next(iter(container.decode(stream)), None)
    except Exception as exc:  # FFmpeg decoding errors come in several classes
        raise ApiError(400, "damaged_video", f"the first frame does not decode ({_reason(exc)})") from exc
    if first is None:
        raise ApiError(400, "damaged_video", "no frame decodes (the video stream is empty or damaged)")
    return MediaInfo(demuxer, media_type, duration, width, height, stream.codec_context.name, size)


def _check_index(stream: Any, size: int) -> None:
    """An index pointing past the end of the file means the upload was cut short."""
    entries = stream.index_entries
    if len(entries) and entries[len(entries) - 1].pos + entries[len(entries) - 1].size > size:
        raise ApiError(400, "truncated_video", f"truncated: the file has {size} bytes but its index needs more")


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    raise ApiError(400, "unknown_duration", "the video does not say how long it is (a live or damaged stream)")


# -- path jobs ---------------------------------------------------------------------------------


def real_path_within(root: str | os.PathLike, given: str) -> tuple[Path, bool]:
    """``given`` (relative to ``root``, or absolute) as a real path, symlinks resolved, and
    whether it lies inside ``root`` — the one check behind the media root and the models
    folder. May raise ``OSError`` (a name too long, a loop of symlinks)."""
    base = Path(root).resolve()
    real = Path(os.path.realpath(Path(given) if Path(given).is_absolute() else base / given))
    return real, real == base or base in real.parents


def resolve_media_path(root: str | os.PathLike | None, given: str) -> Path:
    """The real file that ``given`` (relative to the media root, or absolute inside it)
    names. 403 without a media root or for anything that resolves outside it (a symlink
    out included), 400 for ``..`` or a malformed path, 404 when it does not exist."""
    if root is None:
        raise ApiError(403, "media_root_disabled", "path jobs are disabled: start the server with --media-root DIR")
    if not isinstance(given, str) or not given.strip() or "\x00" in given or len(given) > 4096:
        raise ApiError(400, "bad_path", "path must be a non-empty file path")
    try:
        os.fsencode(given)
    except UnicodeError:  # a lone surrogate ("\ud800" in the JSON): no file can have that name
        raise ApiError(400, "bad_path", "path is not a valid file name (it cannot be encoded)") from None
    parts = PurePosixPath(given.replace("\\", "/")).parts
    if ".." in parts:
        raise ApiError(400, "path_traversal", "'..' is not allowed in a path; give it relative to the media root")
    try:
        real, inside = real_path_within(root, given)
        if not inside:
            raise ApiError(403, "outside_media_root", "the path lies outside the media root (symlinks are resolved)")
        if not real.exists():
            raise ApiError(404, "media_not_found", f"no file {given!r} under the media root")
        is_file = real.is_file()
    except OSError as exc:  # a name longer than the file system allows, a loop of symlinks...
        raise ApiError(400, "bad_path", f"{given!r} cannot be a file here ({exc.strerror or type(exc).__name__})") \
            from None
    if not is_file:
        raise ApiError(400, "not_a_file", f"{given!r} is not a file")
    return real


def list_media(root: str | os.PathLike, limit: int = 1000) -> tuple[list[dict[str, Any]], bool]:
    """Video files under the media root by suffix (hidden folders skipped, symlinks out of
    the root left out): ``([{"path", "size"}], truncated)``."""
    base = Path(root).resolve()
    found: list[dict[str, Any]] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in VIDEO_SUFFIXES:
                continue
            path = Path(folder) / name
            real = Path(os.path.realpath(path))
            if base not in real.parents or not real.is_file():
                continue
            if len(found) >= limit:
                return found, True
            found.append({"path": path.relative_to(base).as_posix(), "size": real.stat().st_size})
    return found, False
