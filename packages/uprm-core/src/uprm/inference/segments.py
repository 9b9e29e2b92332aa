"""Reading threat segments out of a model's answer.

``parse_segments("The threat occurs between 22 and 24.5 seconds.", duration=60)`` →
``[Segment(start=22.0, end=24.5, cause='', score=1.0)]``.

Times: seconds (``22``, ``22.5s``, ``22 sec``, ``22 seconds``), minutes (``1.5 min``),
``mm:ss`` and ``hh:mm:ss`` (with optional fractions), and CUVA's 4-digit ``MMSS`` pairs
in brackets (``[0052,0114]`` = 0:52–1:14). Ranges: ``between X and Y``, ``from X to Y``,
``X to Y``, ``X–Y``/``X-Y``/``X—Y``/``X~Y``, ``[X, Y]``/``(X, Y)``; several in one answer.
A unit written once applies to both ends (``between 1 and 2 minutes``). Each segment is
ordered (start ≤ end), clamped to ``[0, duration]``; empty ones are dropped; special
tokens such as ``</s>`` are stripped. It never raises, whatever the string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b\.?"
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{1,3}:\d{2}(?:\.\d+)?"
_NUMBER = r"\d+(?:\.\d+)?"
_TIME = rf"(?:{_CLOCK}|{_NUMBER})(?:\s*{_UNIT})?"
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
            pattern.format(a=f"(?P<a{i}>{_TIME})", b=f"(?P<b{i}>{_TIME})")
            for i, pattern in enumerate(_RANGES)
        ]
    ),
    flags=re.IGNORECASE,
)
_SPECIAL = re.compile(r"</?s>|<pad>|<unk>|<\|[^|>]*\|>|\[/?INST\]", flags=re.IGNORECASE)
_SPLIT = re.compile(rf"^(?P<value>{_CLOCK}|{_NUMBER})\s*(?P<unit>{_UNIT})?$", flags=re.IGNORECASE)


def _unit_factor(unit: str | None) -> float | None:
    if not unit:
        return None
    u = unit.lower().rstrip(".")
    if u.startswith("h"):
        return 3600.0
    if u.startswith("m"):
        return 60.0
    return 1.0


def parse_time(text: str) -> float | None:
    """``"1:02:03.5"`` → 3723.5, ``"01:14"`` → 74, ``"22.5s"`` → 22.5, ``"2 min"`` → 120;
    ``None`` when ``text`` is not a time."""
    match = _SPLIT.match(text.strip())
    if match is None:
        return None
    value, unit = match.group("value"), match.group("unit")
    if ":" in value:
        parts = [float(p) for p in value.split(":")]
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds
    return float(value) * (_unit_factor(unit) or 1.0)


def _pair_seconds(a: str, b: str) -> tuple[float, float] | None:
    ma, mb = _SPLIT.match(a.strip()), _SPLIT.match(b.strip())
    if ma is None or mb is None:
        return None
    ua, ub = _unit_factor(ma.group("unit")), _unit_factor(mb.group("unit"))
    shared = ua or ub or 1.0  # "between 1 and 2 minutes": the unit applies to both
    out = []
    for m, unit in ((ma, ua), (mb, ub)):
        value = m.group("value")
        if ":" in value:
            out.append(parse_time(value))
        else:
            out.append(float(value) * (unit or shared))
    return out[0], out[1]


def _mmss(code: str) -> float:
    return int(code[:2]) * 60 + int(code[2:])


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
                start, end = float(_mmss(match.group("ma"))), float(_mmss(match.group("mb")))
            else:
                i = next(i for i in range(len(_RANGES)) if match.group(f"a{i}") is not None)
                pair = _pair_seconds(match.group(f"a{i}"), match.group(f"b{i}"))
                if pair is None:
                    continue
                start, end = pair
            start, end = min(start, end), max(start, end)
            start, end = max(0.0, min(start, limit)), max(0.0, min(end, limit))
            if not end > start or (start, end) in seen:
                continue
            seen.add((start, end))
            segments.append(Segment(start, end))
        return segments
    except Exception:
        return []
