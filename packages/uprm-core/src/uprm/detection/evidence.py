"""Evidence sheets: why a segment was flagged, not only when.

For each merged segment, detection keeps the **highest-scoring window** of the segment:
its frames and every expert's features of them, held only while the segment is open
(then drawn and dropped), so memory stays bounded. The sheet
(``OUT/<video_id>/<n>.png``) shows up to four key frames of that window (those inside
the segment, evenly spread) with what the experts perceived drawn on them — pose
skeletons (COCO-17 bones), object boxes with their labels, relation edges with their
predicates — and a bar chart of the router's weight of each expert over the segment.

What is drawn is read from the features by their layout, not by the expert's name:
``keypoints [F, K, 17, 3]`` (normalised ``x, y, c``) with ``person_mask [F, K]`` are
skeletons; ``boxes [F, K, 4]`` (normalised ``x1, y1, x2, y2``) with ``labels [F, K]``
and ``object_mask [F, K]`` are objects, ``relations [F, K, K, R]`` their edges (names
from the expert's ``labels``/``predicates`` vocabularies when it has them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uprm.coco import COCO_SKELETON
from uprm.utils import atomic_path

__all__ = ["Evidence", "key_frames", "render_evidence"]

_MAX_EDGES = 12  # relation edges drawn per frame
_PERSON_COLOURS = ("#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#5ac8fa", "#ffcc00", "#ff2d55")


@dataclass
class Evidence:
    """The best window of a segment: its frames and the experts' features of them.

    Attributes:
        frames: uint8 ``[F, 3, H, W]``.
        timestamps: ``F`` seconds.
        features: ``{expert: {key: tensor}}`` of this window (first dim ``F``).
        window: the window's ``(start, end)`` seconds.
    """

    frames: torch.Tensor
    timestamps: list[float]
    features: dict[str, dict[str, torch.Tensor]]
    window: tuple[float, float]


def key_frames(timestamps: list[float], start: float, end: float, count: int = 4) -> list[int]:
    """Up to ``count`` frame positions, evenly spread over the frames inside
    ``[start, end]`` (all frames when none is inside)."""
    inside = [i for i, t in enumerate(timestamps) if start - 1e-6 <= t <= end + 1e-6] or list(range(len(timestamps)))
    if len(inside) <= count:
        return inside
    picks = np.linspace(0, len(inside) - 1, count).round().astype(int)
    return [inside[i] for i in sorted(set(picks.tolist()))]


def _namer(expert: Any, attr: str):
    vocab = getattr(expert, attr, None)
    name = getattr(vocab, "name", None)

    def lookup(i: int) -> str:
        if callable(name):
            try:
                return str(name(int(i))).replace("_", " ")
            except (IndexError, KeyError, ValueError):
                pass
        return f"#{int(i)}"

    return lookup


def _draw_pose(ax: Any, feats: Mapping[str, torch.Tensor], f: int, w: int, h: int) -> int:
    kp = feats["keypoints"][f].float().numpy()
    mask = feats["person_mask"][f].bool().numpy()
    for p in np.flatnonzero(mask):
        colour = _PERSON_COLOURS[int(p) % len(_PERSON_COLOURS)]
        xs, ys, cs = kp[p, :, 0] * w, kp[p, :, 1] * h, kp[p, :, 2]
        for a, b in COCO_SKELETON:
            if cs[a] > 0 and cs[b] > 0:
                ax.plot([xs[a], xs[b]], [ys[a], ys[b]], color=colour, linewidth=1.5, solid_capstyle="round")
        seen = cs > 0
        ax.scatter(xs[seen], ys[seen], s=6, color=colour, zorder=3)
    return int(mask.sum())


def _draw_objects(ax: Any, feats: Mapping[str, torch.Tensor], f: int, w: int, h: int, expert: Any) -> int:
    from matplotlib.patches import Rectangle

    label_name, predicate_name = _namer(expert, "labels"), _namer(expert, "predicates")
    boxes = feats["boxes"][f].float().numpy() * np.array([w, h, w, h])
    labels = feats["labels"][f].long().numpy()
    mask = feats["object_mask"][f].bool().numpy()
    for i in np.flatnonzero(mask):
        x1, y1, x2, y2 = boxes[i]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="#ffd60a", linewidth=1.2))
        ax.text(x1, y1, label_name(labels[i]), color="black", fontsize=6, va="bottom",
                bbox={"facecolor": "#ffd60a", "edgecolor": "none", "pad": 0.5})
    if "relations" in feats:
        rel = feats["relations"][f].long()
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        for i, j, r in torch.nonzero(rel).tolist()[:_MAX_EDGES]:
            if not (mask[i] and mask[j]):
                continue
            (xa, ya), (xb, yb) = centres[i], centres[j]
            ax.annotate("", xy=(xb, yb), xytext=(xa, ya),
                        arrowprops={"arrowstyle": "->", "color": "#0a84ff", "linewidth": 1.2})
            ax.text((xa + xb) / 2, (ya + yb) / 2, predicate_name(rel[i, j, r]), color="white", fontsize=6,
                    ha="center", bbox={"facecolor": "#0a84ff", "edgecolor": "none", "pad": 0.5})
    return int(mask.sum())


def _draw_frame(ax: Any, evidence: Evidence, f: int, experts: Mapping[str, Any]) -> None:
    image = evidence.frames[f].permute(1, 2, 0).numpy()
    h, w = image.shape[:2]
    ax.imshow(image)
    notes = []
    for name, feats in evidence.features.items():
        if {"keypoints", "person_mask"} <= set(feats):
            notes.append(f"{name}: {_draw_pose(ax, feats, f, w, h)} people")
        if {"boxes", "labels", "object_mask"} <= set(feats):
            notes.append(f"{name}: {_draw_objects(ax, feats, f, w, h, experts.get(name))} objects")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(f"{evidence.timestamps[f]:.1f} s", fontsize=8)
    ax.set_xlabel("\n".join(notes), fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_weights(ax: Any, weights: Mapping[str, float]) -> None:
    names = list(weights)
    values = [float(weights[n]) for n in names]
    bars = ax.barh(names, values, color="#5e5ce6")
    for bar, value in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, max([1.0, *values]))
    ax.invert_yaxis()
    ax.set_xlabel("router weight (score-weighted mean over the segment's windows)", fontsize=7)
    ax.tick_params(labelsize=7)


def render_evidence(path: str | Path, segment: Any, evidence: Evidence, experts: Mapping[str, Any],
                    video_id: str = "", number: int = 1, max_frames: int = 4) -> Path:
    """Draw the evidence sheet of ``segment`` (a :class:`~uprm.detection.DetectedSegment`)
    from ``evidence`` into ``path`` (PNG, written atomically). ``experts`` name labels
    and predicates."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads

    picks = key_frames(evidence.timestamps, segment.start, segment.end, max_frames)
    fig = Figure(figsize=(max(6.0, 2.6 * len(picks)), 5.2), dpi=100)
    grid = fig.add_gridspec(2, len(picks), height_ratios=[3, 1.3])
    for col, f in enumerate(picks):
        _draw_frame(fig.add_subplot(grid[0, col]), evidence, f, experts)
    _draw_weights(fig.add_subplot(grid[1, :]), segment.expert_weights)
    cause = textwrap.shorten(segment.cause or "(no cause given)", 160)
    fig.suptitle(f"{video_id} #{number}: {segment.start:.1f}-{segment.end:.1f} s, score {segment.score:.2f}\n"
                 f"cause: {cause}\nkey frames from the window {evidence.window[0]:.1f}-{evidence.window[1]:.1f} s",
                 fontsize=8)
    fig.subplots_adjust(top=0.8, hspace=0.45, wspace=0.08, bottom=0.1)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
