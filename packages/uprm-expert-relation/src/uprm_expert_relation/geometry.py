"""Geometric and motion predicates computed from boxes across a clip's sampled frames.

A detector gives objects, not relations; these rules turn its boxes into relations
``(subject, predicate, object)``. All distances are measured in units of the frame's
diagonal (boxes are scaled back to the frame's aspect first), so the thresholds mean
the same at any resolution. Defaults are in :class:`GeometryThresholds`.

Per frame, for each pair of objects ``a``, ``b`` (at most one of the first three):

============  ================================================================  ==========
predicate     rule                                                              emitted as
============  ================================================================  ==========
inside        ≥ ``inside`` (0.9) of ``a``'s area lies in ``b``, ``a`` smaller    ``a → b``
overlapping   not inside, IoU ≥ ``overlap_iou`` (0.1)                           both ways
near          no overlap, edge-to-edge gap ≤ ``near`` (0.5) × √(mean area)      both ways
left of /     for overlapping or near pairs: the centre offset's larger axis;   ``a → b`` and
right of,     ``a left of b`` when ``b``'s centre is further right (image       the inverse
above /       ``y`` grows downward: ``a above b`` when ``b``'s centre is lower)  ``b → a``
below
============  ================================================================  ==========

Across frames, objects are **associated** frame to frame (:func:`associate`): the same
label, IoU ≥ ``match_iou`` (0.3) or centres within ``match_distance`` (0.1 of the
diagonal); the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) picks the
pairing of least cost ``1 − IoU`` (centre-distance-only candidates cost ``1 + distance``,
so overlap wins). For a pair ``a``, ``b`` whose both objects were matched in the
previous sampled frame, with ``Δ`` the change of their centre distance since then:

============  ==========================================  ==========
approaching   ``Δ < −motion`` (0.02 of the diagonal)      both ways
moving away   ``Δ > +motion``                             both ways
============  ==========================================  ==========

The thresholds are per sampled step, not per second: a clip sampled sparsely sees
larger steps. Every derived relation's score is the product of its two objects' scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from uprm_expert_relation.graph import Box, FrameGraph, GraphObject, Relation, iou
from uprm_expert_relation.vocab import normalise

__all__ = ["GeometryThresholds", "associate", "derive_relations", "motion_relations", "spatial_relations"]


@dataclass(frozen=True)
class GeometryThresholds:
    """The thresholds of the derived predicates (distances in frame diagonals)."""

    inside: float = 0.9
    overlap_iou: float = 0.1
    near: float = 0.5
    motion: float = 0.02
    match_iou: float = 0.3
    match_distance: float = 0.1

    @classmethod
    def from_options(cls, options: dict | None) -> GeometryThresholds:
        options = dict(options or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"unknown geometry threshold(s) {unknown}; known: {sorted(names)}")
        for key, value in options.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"geometry threshold {key!r} must be a non-negative number, got {value!r}")
        return cls(**{k: float(v) for k, v in options.items()})


def _scaled(box: Box, frame_size: tuple[int, int]) -> Box:
    """A frame-normalised box in units of the frame's diagonal."""
    w, h = frame_size
    diag = math.hypot(w, h)
    sx, sy = w / diag, h / diag
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _centre(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def _distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    return math.hypot(bx - ax, by - ay)


def spatial_relations(
    objects: Sequence[GraphObject], frame_size: tuple[int, int], th: GeometryThresholds
) -> list[Relation]:
    """The per-frame predicates (inside, overlapping, near and the four directions)."""
    boxes = [_scaled(o.box, frame_size) for o in objects]
    out: list[Relation] = []
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            a, b = boxes[i], boxes[j]
            score = objects[i].score * objects[j].score
            area_a, area_b = _area(a), _area(b)
            ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = ix * iy
            if area_a > 0 and inter / area_a >= th.inside and area_a < area_b:
                out.append(Relation(i, "inside", j, score))
                continue
            if area_b > 0 and inter / area_b >= th.inside and area_b < area_a:
                out.append(Relation(j, "inside", i, score))
                continue
            if iou(a, b) >= th.overlap_iou and inter > 0:
                out += [Relation(i, "overlapping", j, score), Relation(j, "overlapping", i, score)]
            else:
                gx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
                gy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
                scale = math.sqrt((area_a + area_b) / 2.0)
                if not (scale > 0 and math.hypot(gx, gy) <= th.near * scale):
                    continue
                out += [Relation(i, "near", j, score), Relation(j, "near", i, score)]
            (ax, ay), (bx, by) = _centre(a), _centre(b)
            dx, dy = bx - ax, by - ay
            if dx == 0 and dy == 0:
                continue
            if abs(dx) >= abs(dy):
                first, second = ("left of", "right of") if dx > 0 else ("right of", "left of")
            else:
                first, second = ("above", "below") if dy > 0 else ("below", "above")
            out += [Relation(i, first, j, score), Relation(j, second, i, score)]
    return out


def associate(
    previous: Sequence[GraphObject],
    current: Sequence[GraphObject],
    frame_size: tuple[int, int],
    th: GeometryThresholds,
) -> dict[int, int]:
    """Match the objects of a frame to those of the previous sampled frame.

    Returns ``{index in current: index in previous}`` for the matched objects (a
    one-to-one pairing; the rest are new or gone).
    """
    if not previous or not current:
        return {}
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    invalid = 1e6
    cost = np.full((len(current), len(previous)), invalid)
    for i, c in enumerate(current):
        cb = _scaled(c.box, frame_size)
        for j, p in enumerate(previous):
            if normalise(c.label) != normalise(p.label):
                continue
            pb = _scaled(p.box, frame_size)
            overlap = iou(cb, pb)
            if overlap >= th.match_iou:
                cost[i, j] = 1.0 - overlap
            else:
                d = _distance(cb, pb)
                if d <= th.match_distance:
                    cost[i, j] = 1.0 + d
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols) if cost[r, c] < invalid}


def motion_relations(
    previous: Sequence[GraphObject],
    current: Sequence[GraphObject],
    frame_size: tuple[int, int],
    th: GeometryThresholds,
) -> list[Relation]:
    """``approaching`` / ``moving away`` between objects of ``current`` whose both
    objects are matched in ``previous``."""
    match = associate(previous, current, frame_size, th)
    now = [_scaled(o.box, frame_size) for o in current]
    before = [_scaled(o.box, frame_size) for o in previous]
    out: list[Relation] = []
    for i in range(len(current)):
        for j in range(i + 1, len(current)):
            if i not in match or j not in match:
                continue
            change = _distance(now[i], now[j]) - _distance(before[match[i]], before[match[j]])
            if abs(change) <= th.motion:
                continue
            predicate = "approaching" if change < 0 else "moving away"
            score = current[i].score * current[j].score
            out += [Relation(i, predicate, j, score), Relation(j, predicate, i, score)]
    return out


def derive_relations(
    graphs: Sequence[FrameGraph], frame_size: tuple[int, int], th: GeometryThresholds | None = None
) -> list[FrameGraph]:
    """New graphs holding each frame's relations plus the derived spatial and motion
    predicates (the input graphs are left as they are)."""
    th = th or GeometryThresholds()
    out = []
    for f, graph in enumerate(graphs):
        relations = list(graph.relations) + spatial_relations(graph.objects, frame_size, th)
        if f > 0:
            relations += motion_relations(graphs[f - 1].objects, graph.objects, frame_size, th)
        out.append(FrameGraph(list(graph.objects), relations))
    return out
