"""The COCO-17 human skeleton: joint names, bones, and the neighbour mask of eq.1.

Joints are in COCO order (what HigherHRNet, mmpose and ultralytics YOLO-pose output);
bones are the ``skeleton`` of the COCO person category, converted from 1-based to
0-based indices.
"""

from __future__ import annotations

import torch

__all__ = ["COCO_JOINTS", "COCO_SKELETON", "NUM_JOINTS", "neighbour_mask"]

COCO_JOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_JOINTS = len(COCO_JOINTS)

#: COCO's person ``skeleton`` (1-based there), 0-based: 19 undirected bones.
COCO_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
        (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )
)


def neighbour_mask(self_loops: bool = False) -> torch.Tensor:
    """Bool adjacency ``[17, 17]``: ``mask[k, l]`` is True when joint ``l`` is a skeleton
    neighbour of joint ``k`` (the set ``M(g_k)`` of eq.1). Symmetric; every joint has at
    least one neighbour, so a softmax over each row is always defined."""
    mask = torch.zeros(NUM_JOINTS, NUM_JOINTS, dtype=torch.bool)
    for a, b in COCO_SKELETON:
        mask[a, b] = mask[b, a] = True
    if self_loops:
        mask |= torch.eye(NUM_JOINTS, dtype=torch.bool)
    return mask
