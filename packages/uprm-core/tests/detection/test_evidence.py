"""Evidence sheets draw what the experts perceived (skeleton bones, boxes with labels,
relation edges with predicates) and the router's weights; key frames come from inside
the segment."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from uprm.coco import COCO_SKELETON
from uprm.detection import DetectedSegment, Evidence, format_clock, key_frames, render_evidence
from uprm.detection.evidence import _draw_frame


class _Vocab:
    def __init__(self, names):
        self.names = names

    def name(self, i):
        return self.names[i]


class _RelationLike:
    labels = _Vocab(["<pad>", "person", "bag"])
    predicates = _Vocab(["<pad>", "grabbing"])


def _evidence() -> Evidence:
    f, k = 3, 2
    keypoints = torch.zeros(f, k, 17, 3)
    keypoints[:, 0, :, 0] = torch.linspace(0.3, 0.7, 17)
    keypoints[:, 0, :, 1] = torch.linspace(0.2, 0.9, 17)
    keypoints[:, 0, :, 2] = 1.0
    keypoints[:, 0, 16, 2] = 0.0  # an absent joint: its bones are not drawn
    person_mask = torch.tensor([[True, False]] * f)
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.9], [0.6, 0.5, 0.8, 0.7]]] * f)
    relations = torch.zeros(f, k, k, 2, dtype=torch.long)
    relations[:, 0, 1, 0] = 1  # person -grabbing-> bag
    frames = torch.full((f, 3, 48, 64), 40, dtype=torch.uint8)
    return Evidence(frames, [10.5, 12.5, 14.5], {
        "pose": {"keypoints": keypoints, "person_mask": person_mask, "boxes": boxes, "scores": torch.ones(f, k)},
        "relation": {"boxes": boxes, "labels": torch.tensor([[1, 2]] * f), "object_mask": torch.ones(f, k, dtype=bool),
                     "relations": relations},
        "coarse": {"vision_features": torch.zeros(f, 17, 8)},
    }, (10.0, 16.0))


def test_a_frame_shows_skeleton_boxes_labels_and_relations():
    ax = Figure().add_subplot(1, 1, 1)
    _draw_frame(ax, _evidence(), 0, {"relation": _RelationLike()})
    bones = [a for a in ax.lines if isinstance(a, Line2D)]
    assert len(bones) == sum(1 for a, b in COCO_SKELETON if 16 not in (a, b))  # 17 of 19: joint 16 is absent
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 2
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == ["bag", "grabbing", "person"]
    assert "pose: 1 people" in ax.get_xlabel() and "relation: 2 objects" in ax.get_xlabel()


def test_the_sheet_is_written_with_weights_and_cause(tmp_path):
    segment = DetectedSegment(12.0, 15.0, "a person grabbing a bag", 0.9,
                              expert_weights={"pose": 0.6, "relation": 0.3, "coarse": 0.1}, windows=[3])
    path = render_evidence(tmp_path / "v" / "1.png", segment, _evidence(), {"relation": _RelationLike()}, "v", 1)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert image.format == "PNG"
    red = (np.abs(pixels - [255, 59, 48]).sum(axis=1) < 40).sum()  # the first person's bones
    yellow = (np.abs(pixels - [255, 214, 10]).sum(axis=1) < 40).sum()  # object boxes
    purple = (np.abs(pixels - [94, 92, 230]).sum(axis=1) < 40).sum()  # the weight bars
    assert red > 50 and yellow > 50 and purple > 500
    assert not list((tmp_path / "v").glob(".*"))  # written atomically: no temporary left


def test_key_frames_come_from_inside_the_segment():
    times = [0.5 + i for i in range(8)]
    assert key_frames(times, 2.0, 6.0) == [2, 3, 4, 5]
    assert key_frames(times, 0.0, 8.0) == [0, 2, 5, 7]
    assert key_frames(times, 20.0, 30.0, count=2) == [0, 7]  # nothing inside: spread over the window
    assert format_clock(75.5) == "1:15.5" and format_clock(3725) == "1:02:05.0"
