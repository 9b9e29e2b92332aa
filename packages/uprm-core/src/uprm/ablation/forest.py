"""``ablation_effects.png``: each variant's difference from full with its interval, one
panel per metric (a forest plot).

A point is ``variant − full`` (the mean over seeds of the paired difference), its bar
the 95 % interval over videos and seeds (:mod:`uprm.ablation.effects`), the dashed line
zero; a difference whose interval excludes zero is drawn in red. Lower FNR is better and
higher is better for every other metric, so each panel's title says which side is worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from uprm.ablation.effects import Effects

__all__ = ["effects_figure", "plot_effects"]

#: panels per row
_COLUMNS = 4
_LOWER_IS_BETTER = {"fnr"}


def _panels(effects: Effects, metrics: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The metrics with at least one difference that has an interval."""
    return [(key, header) for key, header in metrics
            if any(c.get(key) is not None and c[key].ci is not None for c in effects.vs_full.values())]


def effects_figure(effects: Effects, metrics: Sequence[tuple[str, str]], labels: Mapping[str, str]) -> Any:
    """The figure (matplotlib, Agg) of ``metrics`` — ``(key, header)`` pairs, e.g. the
    table's columns — or ``None`` when no difference has an interval."""
    from uprm.training.plots import _pyplot

    panels = _panels(effects, metrics)
    variants = [v for v in effects.vs_full]
    if not panels or not variants:
        return None
    plt = _pyplot()
    columns = min(_COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 0.5 + (0.45 * len(variants) + 1.2) * rows),
                             squeeze=False)
    for i, (key, header) in enumerate(panels):
        _panel(axes[i // columns][i % columns], effects, variants, key, header, labels, first=i % columns == 0)
    for j in range(len(panels), rows * columns):
        fig.delaxes(axes[j // columns][j % columns])
    fig.suptitle(f"variant − full, {effects.spec.confidence:.0%} intervals over {len(effects.videos)} videos and "
                 "the seeds (red: excludes 0)", fontsize="medium")
    fig.tight_layout()
    return fig


def _panel(ax: Any, effects: Effects, variants: Sequence[str], key: str, header: str, labels: Mapping[str, str],
           first: bool) -> None:
    for y, variant in enumerate(variants):
        c = effects.vs_full[variant].get(key)
        if c is None or c.delta is None:
            continue
        color = "tab:red" if c.excludes_zero else "black"
        if c.ci is not None:
            ax.errorbar([c.delta], [y], xerr=[[c.delta - c.ci[0]], [c.ci[1] - c.delta]], fmt="o", color=color,
                        capsize=3, markersize=4)
        else:
            ax.plot([c.delta], [y], "o", color=color, markersize=4)
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels([labels.get(v, v) for v in variants] if first else [])
    ax.set_ylim(len(variants) - 0.5, -0.5)
    worse = "worse →" if key in _LOWER_IS_BETTER else "← worse"
    ax.set_title(f"{header} ({worse})", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)


def plot_effects(effects: Effects, metrics: Sequence[tuple[str, str]], labels: Mapping[str, str],
                 path: Path) -> Path | None:
    """:func:`effects_figure` written to ``path`` (a PNG, atomically); ``None`` when
    there is nothing to draw."""
    from uprm.utils import atomic_path

    fig = effects_figure(effects, metrics, labels)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
