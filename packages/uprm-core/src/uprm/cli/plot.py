"""``uprm plot``: pictures of training runs (loss curves, router weights, comparisons)."""

from __future__ import annotations

import click


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the PNGs. [default: RUN/plots for one run, ./plots for several]")
@click.option("--smooth", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Exponential moving average of the curves (0 = raw, 0.9 = smooth).")
@click.option("--name", "names", multiple=True,
              help="Legend name of each run, in order (default: the folder names).")
def cli(runs: tuple[str, ...], out: str | None, smooth: float, names: tuple[str, ...]) -> None:
    """Plot the log.jsonl of one or more `uprm train` runs.

    Writes loss.png (loss and cross-entropy with validation points, z-loss, learning
    rate, gradient norm), expert_weights.png (each expert's mean router weight over
    training: the paper's Fig. 5/6 quantity) and, for several runs, compare.png (their
    losses overlaid: the paper's Fig. 9 convergence comparison).
    """
    from pathlib import Path

    from uprm.training.plots import PlotError, plot_runs

    if names and len(names) != len(runs):
        raise click.BadParameter(f"{len(names)} names for {len(runs)} runs", param_hint="--name")
    target = Path(out) if out else (Path(runs[0]) / "plots" if len(runs) == 1 else Path("plots"))
    try:
        files = plot_runs(runs, target, smooth=smooth, names=names or None)
    except PlotError as exc:
        raise click.ClickException(str(exc)) from exc
    for f in files:
        click.echo(f"wrote {f.path}")
