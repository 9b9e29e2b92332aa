"""The timeline picture of one video: P(yes) of each window over time, the merged
threat segments shaded and numbered, their causes as labels."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uprm.utils import atomic_path

__all__ = ["format_clock", "render_timeline"]


def format_clock(seconds: float) -> str:
    """``75.5`` → ``1:15.5``; ``3725`` → ``1:02:05.0``."""
    seconds = max(0.0, float(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h >= 1 else f"{int(m)}:{s:04.1f}"


def render_timeline(path: str | Path, video_id: str, duration: float, windows: Sequence[Any],
                    segments: Sequence[Any]) -> Path:
    """Draw the timeline into ``path`` (PNG, written atomically).

    ``windows``: :class:`~uprm.detection.WindowResult` s (``start``, ``end``, ``p_yes``,
    ``threat``); ``segments``: :class:`~uprm.detection.DetectedSegment` s.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(11, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    centres = [(w.start + w.end) / 2 for w in windows]
    ax.plot(centres, [w.p_yes for w in windows], color="#3a3a3c", linewidth=1.0, label="P(yes) per window")
    hits = [(c, w.p_yes) for c, w in zip(centres, windows) if w.threat]
    if hits:
        ax.scatter(*zip(*hits), s=10, color="#ff3b30", zorder=3, label="window answered yes")
    for n, seg in enumerate(segments, 1):
        ax.axvspan(seg.start, seg.end, color="#ff3b30", alpha=0.18, linewidth=0)
        label = textwrap.shorten(f"#{n} {seg.cause}" if seg.cause else f"#{n}", 48)
        ax.text((seg.start + seg.end) / 2, 1.02 + 0.09 * ((n - 1) % 3), label, ha="center", va="bottom",
                fontsize=7, color="#c00000", clip_on=False)
    ax.set_xlim(0, max(duration, 1e-6))
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_clock(x)))
    ax.set_xlabel("time")
    ax.set_ylabel("P(yes)")
    ax.set_title(f"{video_id}: {len(segments)} threat segment(s) in {format_clock(duration)}", fontsize=9, pad=34)
    if windows:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.subplots_adjust(top=0.78, bottom=0.16, left=0.06, right=0.99)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
