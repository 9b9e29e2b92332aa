"""The DeepSVU instruction sets: identify / locate / attribute conversations (paper §4.1)
in the Video-LLaVA conversation JSON of docs/formats.md.

>>> from uprm.data import VideoAnnotation, build_instructions
>>> records = build_instructions([VideoAnnotation("Abuse028_x264", "Abuse", [(5.5, 8.0)],
...                                               causes=["A man kicks a woman."], duration=60.0)])
>>> [r["conversations"][1]["value"] for r in records]  # doctest: +NORMALIZE_WHITESPACE
['Yes, there exists a threat.', 'The threat occurs between 5.5 and 8 seconds.',
 'The threat is attributed to a man kicks a woman.']

With a site taxonomy (``taxonomy=``, :mod:`uprm.taxonomy`), a threat whose labels give
no cause is still attributed: to one of its category's cause phrasings (chosen by a hash
of the seed and the video id, the same for every window of the video); a threat with
causes keeps them, and without a taxonomy nothing changes.

Splits are deterministic: a video's split comes from a hash of its id and the seed
(:func:`assign_split`), so a video never lands in two splits and adding videos does not
move the others. Long videos can be cut into windows (``window_s``); the times in the
answers (and in ``segments``) are then relative to the window's start.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from uprm.data.annotations import NORMAL, AnnotationError, VideoAnnotation, find_videos
from uprm.prompts import ANSWERS, CAUSE_PREFIX, LOCATE_PREFIX, QUESTIONS, STAGE2_TASKS
from uprm.taxonomy import Taxonomy, load_taxonomy
from uprm.utils import atomic_write_json

__all__ = [
    "ANSWERS",
    "QUESTIONS",
    "SPLITS",
    "STAGE2_TASKS",
    "InstructionSet",
    "assign_split",
    "attribute_answer",
    "build_instructions",
    "count_records",
    "format_seconds",
    "identify_answer",
    "locate_answer",
    "make_record",
    "write_instructions",
]

SPLITS = ("train", "val", "test")


def format_seconds(seconds: float) -> str:
    """Seconds as the answers write them: at most one decimal (half up), a trailing
    ``.0`` dropped.

    >>> format_seconds(5.5), format_seconds(8.0), format_seconds(12.25), format_seconds(0.04)
    ('5.5', '8', '12.3', '0')
    """
    value = Decimal(repr(float(seconds))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if value == 0:
        return "0"
    text = f"{value:f}"
    return text[:-2] if text.endswith(".0") else text


def identify_answer(threat: bool) -> str:
    return ANSWERS["identify_yes"] if threat else ANSWERS["identify_no"]


def locate_answer(segments: Sequence[tuple[float, float]]) -> str:
    """``The threat occurs between 3 and 5 seconds and between 9 and 12 seconds.``"""
    if not segments:
        return ANSWERS["locate_none"]
    spans = [f"between {format_seconds(s)} and {format_seconds(e)} seconds" for s, e in segments]
    return f"{LOCATE_PREFIX} " + " and ".join(spans) + "."


def attribute_answer(causes: Sequence[str]) -> str:
    """``The threat is attributed to <cause>.`` Several causes are joined with ``; ``;
    a leading capital is lowered unless the word looks like a name or an acronym."""
    parts = []
    for cause in causes:
        text = " ".join(str(cause).split()).rstrip(" .;")
        if not text:
            continue
        first = text.split(" ", 1)[0]
        if first == "A" or (len(first) > 1 and first[0].isupper() and first[1:].islower()):
            text = text[0].lower() + text[1:]
        parts.append(text)
    if not parts:
        raise ValueError("no cause to attribute the threat to")
    return f"{CAUSE_PREFIX} {'; '.join(parts)}."


def assign_split(video_id: str, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """``train`` / ``val`` / ``test`` for a video, from a SHA-256 hash of the seed and
    its id: stable across runs, machines and Python versions."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {fractions}")
    digest = hashlib.sha256(f"{seed}\x00{video_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = float(sum(fractions))
    edge = 0.0
    for split, f in zip(SPLITS, fractions):
        edge += f / total
        if u < edge:
            return split
    return SPLITS[-1]


def make_record(
    sample_id: str,
    task: str,
    question: str,
    answer: str,
    *,
    video: str | None = None,
    image: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One conversation record (docs/formats.md). ``<video>`` (or ``<image>``) is put
    before the question; ``fields`` with value ``None`` are left out."""
    if (video is None) == (image is None):
        raise ValueError("a record needs exactly one of video= or image=")
    token = "<video>" if video is not None else "<image>"
    record: dict[str, Any] = {"id": sample_id}
    if video is not None:
        record["video"] = video
    else:
        record["image"] = image
    record["task"] = task
    record["conversations"] = [
        {"from": "human", "value": f"{token}\n{question}"},
        {"from": "gpt", "value": answer},
    ]
    record.update({k: v for k, v in fields.items() if v is not None})
    return record


class InstructionSet(list):
    """The records (a list of dicts) with what the builder skipped and wrote.

    Attributes:
        skipped: ``(video_id, reason)`` for each annotation left out.
        files: ``{split: path}`` of the JSON files written (empty if none).
    """

    def __init__(self, records: Iterable[dict] = (), skipped: Iterable[tuple[str, str]] = ()):
        super().__init__(records)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self.files: dict[str, Path] = {}

    def counts(self) -> dict[str, Counter]:
        return count_records(self)


def count_records(records: Iterable[Mapping[str, Any]]) -> dict[str, Counter]:
    """Counts of records by ``task``, ``split``, ``category`` and ``(split, task)``."""
    out = {"task": Counter(), "split": Counter(), "category": Counter(), "split/task": Counter()}
    for r in records:
        out["task"][r.get("task", "?")] += 1
        out["split"][r.get("split", "-")] += 1
        out["category"][r.get("category", "-")] += 1
        out["split/task"][f"{r.get('split', '-')}/{r.get('task', '?')}"] += 1
    return out


def _relpath(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _clip_segments(segments: Sequence[tuple[float, float]], start: float, end: float, min_overlap: float):
    out = []
    for s, e in sorted(segments):
        a, b = max(s, start), min(e, end)
        if b - a > min_overlap:
            out.append((round(a - start, 3), round(b - start, 3)))
    return out


def build_instructions(
    annotations: Iterable[VideoAnnotation],
    out: str | os.PathLike | None = None,
    *,
    name: str = "instructions",
    videos: str | os.PathLike | None = None,
    tasks: Sequence[str] = STAGE2_TASKS,
    seed: int = 0,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    source_split: bool = True,
    negatives: bool = True,
    negative_ratio: float | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    min_overlap_s: float = 0.0,
    keypoints: str | os.PathLike | None = None,
    scene_graphs: str | os.PathLike | None = None,
    missing: str | None = None,
    base_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
    taxonomy: str | os.PathLike | Taxonomy | None = None,
) -> InstructionSet:
    """Build (and optionally write) the identify / locate / attribute conversations.

    For each annotated video (or each window of it): *identify* asks whether there is a
    threat; *locate* asks where (times relative to the window start, :func:`format_seconds`);
    *attribute* asks why — only for threats with a known cause (with ``taxonomy``: their
    annotated causes, else one of their category's cause phrasings). Normal videos (and
    windows without a threat) are the negatives: "No, there is no threat." /
    "There is no threat in the video.".

    Args:
        annotations: from :func:`~uprm.data.read_ucf_crime`, :func:`~uprm.data.read_cuva`, ...
        out: where to write. A ``.json`` path: one file with every record (each has a
            ``split``). A folder: ``{out}/{name}_{split}.json`` per split. ``None``: only
            return the records. Files are written atomically; video, keypoint and
            scene-graph paths are made relative to the JSON file's folder.
        name: file-name prefix in a folder ``out``.
        videos: folder of the videos (searched recursively by file stem). Without it a
            record's video is the annotation's ``video`` or ``<video_id>.mp4``.
        tasks: any of ``identify``, ``locate``, ``attribute``.
        seed, splits: the hash split (:func:`assign_split`) and its train/val/test
            fractions; with ``source_split`` a split the source gives (UCA's files) wins.
        negatives: include normal videos; ``negative_ratio`` keeps at most that many
            normal videos per threat video (chosen by hash, deterministic).
        window_s, stride_s: cut each video into windows (:func:`~uprm.data.iter_windows`);
            a window is a threat when a segment overlaps it by more than
            ``min_overlap_s`` seconds.
        keypoints, scene_graphs: folders of per-video sidecar JSON (``<video_id>.json``,
            docs/formats.md) to reference in the records.
        missing: what to do with a video whose file is not in ``videos``: ``"skip"``
            (default when ``videos`` is given), ``"error"`` or ``"keep"``.
        base_dir: what paths are relative to when ``out`` is ``None``.
        show_progress: a progress bar over the videos.
        taxonomy: the site's categories (a YAML file or a :class:`~uprm.taxonomy.Taxonomy`).
            Every annotation's category must be one of them
            (:class:`~uprm.taxonomy.UnknownCategoryError` names the label and the video);
            a threat without causes is attributed to one of its category's cause
            phrasings, and its attribute record says ``"cause_source": "taxonomy"``.
            ``None`` (default): only annotated causes, and the records are exactly as
            without this option.

    Returns:
        an :class:`InstructionSet` (a list of records) with ``skipped`` and ``files``.
    """
    opts = _BuildOptions.make(out, tasks, missing, videos, keypoints, scene_graphs, base_dir, seed=seed,
                              splits=tuple(splits), source_split=source_split, window_s=window_s, stride_s=stride_s,
                              min_overlap_s=min_overlap_s,
                              taxonomy=load_taxonomy(taxonomy) if taxonomy is not None else None)
    anns = _unique(list(annotations))
    _check_categories(anns, opts.taxonomy)
    selected, skipped = _select(anns, negatives, negative_ratio, seed)
    iterator: Iterable[VideoAnnotation] = selected
    if show_progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="instructions", unit="video")
    records = InstructionSet(skipped=skipped)
    for ann in iterator:
        video_path = _resolve_video(ann, opts.files, opts.missing)
        if video_path is None:
            records.skipped.append((ann.video_id, "no video file"))
            continue
        records.extend(_video_records(ann, video_path, opts))
    if opts.out is not None:
        records.files = write_instructions(records, opts.out, name=name)
    return records


@dataclass(frozen=True)
class _BuildOptions:
    """:func:`build_instructions`'s options, checked and resolved once."""

    out: Path | None
    base: Path | None
    tasks: tuple[str, ...]
    missing: str
    files: Mapping[str, Path] | None
    kp_dir: Path | None
    sg_dir: Path | None
    seed: int
    splits: tuple[float, ...]
    source_split: bool
    window_s: float | None
    stride_s: float | None
    min_overlap_s: float
    taxonomy: Taxonomy | None = None

    @classmethod
    def make(cls, out, tasks, missing, videos, keypoints, scene_graphs, base_dir, **rest: Any) -> _BuildOptions:
        tasks = tuple(tasks)
        unknown = [t for t in tasks if t not in STAGE2_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected some of {list(STAGE2_TASKS)}")
        missing = missing or ("skip" if videos is not None else "keep")
        if missing not in ("skip", "error", "keep"):
            raise ValueError(f"missing must be 'skip', 'error' or 'keep', got {missing!r}")
        out_path = Path(out) if out is not None else None
        if out_path is not None:
            base = out_path.parent if out_path.suffix.lower() == ".json" else out_path
        else:
            base = Path(base_dir) if base_dir else None
        return cls(out=out_path, base=base, tasks=tasks, missing=missing,
                   files=find_videos(videos) if videos is not None else None,
                   kp_dir=Path(keypoints) if keypoints is not None else None,
                   sg_dir=Path(scene_graphs) if scene_graphs is not None else None, **rest)


def _check_categories(anns: Sequence[VideoAnnotation], taxonomy: Taxonomy | None) -> None:
    """With a taxonomy, every annotation's category must be one of its categories."""
    if taxonomy is None:
        return
    for ann in anns:
        taxonomy.check(ann.category, where=f"video {ann.video_id!r}", path=ann.video or None)


def _taxonomy_cause(ann: VideoAnnotation, opts: _BuildOptions) -> str | None:
    """One of the category's cause phrasings for a threat without causes (by a hash of
    the seed and the video id), or ``None``: the annotation has causes, there is no
    taxonomy, or the category has no phrasing."""
    if ann.causes or opts.taxonomy is None or not ann.is_threat:
        return None
    phrasings = opts.taxonomy.causes(ann.category)
    if not phrasings:
        return None
    digest = hashlib.sha256(f"{opts.seed}\x02{ann.video_id}".encode()).digest()
    return phrasings[int.from_bytes(digest[:8], "big") % len(phrasings)]


def _unique(anns: list[VideoAnnotation]) -> list[VideoAnnotation]:
    seen: set[str] = set()
    for ann in anns:
        if ann.video_id in seen:
            raise AnnotationError(ann.video or ann.video_id, f"video {ann.video_id!r} is annotated twice")
        seen.add(ann.video_id)
    return anns


def _select(anns: list[VideoAnnotation], negatives: bool, negative_ratio: float | None,
            seed: int) -> tuple[list[VideoAnnotation], list[tuple[str, str]]]:
    """The videos to use (file order) and ``(video_id, why)`` of those left out."""
    threats = [a for a in anns if a.is_threat]
    normals = [a for a in anns if not a.is_threat] if negatives else []
    skipped: list[tuple[str, str]] = []
    if negative_ratio is not None and len(normals) > negative_ratio * len(threats):
        keep = int(negative_ratio * len(threats))
        ranked = sorted(normals, key=lambda a: hashlib.sha256(f"{seed}\x01{a.video_id}".encode()).digest())
        skipped += [(a.video_id, "over the negative ratio") for a in ranked[keep:]]
        kept = {a.video_id for a in ranked[:keep]}
        normals = [a for a in normals if a.video_id in kept]
    if not negatives:
        skipped += [(a.video_id, "normal video (negatives off)") for a in anns if not a.is_threat]
    selected = {a.video_id for a in threats} | {a.video_id for a in normals}
    return [a for a in anns if a.video_id in selected], skipped


def _video_records(ann: VideoAnnotation, video_path: Path, opts: _BuildOptions) -> list[dict[str, Any]]:
    """Every record of one video: each task of each window."""
    duration = ann.duration
    if duration is None and video_path.exists() and (opts.window_s is not None or opts.files is not None):
        from uprm.data.video import probe_video

        duration = probe_video(video_path).duration
    split = ann.split if (opts.source_split and ann.split) else assign_split(ann.video_id, opts.seed, opts.splits)
    common: dict[str, Any] = {"video_id": ann.video_id, "duration": duration, "split": split}
    for key, folder in (("keypoints", opts.kp_dir), ("scene_graph", opts.sg_dir)):
        if folder is not None and (folder / f"{ann.video_id}.json").exists():
            common[key] = _relpath(folder / f"{ann.video_id}.json", opts.base)
    absolute = opts.files is not None or video_path.is_absolute()
    video_rel = _relpath(video_path, opts.base) if absolute else video_path.as_posix()
    records = []
    for window in _windows(duration, video_path, opts):
        records += _window_records(ann, window, common, video_rel, opts)
    return records


def _windows(duration: float | None, video_path: Path, opts: _BuildOptions) -> list[tuple[float, float] | None]:
    if opts.window_s is None:
        return [(0.0, float(duration)) if duration is not None else None]
    if duration is None:
        raise AnnotationError(video_path, "windows need the video's duration (no annotation and no file to read it from)")
    from uprm.data.video import iter_windows

    return list(iter_windows(duration, opts.window_s, opts.stride_s))


def _window_records(ann: VideoAnnotation, window: tuple[float, float] | None, common: Mapping[str, Any],
                    video_rel: str, opts: _BuildOptions) -> list[dict[str, Any]]:
    windowed = window is not None and opts.window_s is not None
    if window is None:
        segments = sorted((round(s, 3), round(e, 3)) for s, e in ann.segments)
    else:
        segments = _clip_segments(ann.segments, window[0], window[1], opts.min_overlap_s) if ann.is_threat else []
    prefix = f"{ann.video_id}@{format_seconds(window[0])}-{format_seconds(window[1])}" if windowed else ann.video_id
    threat = ann.is_threat and (bool(segments) or not windowed)
    fields = dict(
        common,
        category=ann.category if threat else NORMAL,
        segments=[list(s) for s in segments] if threat else [],
        causes=list(ann.causes) if threat and ann.causes else None,
        window=[float(window[0]), float(window[1])] if window is not None else None,
    )
    if windowed and ann.is_threat and not threat:
        fields["source_category"] = ann.category
    phrasing = _taxonomy_cause(ann, opts)
    causes = [phrasing] if phrasing is not None else ann.causes
    return [
        make_record(f"{prefix}/{task}", task, QUESTIONS[task], answer, video=video_rel, **fields,
                    **({"cause_source": "taxonomy"} if task == "attribute" and phrasing is not None else {}))
        for task, answer in _answers(opts.tasks, threat, segments, causes)
    ]


def _answers(tasks: Sequence[str], threat: bool, segments: Sequence[tuple[float, float]],
             causes: Sequence[str]) -> list[tuple[str, str]]:
    """``(task, answer)`` of each task that can be asked of this window."""
    out = []
    for task in tasks:
        if task == "identify":
            out.append((task, identify_answer(threat)))
        elif task == "locate" and not (threat and not segments):  # a threat of unknown time cannot be located
            out.append((task, locate_answer(segments if threat else [])))
        elif task == "attribute" and threat and causes:
            out.append((task, attribute_answer(causes)))
    return out


def _resolve_video(ann: VideoAnnotation, files: Mapping[str, Path] | None, missing: str) -> Path | None:
    if files is not None:
        found = files.get(ann.video_id)
        if found is None and ann.video and Path(ann.video).is_file():
            found = Path(ann.video)
        if found is not None:
            return found
        if missing == "error":
            raise AnnotationError(ann.video or ann.video_id, f"no video file for {ann.video_id!r} in the videos folder")
        if missing == "skip":
            return None
    if ann.video:
        return Path(ann.video)
    return Path(f"{ann.video_id}.mp4")


def write_instructions(
    records: Sequence[Mapping[str, Any]], out: str | os.PathLike, name: str = "instructions"
) -> dict[str, Path]:
    """Write records atomically: to ``out`` itself if it ends in ``.json``, else one
    ``{out}/{name}_{split}.json`` per split. Returns ``{split or "all": path}``."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        atomic_write_json(out, list(records))
        return {"all": out}
    by_split: dict[str, list] = {}
    for r in records:
        by_split.setdefault(r.get("split") or "all", []).append(r)
    written = {}
    for split, items in by_split.items():
        path = out / f"{name}_{split}.json"
        atomic_write_json(path, items)
        written[split] = path
    if not by_split:
        warnings.warn(f"no instruction records to write to {out}", stacklevel=2)
    return written
