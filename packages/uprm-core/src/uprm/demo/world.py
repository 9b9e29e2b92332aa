"""The demo's data: a synthetic world, and the instruction builder's windows of its
training videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uprm.demo.settings import DemoSettings

__all__ = ["render_world", "split_videos", "window_instructions"]


def render_world(world: Path, settings: DemoSettings, seed: int) -> dict[str, Any]:
    """Render (or reuse, when already there with these settings) the synthetic world."""
    from uprm.synthetic import generate_world

    return generate_world(world, settings.videos, seed=seed, progress=False, size=settings.size, fps=settings.fps,
                          min_duration=settings.min_duration, max_duration=settings.max_duration,
                          normal_fraction=settings.normal_fraction, splits=tuple(settings.splits))


def split_videos(world: Path, summary: dict[str, Any], split: str) -> list[Path]:
    """The video files of one split of the world, in the world's order."""
    return [world / "videos" / f"{v['video_id']}.mp4" for v in summary["videos"] if v["split"] == split]


def window_instructions(world: Path, out: Path, settings: DemoSettings, seed: int) -> dict[str, Path]:
    """identify / locate / attribute records of every ``window``-second window (every
    ``stride`` seconds) of the world's videos, with the world's splits; returns the
    files by split (``out/demo_<split>.json``)."""
    from uprm.data import build_instructions
    from uprm.data.annotations import read_activitynet

    annotations = read_activitynet(world / "annotations" / "activitynet.json")
    records = build_instructions(
        annotations, out, name="demo", videos=world / "videos", keypoints=world / "keypoints",
        scene_graphs=world / "scene_graphs", seed=seed, window_s=settings.window, stride_s=settings.stride,
        min_overlap_s=settings.min_overlap, missing="error")
    files = dict(records.files)
    if settings.balance and "train" in files:
        balance_threats(files["train"])
    return files


def balance_threats(path: Path) -> int:
    """Repeat the threat windows' records of the instruction file ``path`` (every task
    of a window whose identify answer is "Yes") until about as many identify answers
    are "Yes" as "No"; repeats get ids ``<id>#<n>``. Rewrites the file atomically and
    returns how many records were added."""
    import json

    from uprm.utils import atomic_write_text

    records = json.loads(path.read_text(encoding="utf-8"))
    identify = [r for r in records if r.get("task") == "identify"]
    said_yes = [r for r in identify if r["conversations"][-1]["value"].lower().startswith("yes")]
    yes = {_window_key(r) for r in said_yes}
    no = len(identify) - len(said_yes)
    copies = round(no / len(said_yes)) - 1 if said_yes else 0
    if copies < 1:
        return 0
    threat_records = [r for r in records if _window_key(r) in yes]
    extra = [{**r, "id": f"{r['id']}#{n + 2}"} for n in range(copies) for r in threat_records]
    atomic_write_text(path, json.dumps(records + extra, indent=1, ensure_ascii=False))
    return len(extra)


def _window_key(record: dict[str, Any]) -> tuple[str, tuple[float, ...]]:
    return record["video_id"], tuple(record.get("window") or ())
