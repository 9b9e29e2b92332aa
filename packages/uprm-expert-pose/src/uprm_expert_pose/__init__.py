"""uprm-expert-pose: the human-pose expert (HPE) of UPRM, paper eq.1–3.

``PoseExpert`` takes COCO-17 keypoints per sampled frame — from a keypoint JSON named by
``clip.meta["keypoints"]`` or from an ultralytics YOLO-pose model — and turns them into
tokens on the coarse grid: joint attention over the COCO skeleton (eq.1), person and
frame tokens, cross-attention with the video tokens as queries (eq.2) and post-LN MSA
and FFN (eq.2–3).
"""

from uprm_expert_pose.errors import KeypointFileError, PoseSourceError, PoseWeightsError
from uprm_expert_pose.expert import PoseExpert

__all__ = ["KeypointFileError", "PoseExpert", "PoseSourceError", "PoseWeightsError"]
__version__ = "0.1.0"
