"""``convergence.png``: the stage-2 training loss of every variant overlaid (the paper's
Fig. 9), drawn by ``uprm plot``'s comparison figure (:mod:`uprm.training.plots`). A
variant with several seeds is drawn as the mean of their losses at each step."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SMOOTH", "plot_convergence"]

#: exponential moving average of the drawn curves (0 = raw)
SMOOTH = 0.9


def _mean_run(name: str, folders: Sequence[Path]):
    from uprm.training.plots import Run, load_run

    runs = [load_run(f, name) for f in folders]
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for step, loss in zip(*run.series("loss")):
            by_step.setdefault(step, []).append(loss)
    steps = [{"step": s, "loss": sum(v) / len(v)} for s, v in sorted(by_step.items()) if len(v) == len(runs)]
    return Run(name, folders[0], steps)


def plot_convergence(curves: Sequence[tuple[str, Sequence[Path]]], path: Path,
                     smooth: float = SMOOTH) -> Path | None:
    """``curves``: ``(label, training run folders)`` per variant → ``path`` (a PNG);
    ``None`` when no run has a training log."""
    from uprm.training.plots import PlotError, _compare_figure

    runs = []
    for label, folders in curves:
        try:
            run = _mean_run(label, [Path(f) for f in folders])
        except PlotError:
            continue
        if run.steps:
            runs.append(run)
    if not runs:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".convergence-") as tmp:
        drawn = _compare_figure(runs, Path(tmp), smooth)
        os.replace(drawn.path, path)
    return path
