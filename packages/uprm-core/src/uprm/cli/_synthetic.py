"""``uprm data synthetic``: render the synthetic surveillance world (:mod:`uprm.synthetic`).

Loaded lazily by ``uprm data`` (so ``uprm data --help`` imports no renderer)."""

from __future__ import annotations

from pathlib import Path

import click

from uprm.synthetic.config import DESIGNS, WorldConfig
from uprm.synthetic.events import KEYED_CATEGORIES, SITE_CATEGORIES, THREAT_CATEGORIES
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


#: videos rendered when --videos is not given, per design; the keyed default gives 64 test
#: videos at the default splits (50 pairs per category: 35 train, 7 val, 8 test)
DEFAULT_VIDEOS = {"default": 60, "keyed": 400}


@click.command("synthetic")
@click.option("--videos", "num_videos", type=click.IntRange(min=1), default=None,
              help="How many videos to render [default: 60; --design keyed: 400]. Keyed: a multiple of "
                   "8 (a threat and its twin for each of 4 categories); at the default splits N videos give "
                   "N/8 pairs per category of which 15 % (ties to test) are test pairs: 400 give 64 test "
                   "videos (8 pairs per category), 200 give 32, 800 give 120.")
@click.option("--design", type=click.Choice(DESIGNS), default="default", show_default=True,
              help="`keyed`: each threat differs from its normal twin in exactly one expert's input "
                   "(Fighting: pose, Stealing: relation, Arson: background, RoadAccidents: coarse), named "
                   "per category in OUT/design.json (uprm.synthetic.keyed).")
@click.option("--seed", type=int, default=0, show_default=True, help="The world's seed (same seed, same world).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder (videos/, keypoints/, scene_graphs/, annotations/, instructions/, world.json).")
@click.option("--size", type=click.IntRange(min=32), default=128, show_default=True, help="Frame side in pixels.")
@click.option("--fps", type=click.FloatRange(min=1.0), default=8.0, show_default=True, help="Frames per second.")
@click.option("--duration", "durations", default="8,20", show_default=True,
              help="MIN,MAX video length in seconds (MIN >= 6).")
@click.option("--normal-fraction", type=click.FloatRange(0.0, 1.0), default=0.4, show_default=True,
              help="Share of normal videos (no threat). Not with --design keyed (half are twins).")
@click.option("--categories", default=",".join(THREAT_CATEGORIES), show_default=True,
              help=f"Threat categories to include (comma list; keyed: of {','.join(KEYED_CATEGORIES)}, all by default).")
@click.option("--site-category", type=click.Choice(SITE_CATEGORIES), default=None,
              help="Add a site's own threat that no default world has: FenceClimbing (a person walks along a "
                   "fence, climbs over it into the yard behind and drops down; its look-alikes walk along the "
                   "fence or lean on it). Parking lots and plazas gain the fence; OUT/taxonomy.yaml (UCF-Crime's "
                   "categories and the site's) is written for --taxonomy. Not with --design keyed.")
@click.option("--site-fraction", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.3, show_default=True,
              help="With --site-category: the share of the threat videos that are of it (and of the normal "
                   "videos that are its look-alikes); at the default --normal-fraction 60 videos give 11 such threats, 90 give 16.")
@click.option("--splits", default="0.7,0.15,0.15", show_default=True,
              help="TRAIN,VAL,TEST fractions (stratified by category).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="H.264 quality (lower = better).")
@click.option("--overwrite", is_flag=True, help="Render every video again (default: keep finished ones).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def synthetic_command(ctx: click.Context, num_videos: int | None, design: str, seed: int, out_dir: str, size: int,
                      fps: float, durations: str, normal_fraction: float, categories: str, site_category: str | None,
                      site_fraction: float, splits: str, crf: int, overwrite: bool, quiet: bool) -> None:
    """Render the synthetic surveillance world: CCTV-like clips of stick-figure people,
    cars, bags, doors and fires, with threats (Fighting, Assault, Stealing, Arson,
    RoadAccidents, Vandalism) at known times and with cause sentences, and normal
    look-alikes of each (a conversation, a handshake, a bag handed over, ...).

    Writes H.264 videos, the true COCO keypoints and scene graphs of every frame,
    UCF-Crime and ActivityNet annotations, causes.json, and the identify / locate /
    attribute instruction JSON for train, val and test. Deterministic for a seed;
    re-running resumes (finished videos are kept).

    `--design keyed` renders each threat and its look-alike twin as a pair that differs in
    exactly one channel (keypoints, scene graphs, or the pixels) and writes OUT/design.json
    naming it per category; people are drawn as silhouettes, so the pixels do not show
    the pose- or relation-keyed threats.

    `--site-category FenceClimbing` adds a site's own threat (a climb over a fence) that
    the default world never shows, with its look-alikes, and writes OUT/taxonomy.yaml.
    """
    lo, hi = _floats(durations, "--duration", 2)
    if design == "keyed" and ctx.get_parameter_source("normal_fraction") == click.core.ParameterSource.COMMANDLINE:
        raise click.BadParameter("the keyed design renders a threat and its twin in pairs (half the videos are "
                                 "normal); --normal-fraction does not apply", param_hint="--normal-fraction")
    if site_category is None and ctx.get_parameter_source("site_fraction") == click.core.ParameterSource.COMMANDLINE:
        raise click.BadParameter("it is the share of the site category's videos; give --site-category too",
                                 param_hint="--site-fraction")
    num_videos = DEFAULT_VIDEOS[design] if num_videos is None else num_videos
    try:
        config = WorldConfig(
            size=size, fps=fps, min_duration=lo, max_duration=hi, normal_fraction=normal_fraction,
            categories=tuple(c.strip() for c in categories.split(",") if c.strip()),
            splits=_floats(splits, "--splits", 3), crf=crf, design=design,  # type: ignore[arg-type]
            site_category=site_category, site_fraction=site_fraction,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if design == "keyed":  # its count rule, checked before anything is rendered
        from uprm.synthetic.keyed import keyed_plan

        try:
            keyed_plan(num_videos, config)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--videos") from exc
    world = generate_world(out_dir, num_videos, seed, config=config, progress=not quiet, overwrite=overwrite)
    counts = world["counts"]
    click.echo(f"Wrote {num_videos} videos to {out_dir}")
    click.echo("  categories: " + ", ".join(f"{k} {v}" for k, v in counts["category"].items()))
    click.echo("  scenes:     " + ", ".join(f"{k} {v}" for k, v in counts["scene"].items()))
    click.echo("  splits:     " + ", ".join(f"{k} {v}" for k, v in counts["split"].items()))
    click.echo("  instructions: " + ", ".join(f"{k} {v}" for k, v in counts["instructions"]["split/task"].items()))
    for split, path in world["instructions"].items():
        click.echo(f"  {split}: {Path(out_dir) / path}")
    if "design" in world:
        _echo_design(Path(out_dir) / world["design"])
    if "taxonomy" in world:
        click.echo(f"  taxonomy: {Path(out_dir) / world['taxonomy']} (pass it with --taxonomy)")


def _echo_design(path: Path) -> None:
    """The keyed world's channels and its test videos per category."""
    import json

    design = json.loads(path.read_text(encoding="utf-8"))
    click.echo("  keyed to:   " + ", ".join(f"{c} {d['channel']}" for c, d in design["categories"].items()))
    test = design["counts"].get("test", {})
    click.echo(f"  test videos: {sum(r['threat'] + r['twin'] for r in test.values())} ("
               + ", ".join(f"{c} {r['threat']} + {r['twin']} twins" for c, r in test.items()) + ")")
    click.echo(f"  design: {path}")
