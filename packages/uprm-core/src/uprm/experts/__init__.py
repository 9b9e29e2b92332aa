"""The expert interface, the coarse video expert, and helpers for plugins."""

from uprm.experts.base import GRANULARITIES, Expert, ExpertContext

__all__ = ["GRANULARITIES", "Expert", "ExpertContext"]
