"""Per-frame object graphs, the common form of both perception sources, and their
encoding into fixed-shape tensors.

A clip's perception — from a scene-graph JSON file or from a detector — becomes one
:class:`FrameGraph` per sampled frame: objects (label, box, score) and directed
relations ``(subject, predicate, object, score)`` between them (paper §3.2, ORE:
``G_i = (V_i, E_i)``, ``V_i = {(v_{i,k}, d_{i,k})}`` categories and boxes, ``E_i`` the
directed links ``{v_{i,p}, s_{i,(p,q)}, v_{i,q}}``). :func:`encode_graphs` pads them to
``K`` objects and ``R`` predicates per ordered pair, so every clip's features have the
same shapes and the default ``collate`` stacks them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from uprm_expert_relation.vocab import Vocabulary

__all__ = ["FrameGraph", "GraphObject", "Relation", "crop_boxes", "encode_graphs", "iou"]

Box = tuple[float, float, float, float]


@dataclass
class GraphObject:
    """One object: ``label`` as given, ``box`` ``(x1, y1, x2, y2)`` normalised to the
    frame (``[0, 1]``), ``score`` its confidence in ``[0, 1]``."""

    label: str
    box: Box
    score: float = 1.0


@dataclass
class Relation:
    """A directed relation ``subject —predicate→ object`` between two objects of one
    frame (indices into :attr:`FrameGraph.objects`)."""

    subject: int
    predicate: str
    object: int
    score: float = 1.0


@dataclass
class FrameGraph:
    """The object graph of one frame."""

    objects: list[GraphObject] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def keep_top(self, k: int) -> FrameGraph:
        """The ``k`` highest-scoring objects (ties: the earlier first) and the relations
        among them, re-indexed."""
        if len(self.objects) <= k:
            return self
        order = sorted(range(len(self.objects)), key=lambda i: (-self.objects[i].score, i))[:k]
        order.sort()
        new_index = {old: new for new, old in enumerate(order)}
        objects = [self.objects[i] for i in order]
        relations = [
            Relation(new_index[r.subject], r.predicate, new_index[r.object], r.score)
            for r in self.relations
            if r.subject in new_index and r.object in new_index
        ]
        return FrameGraph(objects, relations)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when both are empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def crop_boxes(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Frame-normalised boxes → coordinates in the coarse tower's view.

    The coarse expert resizes a frame's short side and crops the centre square
    (``uprm.experts.preprocess.resize_center_crop``), so its patch grid covers only the
    middle of a wide frame. Boxes are mapped into that square and clamped to it; a box
    wholly outside the square ends up with zero width or height (it covers no patch).

    Shapes: ``boxes [..., 4]`` in ``[0, 1]`` → ``[..., 4]`` in ``[0, 1]``.
    """
    out = boxes.clone()
    if width > height:
        r = height / width
        a = (1.0 - r) / 2.0
        out[..., 0::2] = (boxes[..., 0::2] - a) / r
    elif height > width:
        r = width / height
        a = (1.0 - r) / 2.0
        out[..., 1::2] = (boxes[..., 1::2] - a) / r
    return out.clamp_(0.0, 1.0)


def encode_graphs(
    graphs: Sequence[FrameGraph],
    labels: Vocabulary,
    predicates: Vocabulary,
    max_objects: int,
    max_relations: int,
    frame_size: tuple[int, int],
) -> dict[str, torch.Tensor]:
    """Pad a clip's frame graphs to fixed-shape tensors.

    Each frame keeps its ``max_objects`` best objects (:meth:`FrameGraph.keep_top`);
    each ordered pair ``(i, j)`` keeps its ``max_relations`` best predicates (a
    predicate given twice for a pair counts once, at its best score). Self-relations
    (``i → i``) are dropped.

    Args:
        frame_size: ``(width, height)`` of the frames, for the coarse crop of ``grid_boxes``.

    Shapes (``F`` frames, ``K = max_objects``, ``R = max_relations``):
        labels: int64 ``[F, K]`` label ids (0 = no object)
        scores: float32 ``[F, K]``
        boxes: float32 ``[F, K, 4]`` ``(x1, y1, x2, y2)`` normalised to the frame
        grid_boxes: float32 ``[F, K, 4]`` the same in the coarse tower's centre crop
        object_mask: bool ``[F, K]``
        relations: int64 ``[F, K, K, R]`` predicate ids of ``i → j`` (0 = none)
        relation_scores: float32 ``[F, K, K, R]``
    """
    f, k, r = len(graphs), max_objects, max_relations
    # filled as numpy arrays (cheap scalar writes), turned into tensors once
    labels_ = np.zeros((f, k), dtype=np.int64)
    scores = np.zeros((f, k), dtype=np.float32)
    boxes = np.zeros((f, k, 4), dtype=np.float32)
    object_mask = np.zeros((f, k), dtype=bool)
    rel_ids = np.zeros((f, k, k, r), dtype=np.int64)
    rel_scores = np.zeros((f, k, k, r), dtype=np.float32)
    for fi, graph in enumerate(graphs):
        graph = graph.keep_top(k)
        n = len(graph.objects)
        if n:
            labels_[fi, :n] = [labels.id(o.label) for o in graph.objects]
            scores[fi, :n] = [float(o.score) for o in graph.objects]
            boxes[fi, :n] = [o.box for o in graph.objects]
            object_mask[fi, :n] = True
        pairs: dict[tuple[int, int], dict[int, float]] = {}
        for rel in graph.relations:
            if rel.subject == rel.object:
                continue
            best = pairs.setdefault((rel.subject, rel.object), {})
            pid = predicates.id(rel.predicate)
            best[pid] = max(best.get(pid, -math.inf), float(rel.score))
        for (si, oi), preds in pairs.items():
            ranked = sorted(preds.items(), key=lambda item: (-item[1], item[0]))[:r]
            for slot, (pid, score) in enumerate(ranked):
                rel_ids[fi, si, oi, slot] = pid
                rel_scores[fi, si, oi, slot] = score
    out = {
        "labels": torch.from_numpy(labels_),
        "scores": torch.from_numpy(scores),
        "boxes": torch.from_numpy(boxes),
        "object_mask": torch.from_numpy(object_mask),
        "relations": torch.from_numpy(rel_ids),
        "relation_scores": torch.from_numpy(rel_scores),
    }
    out["grid_boxes"] = crop_boxes(out["boxes"], *frame_size) * out["object_mask"][..., None]
    return out
