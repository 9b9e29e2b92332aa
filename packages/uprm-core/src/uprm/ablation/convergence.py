"""``convergence.png``: the stage-2 training losses of every variant overlaid (the
paper's Fig. 9), drawn with ``uprm plot``'s pieces (:mod:`uprm.training.plots`: the run
reader, its smoothing and matplotlib set-up).

Two panels: the training loss (``CE + α·z-loss``, what the paper plots) and the
cross-entropy alone — the basic router (``wo_ptr``) has no z-loss, so only the second
compares it with the others on equal terms. A variant with several seeds is drawn as the
mean of their curves at each step; the loss axis is logarithmic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["SMOOTH", "plot_convergence"]

#: exponential moving average of the drawn curves (0 = raw)
SMOOTH = 0.9
_PANELS = (("loss", "training loss (CE + α·z-loss), the paper's Fig. 9"),
           ("ce_loss", "cross-entropy alone (comparable across routers)"))


def _mean_curve(folders: Sequence[Path], key: str) -> tuple[list[int], list[float]]:
    from uprm.training.plots import load_run

    series = [load_run(f).series(key) for f in folders]
    by_step: dict[int, list[float]] = {}
    for steps, values in series:
        for step, value in zip(steps, values):
            by_step.setdefault(step, []).append(value)
    kept = [(s, sum(v) / len(v)) for s, v in sorted(by_step.items()) if len(v) == len(series)]
    return [s for s, _ in kept], [v for _, v in kept]


def plot_convergence(curves: Sequence[tuple[str, Sequence[Path]]], path: Path,
                     smooth: float = SMOOTH) -> Path | None:
    """``curves``: ``(label, training run folders)`` per variant → ``path`` (a PNG,
    written atomically); ``None`` when no run has a training log."""
    from uprm.training.plots import PlotError, _ema, _pyplot
    from uprm.utils import atomic_path

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    drawn = 0
    for i, (label, folders) in enumerate(curves):
        try:
            lines = [_mean_curve([Path(f) for f in folders], key) for key, _ in _PANELS]
        except PlotError:
            continue
        for ax, (x, y) in zip(axes, lines):
            ax.plot(x, _ema(y, smooth), color=f"C{i % 10}", label=label)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    for ax, (_, title) in zip(axes, _PANELS):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("optimizer step (stage 2)")
        ax.set_yscale("log")  # from ~7 down to a few tenths: the late differences stay visible
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("loss" + (f" (EMA {smooth:g})" if smooth else ""))
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
