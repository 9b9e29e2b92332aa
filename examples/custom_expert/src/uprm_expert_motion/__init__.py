"""uprm-expert-motion: an example UPRM expert plugin (motion energy)."""

from uprm_expert_motion.expert import MotionExpert

__all__ = ["MotionExpert"]
__version__ = "0.1.0"
