"""The COCO-17 human skeleton, defined once for the whole project (imports nothing).

Joints are in COCO order — what HigherHRNet, mmpose and ultralytics YOLO-pose output.
:data:`COCO_SKELETON` holds the 19 bones of COCO's person category as **0-based** joint
indices into :data:`COCO_KEYPOINTS`; COCO's own files write them 1-based
(:func:`skeleton_1based` gives that form, for writing COCO JSON).
"""

from __future__ import annotations

__all__ = ["COCO_KEYPOINTS", "COCO_SKELETON", "NUM_JOINTS", "skeleton_1based"]

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_JOINTS = len(COCO_KEYPOINTS)

#: COCO's person ``skeleton`` as 0-based joint indices: 19 undirected bones.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip


def skeleton_1based() -> list[list[int]]:
    """The bones as COCO's JSON files write them (1-based joint numbers)."""
    return [[a + 1, b + 1] for a, b in COCO_SKELETON]
