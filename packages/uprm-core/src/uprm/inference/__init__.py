"""Inference helpers: reading segments out of answers."""

from uprm.inference.segments import Segment, parse_segments, parse_time

__all__ = ["Segment", "parse_segments", "parse_time"]
