"""Pictures of training runs from their ``log.jsonl`` (``uprm plot``).

- ``loss.png``: loss and cross-entropy (with the validation loss as points), the
  router z-loss, the learning rate and the gradient norm against the optimizer step;
  several runs are overlaid, one colour each.
- ``expert_weights.png``: each expert's mean router weight over training, one panel
  per run — the quantity of the paper's Fig. 5/6.
- ``compare.png`` (two runs or more): the runs' training losses overlaid — the
  convergence comparison of the paper's Fig. 9.

Curves can be smoothed with an exponential moving average (``smooth``, 0 = raw).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.errors import PlotError
from uprm.training.runlog import EVAL_LOG, TRAIN_LOG, read_jsonl

__all__ = ["PlotError", "PlotFile", "Run", "load_run", "plot_runs"]


@dataclass
class Run:
    name: str
    path: Path
    steps: list[dict[str, Any]]
    evals: list[dict[str, Any]] = field(default_factory=list)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        pairs = [(r["step"], float(r[key])) for r in self.steps if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @property
    def experts(self) -> list[str]:
        names: dict[str, None] = {}
        for record in self.steps:
            names.update(dict.fromkeys(record.get("expert_weights") or {}))
        return list(names)


@dataclass
class PlotFile:
    """A written picture and the curves drawn in it (``panel: [label, ...]``)."""

    path: Path
    series: dict[str, list[str]]


def load_run(path: str | os.PathLike, name: str | None = None) -> Run:
    """A run directory's step and evaluation records (``PlotError`` if it has none)."""
    path = Path(path)
    if not path.is_dir():
        raise PlotError(f"{path}: no such run directory")
    steps = [r for r in read_jsonl(path / TRAIN_LOG) if isinstance(r.get("step"), int)]
    if not steps:
        raise PlotError(f"{path}: no training records ({TRAIN_LOG} is missing, empty or holds no readable record)")
    return Run(name or path.name, path, steps, read_jsonl(path / EVAL_LOG))


def _ema(values: list[float], smooth: float) -> list[float]:
    if not smooth or not values:
        return values
    out, avg = [], values[0]
    for v in values:
        avg = smooth * avg + (1 - smooth) * v
        out.append(avg)
    return out


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError("plotting needs matplotlib: pip install 'uprm-core[plot]'") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _loss_figure(runs: Sequence[Run], out: Path, smooth: float) -> PlotFile:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = {"loss": axes[0, 0], "z_loss": axes[0, 1], "lr": axes[1, 0], "grad_norm": axes[1, 1]}
    titles = {"loss": "loss (solid) and cross-entropy (dashed)", "z_loss": "router z-loss (eq.7)",
              "lr": "learning rate", "grad_norm": "gradient norm (before clipping)"}
    drawn: dict[str, list[str]] = {k: [] for k in panels}
    for i, run in enumerate(runs):
        colour = f"C{i}"
        for key, ax in panels.items():
            x, y = run.series(key)
            if x:
                ax.plot(x, y if key == "lr" else _ema(y, smooth), color=colour, label=run.name)
                drawn[key].append(run.name)
        x, y = run.series("ce_loss")
        if x:
            panels["loss"].plot(x, _ema(y, smooth), color=colour, linestyle="--", alpha=0.7)
            drawn["loss"].append(f"{run.name} ce_loss")
        ex = [(r["step"], r["eval_loss"]) for r in run.evals if isinstance(r.get("eval_loss"), (int, float))]
        if ex:
            panels["loss"].scatter(*zip(*ex), color=colour, marker="o", zorder=3, label=f"{run.name} (validation)")
            drawn["loss"].append(f"{run.name} eval_loss")
    for key, ax in panels.items():
        ax.set_title(titles[key])
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    panels["loss"].legend(fontsize="small")
    fig.tight_layout()
    path = out / "loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return PlotFile(path, drawn)


def _expert_figure(runs: Sequence[Run], out: Path, smooth: float) -> PlotFile:
    plt = _pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 3.2 * len(runs)), squeeze=False)
    drawn: dict[str, list[str]] = {}
    for ax, run in zip(axes[:, 0], runs):
        drawn[run.name] = []
        for name in run.experts:
            pairs = [(r["step"], r["expert_weights"][name]) for r in run.steps if name in (r.get("expert_weights") or {})]
            ax.plot([p[0] for p in pairs], _ema([float(p[1]) for p in pairs], smooth), label=name)
            drawn[run.name].append(name)
        ax.set_title(f"{run.name}: mean router weight per expert (coarse: 1 - G)")
        ax.set_xlabel("optimizer step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if drawn[run.name]:  # a log without router weights draws an empty panel, without a legend
            ax.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    path = out / "expert_weights.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return PlotFile(path, drawn)


def _compare_figure(runs: Sequence[Run], out: Path, smooth: float) -> PlotFile:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for i, run in enumerate(runs):
        x, y = run.series("loss")
        ax.plot(x, _ema(y, smooth), color=f"C{i}", label=run.name)
    ax.set_title("training loss of each run (convergence comparison)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "compare.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return PlotFile(path, {"loss": [run.name for run in runs]})


def plot_runs(paths: Sequence[str | os.PathLike], out: str | os.PathLike, smooth: float = 0.0,
              names: Sequence[str] | None = None) -> list[PlotFile]:
    """Write ``loss.png``, ``expert_weights.png`` and (for two runs or more)
    ``compare.png`` into ``out``; return what was drawn in each."""
    if not paths:
        raise PlotError("no run directories given")
    if not 0 <= smooth < 1:
        raise PlotError(f"smooth must be in [0, 1), got {smooth}")
    names = list(names) if names else _unique_names([Path(p) for p in paths])
    runs = [load_run(p, n) for p, n in zip(paths, names)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [_loss_figure(runs, out, smooth), _expert_figure(runs, out, smooth)]
    if len(runs) > 1:
        files.append(_compare_figure(runs, out, smooth))
    return files


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
