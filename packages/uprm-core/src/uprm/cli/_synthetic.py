"""``uprm data synthetic``: render the synthetic surveillance world (:mod:`uprm.synthetic`).

Loaded lazily by ``uprm data`` (so ``uprm data --help`` imports no renderer)."""

from __future__ import annotations

from pathlib import Path

import click

from uprm.synthetic.config import WorldConfig
from uprm.synthetic.events import THREAT_CATEGORIES
from uprm.synthetic.world import generate_world

__all__ = ["synthetic_command"]


def _floats(text: str, what: str, n: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{what} must be {n} comma-separated numbers, got {text!r}") from None
    if len(values) != n:
        raise click.BadParameter(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


@click.command("synthetic")
@click.option("--videos", "num_videos", type=click.IntRange(min=1), default=60, show_default=True,
              help="How many videos to render.")
@click.option("--seed", type=int, default=0, show_default=True, help="The world's seed (same seed, same world).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder (videos/, keypoints/, scene_graphs/, annotations/, instructions/, world.json).")
@click.option("--size", type=click.IntRange(min=32), default=128, show_default=True, help="Frame side in pixels.")
@click.option("--fps", type=click.FloatRange(min=1.0), default=8.0, show_default=True, help="Frames per second.")
@click.option("--duration", "durations", default="8,20", show_default=True,
              help="MIN,MAX video length in seconds (MIN >= 6).")
@click.option("--normal-fraction", type=click.FloatRange(0.0, 1.0), default=0.4, show_default=True,
              help="Share of normal videos (no threat).")
@click.option("--categories", default=",".join(THREAT_CATEGORIES), show_default=True,
              help="Threat categories to include (comma list).")
@click.option("--splits", default="0.7,0.15,0.15", show_default=True,
              help="TRAIN,VAL,TEST fractions (stratified by category).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="H.264 quality (lower = better).")
@click.option("--overwrite", is_flag=True, help="Render every video again (default: keep finished ones).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synthetic_command(num_videos: int, seed: int, out_dir: str, size: int, fps: float, durations: str,
                      normal_fraction: float, categories: str, splits: str, crf: int, overwrite: bool,
                      quiet: bool) -> None:
    """Render the synthetic surveillance world: CCTV-like clips of stick-figure people,
    cars, bags, doors and fires, with threats (Fighting, Assault, Stealing, Arson,
    RoadAccidents, Vandalism) at known times and with cause sentences, and normal
    look-alikes of each (a conversation, a handshake, a bag handed over, ...).

    Writes H.264 videos, the true COCO keypoints and scene graphs of every frame,
    UCF-Crime and ActivityNet annotations, causes.json, and the identify / locate /
    attribute instruction JSON for train, val and test. Deterministic for a seed;
    re-running resumes (finished videos are kept).
    """
    lo, hi = _floats(durations, "--duration", 2)
    try:
        config = WorldConfig(
            size=size, fps=fps, min_duration=lo, max_duration=hi, normal_fraction=normal_fraction,
            categories=tuple(c.strip() for c in categories.split(",") if c.strip()),
            splits=_floats(splits, "--splits", 3), crf=crf,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    world = generate_world(out_dir, num_videos, seed, config=config, progress=not quiet, overwrite=overwrite)
    counts = world["counts"]
    click.echo(f"Wrote {num_videos} videos to {out_dir}")
    click.echo("  categories: " + ", ".join(f"{k} {v}" for k, v in counts["category"].items()))
    click.echo("  scenes:     " + ", ".join(f"{k} {v}" for k, v in counts["scene"].items()))
    click.echo("  splits:     " + ", ".join(f"{k} {v}" for k, v in counts["split"].items()))
    click.echo("  instructions: " + ", ".join(f"{k} {v}" for k, v in counts["instructions"]["split/task"].items()))
    for split, path in world["instructions"].items():
        click.echo(f"  {split}: {Path(out_dir) / path}")
