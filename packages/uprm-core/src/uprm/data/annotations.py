"""Readers of the real annotation formats → :class:`VideoAnnotation`.

- UCF-Crime temporal annotations (Sultani et al., CVPR 2018): :func:`read_ucf_crime`.
- UCA, the UCF-Crime Annotation (Yuan et al., CVPR 2024), JSON and text: :func:`read_uca`.
- CUVA (Du et al., CVPR 2024), the original xlsx sheet and the Hugging Face
  instruction rows (json / jsonl / csv): :func:`read_cuva`.
- ActivityNet-style JSON, ground truth and predictions: :func:`read_activitynet`,
  :func:`write_activitynet`, :func:`read_activitynet_predictions`,
  :func:`write_activitynet_predictions`.

Every reader reports a bad line as :class:`AnnotationError` with the file, the line (or
sheet row, or JSON key) and the field at fault. Times are seconds from the start of the
video; a normal video has ``category == "Normal"`` and no segments.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uprm.errors import AnnotationError
from uprm.timeparse import CLOCK, NUMBER, parse_mmss, parse_time
from uprm.utils import atomic_write_json

__all__ = [
    "CUVA_CATEGORIES",
    "NORMAL",
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "VideoAnnotation",
    "find_videos",
    "parse_mmss_moments",
    "read_activitynet",
    "read_activitynet_predictions",
    "read_cuva",
    "read_cuva_categories",
    "read_uca",
    "read_ucf_crime",
    "write_activitynet",
    "write_activitynet_predictions",
]

#: the category of videos without a threat
NORMAL = "Normal"

#: file extensions searched for when a folder of videos is given
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv")

#: CUVA's 11 top-level classes (the dataset's Category.txt); sub-class codes ``7-1`` etc.
#: map to the class of their first number
CUVA_CATEGORIES: dict[str, str] = {
    "1": "Fighting",
    "2": "Animals Hurting People",
    "3": "Water Incidents",
    "4": "Vandalism",
    "5": "Traffic Accidents",
    "6": "Robbery",
    "7": "Theft",
    "8": "Pedestrian Incidents",
    "9": "Fire",
    "10": "Traffic Violations",
    "11": "Burning",
}


@dataclass
class VideoAnnotation:
    """What is known about one video's threats.

    Attributes:
        video_id: the file's stem (``Abuse028_x264``), without extension or folder.
        category: the threat class (``"Abuse"``, ``"Theft"``...), ``"Normal"`` for none.
        segments: threat segments ``(start_s, end_s)`` in seconds from the video start.
        causes: why the threat happens (CUVA's reason; the attribution target).
        duration: the video's length in seconds, if known.
        video: the video file's path (absolute, or relative to a videos folder).
        split: ``"train"``, ``"val"`` or ``"test"`` when the source says.
        descriptions: event descriptions (UCA sentences, one per segment; CUVA's).
        results: the threat's effects (CUVA's result).
        extra: anything else the source carries (frame counts, fps, importance, ...).
    """

    video_id: str
    category: str = NORMAL
    segments: list[tuple[float, float]] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    duration: float | None = None
    video: str | None = None
    split: str | None = None
    descriptions: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_threat(self) -> bool:
        """Whether the video shows a threat (its category is not ``Normal``)."""
        return not is_normal(self.category)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["segments"] = [list(s) for s in self.segments]
        return data


def is_normal(category: str) -> bool:
    c = category.strip().lower().replace("-", "_").replace(" ", "_")
    return c in {"normal", "normal_videos", "normal_videos_event", "testing_normal_videos_anomaly"} or c.startswith(
        "normal_video"
    )


def find_videos(root: str | os.PathLike) -> dict[str, Path]:
    """Map each video file's stem to its path under ``root`` (recursively: class folders).

    Raises:
        AnnotationError: ``root`` is not a folder, or two files share a stem.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "the videos folder does not exist")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            if path.stem in found:
                raise AnnotationError(path, f"two videos named {path.stem!r} (also {found[path.stem]})")
            found[path.stem] = path
    return found


def _video_stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in VIDEO_EXTENSIONS else base


# -- UCF-Crime -----------------------------------------------------------------------


def _number(text: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, f"{what} must be a number, got {text!r}", line=line) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AnnotationError(path, f"{what} must be finite, got {text!r}", line=line)
    return value


def read_ucf_crime(
    path: str | os.PathLike,
    fps: float = 30.0,
    videos: str | os.PathLike | None = None,
) -> list[VideoAnnotation]:
    """Read UCF-Crime's ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``.

    Lines are ``name class start1 end1 start2 end2`` (frame indices, ``-1`` = no such
    segment), or the 7-column variant ``name total_frames class start1 end1 start2 end2``.
    Names may carry ``.mp4`` or not and a class folder (``Arson/Arson022_x264.mp4``);
    separators are runs of spaces or tabs; blank lines and ``#`` comments are skipped.

    Args:
        path: the annotation file.
        fps: frames per second used to turn frame indices into seconds (the dataset
            states 30).
        videos: a folder holding the videos (class sub-folders allowed). When given,
            each video's own frame rate and duration are read from its file
            (``extra["fps_source"] == "video"``), which is more exact than ``fps``.

    Returns:
        one :class:`VideoAnnotation` per line, in file order, ``split="test"``.

    When the video's length is known (the 7-column variant, or ``videos``), a segment
    that ends after it is cut at the end, and one that starts at or after it is an error.

    Raises:
        AnnotationError: a line with the wrong number of columns, a value that is not a
            number, a half-missing segment, an end before its start, a segment starting
            past the video's end, a duplicate name.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    files = find_videos(videos) if videos is not None else {}
    out: list[VideoAnnotation] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, category, frames, num_frames = _ucf_columns(line.split(), path, lineno)
        video_id = _video_stem(name)
        if video_id in seen:
            raise AnnotationError(path, f"video {video_id!r} is listed twice (also line {seen[video_id]})", line=lineno)
        seen[video_id] = lineno
        file = files.get(video_id)
        rate, duration, source = _ucf_timing(file, num_frames, fps)
        segments = _ucf_within(_ucf_segments(frames, rate, path, lineno), duration, path, lineno)
        if is_normal(category):
            category = NORMAL
            if segments:
                raise AnnotationError(path, "a Normal video cannot have threat segments", line=lineno)
        extra: dict[str, Any] = {"fps": rate, "fps_source": source, "frame_segments": [frames[0:2], frames[2:4]]}
        if num_frames is not None:
            extra["num_frames"] = int(num_frames)
        video = str(file) if file is not None else name.replace("\\", "/")
        out.append(VideoAnnotation(video_id=video_id, category=category, segments=segments, duration=duration,
                                   video=video, split="test", extra=extra))
    return out


def _ucf_columns(parts: list[str], path: Path, lineno: int) -> tuple[str, str, list[float], float | None]:
    """``(name, class, [start1, end1, start2, end2], total frames or None)`` of one line."""
    if len(parts) == 7:
        name, total, category, values = parts[0], parts[1], parts[2], parts[3:]
        num_frames = _number(total, path, lineno, "the total frame count (column 2)")
    elif len(parts) == 6:
        name, category, values, num_frames = parts[0], parts[1], parts[2:], None
    else:
        raise AnnotationError(
            path,
            f"expected 6 columns (video class start1 end1 start2 end2) or 7 (video frames class ...), got {len(parts)}",
            line=lineno,
        )
    frames = [_number(v, path, lineno, f"column {i + len(parts) - 3}") for i, v in enumerate(values)]
    return name, category, frames, num_frames


def _ucf_timing(file: Path | None, num_frames: float | None, fps: float) -> tuple[float, float | None, str]:
    """``(frame rate, duration, where the rate came from)``: the video's own when its file
    is known, else ``fps``."""
    if file is not None:
        from uprm.data.video import probe_video

        info = probe_video(file)
        return (info.fps, info.duration, "video") if info.fps > 0 else (fps, info.duration, "default")
    return fps, (num_frames / fps if num_frames is not None else None), "default"


def _ucf_segments(frames: list[float], rate: float, path: Path, lineno: int) -> list[tuple[float, float]]:
    segments = []
    for k in range(0, 4, 2):
        s, e = frames[k], frames[k + 1]
        if s == -1 and e == -1:
            continue
        if s < 0 or e < 0:
            raise AnnotationError(
                path, f"segment {k // 2 + 1} has one end missing ({s:g}, {e:g}); use -1 -1 for none", line=lineno
            )
        if e < s:
            raise AnnotationError(path, f"segment {k // 2 + 1} ends ({e:g}) before it starts ({s:g})", line=lineno)
        segments.append((s / rate, e / rate))
    return segments


def _ucf_within(segments: list[tuple[float, float]], duration: float | None, path: Path,
                lineno: int) -> list[tuple[float, float]]:
    """Segments checked against the video's length when it is known (the 7-column
    variant's frame count, or the video file): one that starts at or after the end is an
    error; one that ends after it is cut at the end (the dataset's end frames overrun the
    last frame by a few)."""
    if duration is None:
        return segments
    out = []
    for s, e in segments:
        if s >= duration:
            raise AnnotationError(
                path, f"the segment {s:.2f}-{e:.2f} s starts at or after the video's end ({duration:.2f} s)",
                line=lineno,
            )
        out.append((s, min(e, duration)))
    return out


# -- UCA ---------------------------------------------------------------------------------


def _category_from_id(video_id: str) -> str:
    """``Abuse037_x264`` → ``Abuse``; ``Normal_Videos_003_x264`` → ``Normal``."""
    if video_id.lower().startswith("normal"):
        return NORMAL
    m = re.match(r"[A-Za-z]+", video_id)
    return m.group(0) if m else video_id


def _split_from_name(path: Path) -> str | None:
    name = path.stem.lower()
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        if re.search(rf"(^|[_\-.]){key}", name):
            return split
    return None


def read_uca(path: str | os.PathLike, split: str | None = None) -> list[VideoAnnotation]:
    """Read UCA (``UCFCrime_{Train,Val,Test}.json`` or its text form).

    JSON: ``{video: {"duration": s, "timestamps": [[s, e], ...], "sentences": [...]}}``.
    Text: ``Abuse037_x264 00:01.2 00:08.2 ##A man in black ...`` (one event per line).

    UCA captions *every* event of a video, not only the threat: each event becomes a
    segment and its sentence a ``description`` (``descriptions[i]`` ↔ ``segments[i]``).
    The category comes from the video name (``Abuse037_x264`` → ``Abuse``; ``Normal…``
    videos keep their events in ``extra["events"]`` and have no threat segments); the
    split from the file name (``…_Train.json`` → ``train``) unless given.
    """
    path = Path(path)
    split = split or _split_from_name(path)
    text = _read_text(path)
    events = _uca_json(path, text) if text.lstrip().startswith("{") else _uca_text(path, text)
    out = []
    for vid, (segs, sents, duration) in events.items():
        for i, (s, e) in enumerate(segs):
            if e < s:
                raise AnnotationError(path, f"event {i + 1} ends ({e}) before it starts ({s})", where=vid)
        category = _category_from_id(vid)
        ann = VideoAnnotation(video_id=_video_stem(vid), category=category, duration=duration, split=split)
        if category == NORMAL:
            ann.extra["events"] = [{"segment": list(s), "sentence": t} for s, t in zip(segs, sents)]
        else:
            ann.segments, ann.descriptions = list(segs), list(sents)
        out.append(ann)
    return out


_UCAEvents = dict[str, tuple[list[tuple[float, float]], list[str], "float | None"]]


def _uca_json(path: Path, text: str) -> _UCAEvents:
    data = _loads(path, text)
    events: _UCAEvents = {}
    for vid, item in data.items():
        if not isinstance(item, Mapping):
            raise AnnotationError(path, "expected an object with timestamps and sentences", where=vid)
        stamps, sentences = item.get("timestamps"), item.get("sentences")
        if not isinstance(stamps, list) or not isinstance(sentences, list):
            raise AnnotationError(path, "'timestamps' and 'sentences' must be lists", where=vid)
        if len(stamps) != len(sentences):
            raise AnnotationError(path, f"{len(stamps)} timestamps but {len(sentences)} sentences", where=vid)
        segs = []
        for i, pair in enumerate(stamps):
            if not (isinstance(pair, list) and len(pair) == 2 and all(_is_number(v) for v in pair)):
                raise AnnotationError(path, f"timestamps[{i}] must be [start, end] in seconds, got {pair!r}", where=vid)
            segs.append((float(pair[0]), float(pair[1])))
        duration = item.get("duration")
        if duration is not None and not _is_number(duration):
            raise AnnotationError(path, f"'duration' must be a number of seconds, got {duration!r}", where=vid)
        events[vid] = (segs, [str(s).strip() for s in sentences], float(duration) if duration is not None else None)
    return events


def _uca_text(path: Path, text: str) -> _UCAEvents:
    events: _UCAEvents = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3:
            raise AnnotationError(path, "expected 'video start end ##sentence'", line=lineno)
        start, end = parse_time(parts[1]), parse_time(parts[2])
        if start is None or end is None:
            raise AnnotationError(path, f"times must be mm:ss(.s) or seconds, got {parts[1]!r} {parts[2]!r}", line=lineno)
        segs, sents, _ = events.setdefault(_video_stem(parts[0]), ([], [], None))
        segs.append((start, end))
        sents.append(sentence.strip())
    return events


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- CUVA ----------------------------------------------------------------------------------


def parse_mmss_moments(text: str) -> list[tuple[float, float]]:
    """CUVA's moments: ``[0052,0114][0118,0144]`` → ``[(52, 74), (78, 104)]`` seconds.

    Each time is 4 digits ``MMSS`` (6 digits ``HHMMSS`` and ``mm:ss`` are accepted too);
    full-width brackets and commas are accepted.

    Raises:
        ValueError: a pair that is not two times, a seconds field ≥ 60, end < start.
    """
    norm = text.translate(str.maketrans("【】［］，：", "[][],:")).strip()
    pairs = re.findall(r"\[([^\[\]]*)\]", norm)
    if not pairs or re.sub(r"\[[^\[\]]*\]", "", norm).strip(" ,;"):
        raise ValueError(f"expected moments like [0052,0114][0118,0144], got {text!r}")
    out = []
    for pair in pairs:
        values = [v.strip() for v in pair.split(",")]
        if len(values) != 2:
            raise ValueError(f"a moment must be [start,end], got [{pair}]")
        times = [parse_mmss(v) for v in values]
        if times[1] < times[0]:
            raise ValueError(f"the moment [{pair}] ends before it starts")
        out.append((times[0], times[1]))
    return out


def read_cuva_categories(path: str | os.PathLike) -> dict[str, str]:
    """Read CUVA's ``Category.txt`` (``7-Theft`` then ``7-1 Residential`` lines) into
    ``{"7": "Theft", "7-1": "Theft/Residential", ...}``."""
    path = Path(path)
    out: dict[str, str] = {}
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"^(\d+)-(\d+)\s+(.+)$", line)
        if m:
            main = out.get(m.group(1))
            if main is None:
                raise AnnotationError(path, f"sub-class {m.group(1)}-{m.group(2)} before its class", line=lineno)
            out[f"{m.group(1)}-{m.group(2)}"] = f"{main}/{m.group(3).strip()}"
            continue
        m = re.match(r"^(\d+)\s*-\s*(.+)$", line)
        if not m:
            raise AnnotationError(path, "expected '7-Theft' or '7-1 Residential'", line=lineno)
        out[m.group(1)] = m.group(2).strip()
    return out


def _bracket_texts(text: str) -> list[str]:
    """``[a][b]`` → ``["a", "b"]``; text without brackets → ``[text]``."""
    text = text.translate(str.maketrans("【】［］", "[][]")).strip()
    if not text:
        return []
    items = re.findall(r"\[([^\[\]]*)\]", text)
    if items and not re.sub(r"\[[^\[\]]*\]", "", text).strip():
        return [i.strip() for i in items if i.strip()]
    return [text]


def _norm_header(h: Any) -> str:
    return re.sub(r"[\s_\-–]+", "", str(h or "")).lower()


_CUVA_COLUMNS = {
    "video_id": ("videoid", "video", "id", "videoname", "name"),
    "category": ("x1",),
    "reason": ("x2reason", "reason"),
    "result": ("x2result", "result"),
    "moment": ("x3moment", "moment", "moments"),
    "description": ("x3description", "description"),
    "key": ("x4keysentences", "x4keysentence", "keysentences"),
}


def read_cuva(
    path: str | os.PathLike,
    categories: Mapping[str, str] | str | os.PathLike | None = None,
    sheet: str | None = None,
) -> list[VideoAnnotation]:
    """Read CUVA: the original annotation sheet (``.xlsx``) or the Hugging Face
    instruction rows (``.json`` / ``.jsonl`` / ``.csv``).

    Sheet columns (found by name, case and spacing ignored): ``video_id``, ``X1``
    (``[7-1,5]``: sub-class code and importance), ``X2 - reason`` (→ ``causes``),
    ``X2 - result`` (→ ``results``), ``X3 - moment`` (MMSS pairs
    ``[0052,0114][0118,0144]`` → ``segments``), ``X3 - description`` (``[text][text]`` →
    ``descriptions``), ``X4 - key sentences`` (→ ``extra["key_sentences"]``).

    Instruction rows: ``instruction``, ``visual_input`` (``00001.mp4``), ``output``,
    ``task`` ∈ {Detection, Classification, Cause, Result, Timestamp, Description}, ``ID``;
    rows of one video are merged (Cause → causes, Result → results, Timestamp →
    segments, Description → descriptions, Classification → category, Detection →
    ``extra["detection"]``).

    Args:
        categories: the class names by code (a mapping, or the path of the dataset's
            ``Category.txt``); default :data:`CUVA_CATEGORIES`. The category is the
            top-level class; the sub-class code is kept in ``extra["subclass"]``.
        sheet: the worksheet name (default: the first one).
    """
    path = Path(path)
    if categories is None:
        names = dict(CUVA_CATEGORIES)
    elif isinstance(categories, Mapping):
        names = dict(categories)
    else:
        names = read_cuva_categories(categories)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_cuva_sheet(path, names, sheet)
    if suffix in (".json", ".jsonl", ".csv"):
        return _read_cuva_rows(path, names)
    raise AnnotationError(path, f"unknown CUVA file type {suffix!r} (expected .xlsx, .json, .jsonl or .csv)")


def _cuva_category(
    code: str, names: Mapping[str, str], path: Path, line: int | None, where: str | None
) -> tuple[str, dict]:
    """``[7-1,5]`` → ``("Theft", {"subclass": "7-1", "importance": 5})``."""
    text = code.translate(str.maketrans("【】［］，", "[][],")).strip().strip("[]")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not re.fullmatch(r"\d+(-\d+)?", parts[0]):
        raise AnnotationError(path, f"X1 must look like [7-1,5] (sub-class, importance), got {code!r}", line, where)
    main = parts[0].split("-")[0]
    if main not in names:
        raise AnnotationError(
            path, f"unknown CUVA class {parts[0]!r} in X1 (known: {', '.join(sorted(names, key=int))})", line, where
        )
    extra: dict[str, Any] = {"subclass": parts[0]}
    if len(parts) > 1:
        try:
            extra["importance"] = int(float(parts[1]))
        except ValueError:
            raise AnnotationError(path, f"X1 importance must be a number, got {parts[1]!r}", line, where) from None
    return names[main].split("/")[0], extra


def _read_cuva_sheet(path: Path, names: Mapping[str, str], sheet: str | None) -> list[VideoAnnotation]:
    book, ws = _open_sheet(path, sheet)
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise AnnotationError(path, "the sheet is empty", where=ws.title)
    col = _cuva_columns(path, header, ws.title)
    out = []
    seen: dict[str, int] = {}
    for rowno, row in enumerate(rows, start=2):
        cells = {key: _cell(row, i) for key, i in col.items()}
        if not cells["video_id"] and not any(v not in (None, "") for v in row):
            continue  # an empty row
        ann = _cuva_sheet_row(path, cells, names, f"sheet {ws.title!r} row {rowno}")
        if ann.video_id in seen:
            raise AnnotationError(path, f"video {ann.video_id!r} appears twice (also row {seen[ann.video_id]})",
                                  where=f"sheet {ws.title!r} row {rowno}")
        seen[ann.video_id] = rowno
        out.append(ann)
    book.close()
    return out


def _open_sheet(path: Path, sheet: str | None):
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - openpyxl is a declared extra
        raise AnnotationError(path, 'reading the CUVA sheet needs openpyxl: pip install "uprm-core[data]"') from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise AnnotationError(path, f"not a readable xlsx workbook ({exc})") from None
    try:
        return book, (book[sheet] if sheet is not None else book.worksheets[0])
    except KeyError:
        raise AnnotationError(path, f"no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})") from None


def _cuva_columns(path: Path, header: Sequence[Any], title: str) -> dict[str, int]:
    """Column index of each CUVA field, found by name (case and spacing ignored)."""
    normed = [_norm_header(h) for h in header]
    col: dict[str, int] = {}
    for key, aliases in _CUVA_COLUMNS.items():
        found = next((normed.index(a) for a in aliases if a in normed), None)
        if found is not None:
            col[key] = found
    missing = [k for k in ("video_id", "category", "moment") if k not in col]
    if missing:
        raise AnnotationError(
            path,
            f"no {missing[0]!r} column (expected video_id, X1, X2 - reason, X2 - result, X3 - moment, "
            f"X3 - description, X4 - key sentences; found {[h for h in header if h]})",
            where=title,
        )
    return {key: col.get(key) for key in _CUVA_COLUMNS}  # type: ignore[misc]


def _cell(row: Sequence[Any], i: int | None) -> str:
    value = row[i] if i is not None and i < len(row) else None
    return "" if value is None else str(value).strip()


def _cuva_sheet_row(path: Path, cells: Mapping[str, str], names: Mapping[str, str], where: str) -> VideoAnnotation:
    vid_raw = cells["video_id"]
    if not vid_raw:
        raise AnnotationError(path, "empty video_id", where=where)
    category, extra = _cuva_category(cells["category"], names, path, None, f"{where}, column X1")
    try:
        segments = parse_mmss_moments(cells["moment"]) if cells["moment"] else []
    except ValueError as exc:
        raise AnnotationError(path, str(exc), where=f"{where}, column X3 - moment") from None
    if not segments:
        raise AnnotationError(
            path, "no moment: a CUVA video needs at least one [MMSS,MMSS]", where=f"{where}, column X3 - moment"
        )
    if cells["key"]:
        extra["key_sentences"] = _bracket_texts(cells["key"])
    return VideoAnnotation(
        video_id=_video_stem(vid_raw[:-2] if vid_raw.endswith(".0") else vid_raw),
        category=category,
        segments=segments,
        causes=_bracket_texts(cells["reason"]),
        results=_bracket_texts(cells["result"]),
        descriptions=_bracket_texts(cells["description"]),
        video=vid_raw if os.path.splitext(vid_raw)[1].lower() in VIDEO_EXTENSIONS else None,
        extra=extra,
    )


def _load_rows(path: Path) -> list[tuple[int | None, dict]]:
    """(line, row) pairs of a json list, a jsonl file or a csv file."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise AnnotationError(path, "no such file")
    text = _read_text(path)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            return [(reader.line_num, dict(r)) for r in reader]
        except csv.Error as exc:  # e.g. a field over csv's size limit, met before the row's line is counted
            raise AnnotationError(path, f"not a readable CSV row ({exc})", line=reader.line_num + 1) from None
    if suffix == ".jsonl":
        return [(lineno, _loads(path, raw, lineno)) for lineno, raw in enumerate(text.splitlines(), start=1)
                if raw.strip()]
    data = _loads(path, text)
    if isinstance(data, Mapping):  # {"data": [...]} or {"train": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise AnnotationError(path, "expected a JSON list of instruction rows")
        data = lists[0]
    if not isinstance(data, list):
        raise AnnotationError(path, "expected a JSON list of instruction rows")
    return [(None, r) for r in data]


_CUVA_TASKS = {"detection", "classification", "cause", "result", "timestamp", "description"}


def _read_cuva_rows(path: Path, names: Mapping[str, str]) -> list[VideoAnnotation]:
    by_video: dict[str, VideoAnnotation] = {}
    for i, (lineno, row) in enumerate(_load_rows(path)):
        where = None if lineno is not None else f"row {i}"
        task, visual, output = _cuva_row_fields(path, row, lineno, where)
        vid = _video_stem(visual)
        ann = by_video.setdefault(vid, VideoAnnotation(video_id=vid, category="", video=visual))
        _CUVA_TASK_READERS[task](ann, output, names, path, lineno, where)
    out = list(by_video.values())
    for ann in out:
        if not ann.category:
            ann.category = "Anomaly"  # every CUVA video shows one; the class row was absent
        ann.causes = list(dict.fromkeys(ann.causes))
    return out


def _cuva_row_fields(path: Path, row: Any, lineno: int | None, where: str | None) -> tuple[str, str, str]:
    if not isinstance(row, Mapping):
        raise AnnotationError(path, "a row must be an object", lineno, where)
    r = {_norm_header(k): v for k, v in row.items()}
    for key in ("visualinput", "output", "task"):
        if r.get(key) in (None, ""):
            raise AnnotationError(path, f"missing field {key.replace('visualinput', 'visual_input')!r}", lineno, where)
    task = str(r["task"]).strip().lower()
    if task not in _CUVA_TASKS:
        raise AnnotationError(path, f"unknown task {r['task']!r} (expected one of {sorted(_CUVA_TASKS)})", lineno, where)
    return task, str(r["visualinput"]).strip(), str(r["output"]).strip()


def _cuva_classification(ann: VideoAnnotation, output: str, names, path, lineno, where) -> None:
    code = re.search(r"\d+(-\d+)?", output)
    if code and code.group(0).split("-")[0] in names:
        ann.category, extra = _cuva_category(code.group(0), names, path, lineno, where)
        ann.extra.update(extra)
    else:
        ann.category = output.strip("[] .")


#: moments written in CUVA's own code, ``[MMSS,MMSS]`` (or HHMMSS), one or more
_MMSS_MOMENTS = re.compile(r"\s*(?:[\[【［]\s*\d{4,6}\s*[,，]\s*\d{4,6}\s*[\]】］]\s*)+")


def _cuva_timestamp(ann: VideoAnnotation, output: str, names, path, lineno, where) -> None:
    try:
        ann.segments.extend(parse_mmss_moments(output))
    except ValueError as exc:
        if _MMSS_MOMENTS.fullmatch(output):  # CUVA's code with a bad time (e.g. [0075,0110]): never read as seconds
            raise AnnotationError(path, str(exc), lineno, where) from None
        pairs = _time_pairs(output)
        if not pairs:
            raise AnnotationError(path, f"cannot read a time span from {output!r}", lineno, where) from None
        ann.segments.extend(pairs)


_CUVA_TASK_READERS = {
    "cause": lambda ann, output, *_: ann.causes.extend(_bracket_texts(output)),
    "result": lambda ann, output, *_: ann.results.extend(_bracket_texts(output)),
    "description": lambda ann, output, *_: ann.descriptions.extend(_bracket_texts(output)),
    "detection": lambda ann, output, *_: ann.extra.__setitem__("detection", output),
    "classification": _cuva_classification,
    "timestamp": _cuva_timestamp,
}


# -- ActivityNet-style JSON ----------------------------------------------------------------


def read_activitynet(path: str | os.PathLike) -> list[VideoAnnotation]:
    """Read ActivityNet ground truth: ``{"database": {vid: {"duration": d, "subset": s,
    "annotations": [{"segment": [s, e], "label": L}]}}}``.

    A video with no annotations is ``Normal``; otherwise the category is the most
    frequent label.
    """
    path = Path(path)
    data = _read_json(path)
    database = data.get("database") if isinstance(data, Mapping) else None
    if not isinstance(database, Mapping):
        raise AnnotationError(path, "expected an object with a 'database' object")
    out = []
    for vid, item in database.items():
        if not isinstance(item, Mapping):
            raise AnnotationError(path, "expected an object", where=f"database.{vid}")
        anns = item.get("annotations", [])
        if not isinstance(anns, list):
            raise AnnotationError(path, "'annotations' must be a list", where=f"database.{vid}")
        segments = [_anet_segment(path, a, f"database.{vid}.annotations[{i}]") for i, a in enumerate(anns)]
        labels = [str(a.get("label", "Anomaly")) for a in anns]
        category = max(set(labels), key=labels.count) if labels else NORMAL
        split, causes = _anet_split_causes(path, item, f"database.{vid}")
        duration = item.get("duration")
        if duration is not None and not (_is_number(duration) and duration >= 0):
            raise AnnotationError(path, f"'duration' must be seconds >= 0, got {duration!r}", where=f"database.{vid}")
        ann = VideoAnnotation(
            video_id=str(vid),
            category=category,
            segments=segments,
            duration=float(duration) if duration is not None else None,
            split=split,
            causes=causes,
        )
        if len(set(labels)) > 1:
            ann.extra["labels"] = labels
        out.append(ann)
    return out


def _anet_segment(path: Path, a: Any, where: str, ordered: bool = True) -> tuple[float, float]:
    seg = a.get("segment") if isinstance(a, Mapping) else None
    if not (isinstance(seg, list) and len(seg) == 2 and all(_is_number(v) for v in seg)):
        raise AnnotationError(path, f"'segment' must be [start, end] (finite seconds), got {seg!r}", where=where)
    if ordered and seg[1] < seg[0]:
        raise AnnotationError(path, f"'segment' ends ({seg[1]}) before it starts ({seg[0]})", where=where)
    return float(seg[0]), float(seg[1])


def _anet_split_causes(path: Path, item: Mapping[str, Any], where: str) -> tuple[str | None, list[str]]:
    """A ground-truth video's split (``"training"`` → ``"train"``...) and causes, checked."""
    subset, causes = item.get("subset"), item.get("causes", [])
    if subset is not None and not isinstance(subset, str):
        raise AnnotationError(path, f"'subset' must be a string, got {subset!r}", where=where)
    if not isinstance(causes, list):
        raise AnnotationError(path, f"'causes' must be a list of sentences, got {causes!r}", where=where)
    split = {"training": "train", "validation": "val", "testing": "test"}.get(subset, subset)
    return split, [str(c) for c in causes]


def write_activitynet(annotations: Iterable[VideoAnnotation], path: str | os.PathLike, version: str = "UPRM") -> None:
    """Write ActivityNet ground truth (atomically). Causes, when present, are kept in a
    ``causes`` list beside the annotations (ActivityNet tools ignore unknown keys)."""
    database = {}
    for ann in annotations:
        item: dict[str, Any] = {
            "annotations": [{"segment": [float(s), float(e)], "label": ann.category} for s, e in ann.segments]
        }
        if ann.duration is not None:
            item["duration"] = float(ann.duration)
        if ann.split is not None:
            item["subset"] = {"train": "training", "val": "validation", "test": "testing"}.get(ann.split, ann.split)
        if ann.causes:
            item["causes"] = list(ann.causes)
        database[ann.video_id] = item
    atomic_write_json(path, {"version": version, "database": database})


def read_activitynet_predictions(path: str | os.PathLike, labels: bool = False) -> list[tuple]:
    """Read ActivityNet detections ``{"results": {vid: [{"segment": [s, e], "score": p,
    "label": L}]}}`` as ``(video_id, start, end, score)`` tuples (plus the label with
    ``labels=True``), the prediction format of :func:`uprm.metrics.map_at_tiou`."""
    path = Path(path)
    data = _read_json(path)
    results = data.get("results") if isinstance(data, Mapping) else None
    if not isinstance(results, Mapping):
        raise AnnotationError(path, "expected an object with a 'results' object")
    out: list[tuple] = []
    for vid, items in results.items():
        if not isinstance(items, list):
            raise AnnotationError(path, "expected a list of detections", where=f"results.{vid}")
        for i, d in enumerate(items):
            where = f"results.{vid}[{i}]"
            start, end = _anet_segment(path, d, where, ordered=False)  # scoring names an end before its start
            score = d.get("score", 1.0)
            if not _is_number(score):
                raise AnnotationError(path, f"'score' must be a number, got {score!r}", where=where)
            row = (str(vid), start, end, float(score))
            out.append((*row, d.get("label")) if labels else row)
    return out


def write_activitynet_predictions(
    predictions: Iterable[Any], path: str | os.PathLike, version: str = "UPRM", label: str = "Anomaly"
) -> None:
    """Write detections as ActivityNet results (atomically). Each prediction is a
    ``(video_id, start, end, score[, label])`` tuple or a mapping with those keys."""
    results: dict[str, list] = {}
    for p in predictions:
        if isinstance(p, Mapping):
            vid, s, e, sc, lb = p["video_id"], p["start"], p["end"], p.get("score", 1.0), p.get("label", label)
        else:
            vid, s, e, sc, *rest = p
            lb = rest[0] if rest and rest[0] is not None else label
        results.setdefault(str(vid), []).append({"segment": [float(s), float(e)], "score": float(sc), "label": lb})
    atomic_write_json(path, {"version": version, "results": results, "external_data": {}})


def _time_pairs(text: str) -> list[tuple[float, float]]:
    """Time spans written in words: ``12.5s to 20s``, ``between 0:03 and 0:09``."""
    values = [parse_time(t) for t in re.findall(rf"{CLOCK}|{NUMBER}", text)]
    values = [v for v in values if v is not None]
    if len(values) < 2 or len(values) % 2:
        return []
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    return pairs if all(e >= s for s, e in pairs) else []


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AnnotationError(path, "no such file") from None
    except UnicodeDecodeError as exc:
        line = bytes(exc.object[:exc.start]).count(b"\n") + 1
        raise AnnotationError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", line=line) from None


def _loads(path: Path, text: str, line: int | None = None) -> Any:
    """``json.loads`` whose errors are :class:`AnnotationError` s naming the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"invalid JSON ({exc.msg})", line=line or exc.lineno) from None
    except RecursionError:
        raise AnnotationError(path, "invalid JSON (nested too deeply)", line=line) from None


def _read_json(path: Path) -> Any:
    return _loads(path, _read_text(path))
