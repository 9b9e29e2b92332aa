"""Instruction records (docs/formats.md, "Instruction JSON") and the clips they ask about.

Plain Python: no torch, no video library. :func:`load_records` reads an instruction file
and checks each record; every record it returns is an :class:`InstructionRecord` — a
``dict`` that also remembers the file it came from, so its relative paths (video,
keypoints, scene graph) resolve against that file's folder wherever the program runs.
:func:`record_clip_key` turns a record into a :class:`ClipKey`: the file, window, frame
count and sidecar files of the clip (what the experts perceive and the cache stores).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.errors import RecordError

__all__ = [
    "SIDECARS",
    "ClipKey",
    "InstructionRecord",
    "clip_keys_from_records",
    "load_records",
    "record_base",
    "record_clip_key",
    "split_conversation",
]

#: record fields naming files that travel with the clip (into ``VideoClip.meta``)
SIDECARS = ("keypoints", "scene_graph")
_MEDIA_TOKEN = re.compile(r"^\s*<(video|image)>\s*\n?")


class InstructionRecord(dict):
    """One record of an instruction file: a plain ``dict`` (equal to, and serialised as,
    the JSON object) that also knows ``source``, the file it was read from, and ``index``,
    its position there."""

    source: Path | None = None
    index: int | None = None

    @property
    def where(self) -> str:
        """``"<file>: record <i> ('<id>')"`` for error messages."""
        head = f"{self.source}: " if self.source is not None else ""
        number = f"record {self.index} " if self.index is not None else "record "
        return f"{head}{number}({self.get('id', '?')!r})"


def _where(record: Mapping[str, Any]) -> str:
    return record.where if isinstance(record, InstructionRecord) else f"record {record.get('id', '?')!r}"


def _is_path(value: Any) -> bool:
    """A string that can name a file: not blank, no NUL byte, encodable (no lone surrogate)."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return False
    try:
        os.fsencode(value)
    except UnicodeError:
        return False
    return True


def _check_record(path: Path, i: int, rec: Any) -> None:
    if not isinstance(rec, dict):
        raise RecordError(f"{path}: record {i} is {type(rec).__name__}, not an object")
    name = f"{path}: record {i} ({rec.get('id', '?')!r})"
    if ("video" in rec) == ("image" in rec):
        raise RecordError(f"{name} needs exactly one of 'video' or 'image'")
    media = rec.get("video", rec.get("image"))
    if not _is_path(media):
        raise RecordError(f"{name}: field {'video' if 'video' in rec else 'image'!r} must be a file path, got {media!r}")
    window = rec.get("window")
    if window is not None and not (
        isinstance(window, (list, tuple))
        and len(window) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)
        and window[1] > window[0] >= 0
    ):
        raise RecordError(f"{name}: field 'window' must be [start, end] seconds with 0 <= start < end, got {window!r}")
    for key in SIDECARS:
        if rec.get(key) not in (None, "") and not _is_path(rec[key]):  # "": no such file
            raise RecordError(f"{name}: field {key!r} must be a file path, got {rec[key]!r}")


def load_records(path: str | os.PathLike) -> list[InstructionRecord]:
    """Read an instruction JSON: a list of records, each with one of ``video``/``image``.
    Errors name the file and the record."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: no such instruction file") from None
    except IsADirectoryError:
        raise RecordError(f"{path}: is a folder; give the instruction JSON file") from None
    except RecursionError:
        raise RecordError(f"{path}: not a readable JSON file (nested too deeply)") from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not a readable JSON file: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not a readable JSON file (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
            from None
    except OSError as exc:
        raise RecordError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, list):
        raise RecordError(f"{path}: an instruction file is a JSON list of records, got {type(data).__name__}")
    out = []
    for i, rec in enumerate(data):
        _check_record(path, i, rec)
        record = InstructionRecord(rec)
        record.source, record.index = path, i
        out.append(record)
    return out


def record_base(record: Mapping[str, Any], base: str | os.PathLike | None = None) -> Path:
    """The folder a record's relative paths resolve against: ``base`` when given, else
    the folder of the file the record was read from, else the working directory."""
    if base is not None:
        return Path(base)
    source = getattr(record, "source", None)
    return Path(source).parent if source is not None else Path.cwd()


# --------------------------------------------------------------------------- clips
@dataclass(frozen=True)
class ClipKey:
    """One clip: a video (or image) file, a window and a frame count.

    Attributes:
        video_id: the record's ``video_id`` (else the file's stem); names the cache folder.
        path: the video or image file (absolute).
        window: ``(start, end)`` seconds, or ``None`` for the whole file.
        num_frames: ``F`` frames sampled uniformly (1 for an image).
        media: ``"video"`` or ``"image"``.
        sidecars: ``(("keypoints", path), ("scene_graph", path))`` put into ``clip.meta``.
    """

    video_id: str
    path: str
    window: tuple[float, float] | None
    num_frames: int
    media: str = "video"
    sidecars: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def window_tag(self) -> str:
        if self.media == "image":
            return "image"
        if self.window is None:
            return f"full_f{self.num_frames}"
        return f"{self.window[0]:.3f}-{self.window[1]:.3f}_f{self.num_frames}"

    @property
    def folder(self) -> str:
        """A file-system-safe name for the clip's video (distinct ids stay distinct)."""
        safe = re.sub(r"[^A-Za-z0-9._@+=-]+", "_", self.video_id).strip("._") or "clip"
        if safe != self.video_id:
            safe += "-" + hashlib.sha1(self.video_id.encode()).hexdigest()[:8]
        return safe

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.sidecars)

    def describe(self) -> str:
        return f"{self.video_id} [{self.window_tag}] ({self.path})"


def record_clip_key(record: Mapping[str, Any], base: str | os.PathLike | None = None, num_frames: int = 8) -> ClipKey:
    """The clip a record asks about; relative paths resolve against :func:`record_base`."""
    folder = record_base(record, base)
    media = "image" if "image" in record else "video"
    if media not in record:
        raise RecordError(f"{_where(record)}: needs a 'video' or an 'image' field")
    path = (folder / str(record[media])).resolve()
    window = record.get("window")
    sidecars = tuple(
        (name, str((folder / str(record[name])).resolve())) for name in SIDECARS if record.get(name)
    )
    return ClipKey(
        video_id=str(record.get("video_id") or path.stem),
        path=str(path),
        window=(float(window[0]), float(window[1])) if window is not None and media == "video" else None,
        num_frames=1 if media == "image" else int(num_frames),
        media=media,
        sidecars=sidecars,
    )


def clip_keys_from_records(files: Iterable[str | os.PathLike], num_frames: int) -> list[ClipKey]:
    """The distinct clips of some instruction files, in a stable order (sorted by id,
    window): identify/locate/attribute records of one window share one clip."""
    keys: dict[ClipKey, ClipKey] = {}
    for f in files:
        for rec in load_records(f):
            key = record_clip_key(rec, None, num_frames)
            keys.setdefault(key, key)
    return sorted(keys, key=lambda k: (k.video_id, k.path, k.window or (-1.0, -1.0), k.num_frames))


def split_conversation(record: Mapping[str, Any], where: str | None = None) -> tuple[str, str | None]:
    """``(question, answer)`` of a record's first human and gpt turns; the question
    without its leading ``<video>``/``<image>`` placeholder (the model's prompt puts the
    visual tokens there). ``answer`` is ``None`` when the record has no gpt turn."""
    where = where or _where(record)
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"{where}: field 'conversations' must be a non-empty list of turns")
    question = answer = None
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            raise RecordError(f"{where}: conversations[{i}] must be an object with a string 'value'")
        if turn.get("from") == "human" and question is None:
            question = _MEDIA_TOKEN.sub("", turn["value"], count=1).strip()
        elif turn.get("from") == "gpt" and answer is None and question is not None:
            answer = turn["value"]
    if question is None:
        raise RecordError(f"{where}: no human turn in 'conversations'")
    return question, answer
