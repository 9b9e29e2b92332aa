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
    return dict(records.files)
