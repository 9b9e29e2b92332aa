"""Inference helpers: what the model answered about a clip, and the segments in it."""

from uprm.inference.answers import ClipAnswers
from uprm.inference.segments import Segment, parse_segments, parse_time

__all__ = ["ClipAnswers", "Segment", "parse_segments", "parse_time"]
