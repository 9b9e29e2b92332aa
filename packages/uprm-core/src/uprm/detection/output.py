"""What ``uprm detect`` writes, and how a finished video is recognised.

::

    OUT/<video_id>.json        the video's segments, windows, settings, timings (written last)
    OUT/<video_id>.png         the timeline
    OUT/<video_id>/<n>.png     the evidence sheet of segment n (1, 2, ...)
    OUT/results.json           every video's segments in the ActivityNet results layout

Every file is written atomically (a temporary ``.<name>.*`` beside it, then one
rename), so a killed run never leaves a partial file under a final name; the temporary
files a kill leaves are removed when the video runs again (:func:`remove_leftovers`).
A video is **complete** when its JSON parses, has
this format and was made with the same requested settings (window, stride, merge gap,
max side, sidecar folder) and the same model (:func:`uprm.modeling.loading.model_fingerprint`:
the SHA-256 of the checkpoint's weights and config), and its timeline and evidence sheets exist; a rerun skips
complete videos (``--overwrite`` redoes them).
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from uprm.detection.timeline import format_clock, render_timeline
from uprm.utils import atomic_write_json

__all__ = [
    "FORMAT",
    "RESULTS_NAME",
    "format_table",
    "is_complete",
    "read_video_json",
    "remove_leftovers",
    "write_results",
    "write_video_outputs",
]

FORMAT = 1
RESULTS_NAME = "results.json"
LABEL = "Threat"


def read_video_json(out_dir: str | os.PathLike, video_id: str) -> dict[str, Any] | None:
    """``OUT/<video_id>.json``, or ``None`` when it is missing or unreadable."""
    try:
        data = json.loads((Path(out_dir) / f"{video_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(out_dir: str | os.PathLike, video_id: str, requested: Mapping[str, Any]) -> bool:
    """Whether ``video_id`` was finished with these requested settings (module doc)."""
    data = read_video_json(out_dir, video_id)
    if data is None or data.get("format") != FORMAT or not isinstance(data.get("segments"), list):
        return False
    if data.get("settings", {}).get("requested") != json.loads(json.dumps(dict(requested))):
        return False
    out = Path(out_dir)
    sheets = [s.get("evidence") for s in data["segments"] if isinstance(s, dict) and s.get("evidence")]
    return (out / f"{video_id}.png").is_file() and all((out / s).is_file() for s in sheets)


def remove_leftovers(out_dir: str | os.PathLike, video_id: str) -> list[Path]:
    """Remove the temporary files a killed run left while writing ``video_id``'s outputs
    (``.<video_id>.json.*``, ``.<video_id>.png.*``, ``<video_id>/.<n>.png.*``); only the
    process that owns the video calls it. Returns what was removed."""
    out = Path(out_dir)
    found = [*out.glob(f".{video_id}.json.*"), *out.glob(f".{video_id}.png.*")]
    if (out / video_id).is_dir():
        found += [p for p in (out / video_id).glob(".*.png.*") if p.name.split(".")[1].isdigit()]
    removed = []
    for path in found:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # pragma: no cover - gone meanwhile
            pass
    return removed


def write_video_outputs(out_dir: str | os.PathLike, detection: Any, requested: Mapping[str, Any],
                        sheets: Mapping[int, str] | None = None, process: str = "0/1") -> Path:
    """Write the timeline, drop evidence sheets of an earlier run that have no segment
    now, then the JSON (last: its presence marks the video as done). ``sheets`` maps a
    segment number to its evidence sheet (relative to ``out_dir``); ``process`` (rank/world)
    is recorded as ``written_by``."""
    from uprm._version import __version__

    out = Path(out_dir)
    vid = detection.video_id
    render_timeline(out / f"{vid}.png", vid, detection.duration, detection.windows, detection.segments)
    sheets = dict(sheets or {})
    folder = out / vid
    if folder.is_dir():
        for old in folder.glob("*.png"):
            if old.stem.isdigit() and int(old.stem) not in sheets:
                old.unlink()
    data = detection.to_dict()
    data["settings"] = {**data["settings"], "requested": dict(requested)}
    for n, seg in enumerate(data["segments"], 1):
        seg["windows"] = detection.segments[n - 1].windows
        if n in sheets:
            seg["evidence"] = sheets[n]
    data = {"format": FORMAT, "uprm_version": __version__, **data, "written_by": process}
    path = out / f"{vid}.json"
    atomic_write_json(path, data)
    return path


def write_results(out_dir: str | os.PathLike, video_ids: Iterable[str], requested: Mapping[str, Any] | None = None,
                  version: str = "UPRM detect") -> Path:
    """``OUT/results.json``: the segments of every finished video among ``video_ids`` in
    the ActivityNet results layout (``{"results": {video_id: [{"segment": [s, e],
    "score", "label", "cause"}]}}``; a video without threats has an empty list), what
    :func:`uprm.data.read_activitynet_predictions` and ``uprm eval --predictions`` read.
    With ``requested``, only videos complete with those settings (:func:`is_complete`)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for vid in video_ids:
        data = read_video_json(out_dir, vid)
        if data is None or (requested is not None and not is_complete(out_dir, vid, requested)):
            continue
        results[vid] = [{"segment": [s["start"], s["end"]], "score": s["score"], "label": LABEL,
                         "cause": s.get("cause", "")} for s in data.get("segments", [])]
    path = Path(out_dir) / RESULTS_NAME
    atomic_write_json(path, {"version": version, "results": results, "external_data": {}})
    return path


def _top_experts(weights: Mapping[str, float], n: int = 2) -> str:
    best = sorted(weights.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.2f}" for k, v in best)


def format_table(records: Sequence[Mapping[str, Any]], cause_width: int = 44) -> str:
    """A readable table of the segments of the videos ``records`` (their JSON)."""
    head = f"{'video':<20} {'#':>2}  {'start':>9}  {'end':>9}  {'score':>5}  {'cause':<{cause_width}}  top experts"
    lines = [head, "-" * len(head)]
    for rec in records:
        vid = str(rec.get("video_id", "?"))[:20]
        segments = rec.get("segments") or []
        if not segments:
            lines.append(f"{vid:<20} {'-':>2}  no threat in {format_clock(rec.get('duration', 0.0))}")
            continue
        for n, seg in enumerate(segments, 1):
            cause = textwrap.wrap(seg.get("cause") or "-", cause_width) or ["-"]
            lines.append(f"{vid:<20} {n:>2}  {format_clock(seg['start']):>9}  {format_clock(seg['end']):>9}  "
                         f"{seg['score']:>5.2f}  {cause[0]:<{cause_width}}  {_top_experts(seg.get('expert_weights', {}))}")
            lines += [f"{'':<20} {'':>2}  {'':>9}  {'':>9}  {'':>5}  {more}" for more in cause[1:]]
    return "\n".join(lines)
