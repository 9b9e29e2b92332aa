"""The COCO-17 human skeleton as the pose expert uses it: joint names, bones, and the
neighbour mask of eq.1.

The joints and bones are defined once for the whole project in :mod:`uprm.coco` (COCO
order, what HigherHRNet, mmpose and ultralytics YOLO-pose output; bones 0-based); this
module re-exports them under the names the pose expert has always had
(``COCO_JOINTS`` = :data:`uprm.coco.COCO_KEYPOINTS`).
"""

from __future__ import annotations

import torch

from uprm.coco import COCO_KEYPOINTS, COCO_SKELETON, NUM_JOINTS

__all__ = ["COCO_JOINTS", "COCO_KEYPOINTS", "COCO_SKELETON", "NUM_JOINTS", "neighbour_mask"]

#: the 17 joint names in COCO order (:data:`uprm.coco.COCO_KEYPOINTS`)
COCO_JOINTS: tuple[str, ...] = COCO_KEYPOINTS


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
