"""Detection on the held-out test videos: ``uprm detect`` for the models, and the
always-yes baseline (every window a threat, the whole window as the segment)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uprm.demo.settings import DemoSettings

__all__ = ["Detections", "always_yes", "detect_model", "write_predictions"]

#: ``{video_id: [{"segment": [start, end], "score": x, "cause": text}]}``
Detections = dict[str, list[dict[str, Any]]]


def detect_model(model: Any, videos: Sequence[Path], out: Path, settings: DemoSettings, sidecar_dir: Path) -> Detections:
    """``uprm detect`` on ``videos`` (timelines, per-video JSON and results.json in
    ``out``) with the training window; returns the segments per video."""
    from uprm.detection import detect_files

    report = detect_files(list(videos), model, out, window=settings.window, stride=settings.stride, batch_size=8,
                          sidecar_dir=sidecar_dir, device="cpu", overwrite=True, progress=False, evidence=False)
    if report.failed:
        video, error = report.failed[0]
        raise RuntimeError(f"uprm detect failed on {video}: {error}")
    return json.loads(Path(report.results).read_text(encoding="utf-8"))["results"]


def always_yes(durations: dict[str, float], settings: DemoSettings) -> Detections:
    """The trivial detector: every window of :func:`~uprm.detection.plan_windows` (the
    windows ``uprm detect`` slides) answered yes with P(yes) = 1 and no time named, so
    each window is its own segment, merged as ``uprm detect`` merges (overlapping
    windows join: each video becomes one segment over its whole length). No cause."""
    from uprm.detection import WindowResult, merge_windows, plan_windows

    out: Detections = {}
    for video_id, duration in sorted(durations.items()):
        plan = plan_windows(duration, settings.window, settings.stride, settings.num_frames)
        windows = [WindowResult(w, *plan.span(w), p_yes=1.0, threat=True, score=1.0, segments=[plan.span(w)])
                   for w in range(len(plan))]
        out[video_id] = [{"segment": [s.start, s.end], "score": s.score, "cause": s.cause}
                         for s in merge_windows(windows, gap=plan.interval)]
    return out


def _tie_order(video_id: str) -> str:
    return hashlib.sha256(video_id.encode()).hexdigest()


def write_predictions(detections: Detections, path: Path) -> Path:
    """``detections`` as an ActivityNet results file (what ``uprm detect`` writes).

    mAP ranks predictions by score and breaks ties in the file's order, which matters
    for a detector whose scores are all equal (always-yes): videos are listed in a hash
    order of their ids, unrelated to the truth (sorted ids would put ``Arson…``,
    ``Assault…`` and ``Fighting…`` before ``Normal…``)."""
    from uprm.utils import atomic_write_json

    results = {vid: [{"segment": s["segment"], "score": s["score"], "label": "Threat", "cause": s["cause"]}
                     for s in detections[vid]] for vid in sorted(detections, key=_tie_order)}
    atomic_write_json(path, {"version": "UPRM demo", "results": results, "external_data": {}})
    return path
