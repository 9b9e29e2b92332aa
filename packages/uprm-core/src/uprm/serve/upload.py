"""Receiving an upload: the multipart body streamed straight to a file (at most 1 MiB
held in memory, nothing spooled elsewhere, disk writes and the final sync in a thread),
with its size bounded while it arrives."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from uprm.serve.errors import ApiError

__all__ = ["FIELD", "MULTIPART_OVERHEAD", "clean_name", "receive_upload"]

#: the multipart field holding the video
FIELD = "video"
#: room for boundaries, part headers and small fields beyond the video's own bytes
MULTIPART_OVERHEAD = 1 << 20
#: bytes gathered before a write to disk (done in a thread: the event loop never waits on the disk)
FLUSH_BYTES = 1 << 20


def clean_name(raw: str | None, default: str = "upload") -> str:
    """A client's file name fit for display: its last path part, printable, ≤ 200 chars."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or default


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"the upload exceeds the limit of {limit} bytes "
                    f"({limit / (1 << 20):.0f} MiB)", limit=limit)


class _Sink:
    """python-multipart callbacks: the ``video`` part goes to ``out``, other parts are
    read and dropped."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out, self.limit = out, limit
        self.pending = bytearray()
        self.field, self.value = b"", b""
        self.headers: dict[bytes, bytes] = {}
        self.writing = False
        self.filename: str | None = None
        self.videos = 0
        self.written = 0
        self.ended = False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _part_begin(self) -> None:
        self.headers, self.writing = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.field.strip().lower()] = self.value.strip()
        self.field, self.value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if params.get(b"name", b"").decode("utf-8", "replace") != FIELD:
            return
        self.videos += 1
        if self.videos > 1:
            raise ApiError(400, "several_videos", f"one file per job: the field {FIELD!r} appears twice")
        self.writing = True
        raw = params.get(b"filename")
        self.filename = clean_name(raw.decode("utf-8", "replace") if raw is not None else None)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.writing:
            self.written += end - start
            if self.written > self.limit:
                raise _too_large(self.limit)
            self.pending += data[start:end]

    def flush(self) -> None:
        """Write what arrived (called in a worker thread)."""
        data, self.pending = bytes(self.pending), bytearray()
        self.out.write(data)

    def _part_end(self) -> None:
        self.writing = False

    def _end(self) -> None:
        self.ended = True


def _sync(sink: _Sink) -> None:
    sink.flush()
    sink.out.flush()
    os.fsync(sink.out.fileno())


def _boundary(content_type: str | None) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(400, "bad_multipart", "a multipart/form-data body with a boundary is needed")
    return boundary


def _check_declared(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > limit + MULTIPART_OVERHEAD:
            raise _too_large(limit)


async def receive_upload(request: Request, dest: Path, limit: int) -> tuple[str, int]:
    """Stream the ``video`` field of a multipart request into ``dest`` (synced to disk);
    ``(the client's file name, bytes)``. 413 as soon as the file or the body exceeds
    ``limit`` (or the declared Content-Length does), 400 for a malformed or cut body."""
    boundary = _boundary(request.headers.get("content-type"))
    _check_declared(request, limit)
    received = 0
    with open(dest, "wb") as out:
        sink = _Sink(out, limit)
        parser = MultipartParser(boundary, sink.callbacks())
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit + MULTIPART_OVERHEAD:
                    raise _too_large(limit)
                parser.write(chunk)
                if len(sink.pending) >= FLUSH_BYTES:
                    await run_in_threadpool(sink.flush)
        except MultipartParseError as exc:
            raise ApiError(400, "bad_multipart", f"the multipart body is malformed ({exc})") from exc
        except ClientDisconnect as exc:
            raise ApiError(400, "upload_incomplete", "the client went away before the upload ended") from exc
        if not sink.videos:
            raise ApiError(400, "missing_video", f"no file in the multipart field {FIELD!r}")
        if not sink.ended:
            raise ApiError(400, "upload_incomplete", "the multipart body ended before its closing boundary")
        await run_in_threadpool(_sync, sink)
    return sink.filename or "upload", sink.written
