"""Reading threat segments out of a model's answer.

``parse_segments("The threat occurs between 22 and 24.5 seconds.", duration=60)`` →
``[Segment(start=22.0, end=24.5, cause='', score=1.0)]``.

Times: seconds (``22``, ``22.5s``, ``22 sec``, ``22 seconds``), minutes (``1.5 min``),
``mm:ss`` and ``hh:mm:ss`` (with optional fractions), and CUVA's 4-digit ``MMSS`` pairs
in brackets (``[0052,0114]`` = 0:52–1:14). Ranges: ``between X and Y``, ``from X to Y``,
``X to Y``, ``X–Y``/``X-Y``/``X—Y``/``X~Y``, ``[X, Y]``/``(X, Y)``; several in one answer.
A unit written once applies to both ends (``between 1 and 2 minutes``). Each segment is
ordered (start < end), clamped to ``[0, duration]``; empty ones, repeats and times too
large for a float are dropped; special tokens such as ``</s>`` are stripped. It never
raises, whatever the string (``tests/robustness/test_fuzz.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from uprm.timeparse import TIME, parse_mmss, parse_time, split_time

__all__ = ["Segment", "parse_segments", "parse_time"]


@dataclass
class Segment:
    """A threat segment in seconds, with its cause and a confidence score."""

    start: float
    end: float
    cause: str = ""
    score: float = 1.0

    @property
    def length(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {"start_s": self.start, "end_s": self.end, "cause": self.cause, "score": self.score}


_RANGES = [
    r"\bbetween\s+{a}\s+and\s+{b}",
    r"\bfrom\s+{a}\s+(?:to|until|till|through|-|–|—)\s+{b}",
    r"[\[(]\s*{a}\s*[,;]\s*{b}\s*[\])]",
    r"(?<![\w.:]){a}\s*(?:-|–|—|~|\bto\b|\buntil\b|\btill\b)\s*{b}",
]
_PAIR = re.compile(
    "|".join(
        [r"[\[(]\s*(?P<ma>\d{4})\s*,\s*(?P<mb>\d{4})\s*[\])]"]  # CUVA [MMSS,MMSS]
        + [
            pattern.format(a=f"(?P<a{i}>{TIME})", b=f"(?P<b{i}>{TIME})")
            for i, pattern in enumerate(_RANGES)
        ]
    ),
    flags=re.IGNORECASE,
)
_SPECIAL = re.compile(r"</?s>|<pad>|<unk>|<\|[^|>]*\|>|\[/?INST\]", flags=re.IGNORECASE)


def _pair_seconds(a: str, b: str) -> tuple[float, float] | None:
    pa, pb = split_time(a), split_time(b)
    if pa is None or pb is None:
        return None
    shared = pa[1] or pb[1]  # "between 1 and 2 minutes": a unit written once applies to both
    start, end = parse_time(a, default_unit=shared), parse_time(b, default_unit=shared)
    return None if start is None or end is None else (start, end)


def _mmss(code: str) -> float | None:
    try:
        return parse_mmss(code)
    except ValueError:
        return None


def parse_segments(text: str, duration: float | None = None) -> list[Segment]:
    """All time ranges in ``text`` as :class:`Segment` s, in order of appearance.

    Args:
        text: a model's answer (any string; non-strings give ``[]``).
        duration: the clip's length in seconds; segments are clamped to ``[0, duration]``
            (``None`` or ``≤ 0``: no upper bound).
    """
    try:
        if not isinstance(text, str):
            return []
        clean = _SPECIAL.sub(" ", text)
        limit = float(duration) if duration is not None and float(duration) > 0 else float("inf")
        segments: list[Segment] = []
        seen: set[tuple[float, float]] = set()
        for match in _PAIR.finditer(clean):
            if match.group("ma") is not None:
                start, end = _mmss(match.group("ma")), _mmss(match.group("mb"))
                if start is None or end is None:
                    continue
            else:
                i = next(i for i in range(len(_RANGES)) if match.group(f"a{i}") is not None)
                pair = _pair_seconds(match.group(f"a{i}"), match.group(f"b{i}"))
                if pair is None:
                    continue
                start, end = pair
            if not (math.isfinite(start) and math.isfinite(end)):
                continue  # a number too large for a float ("between 1 and 999…9 seconds")
            start, end = min(start, end), max(start, end)
            start, end = max(0.0, min(start, limit)), max(0.0, min(end, limit))
            if not end > start or (start, end) in seen:
                continue
            seen.add((start, end))
            segments.append(Segment(start, end))
        return segments
    except Exception:
        return []
