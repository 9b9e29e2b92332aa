"""Reading times written as text, defined once for the whole project (imports only ``re``).

Used by the annotation readers (UCA's ``00:01.2``, CUVA's ``[0052,0114]`` moments) and by
:func:`uprm.parse_segments` (model answers). Forms:

* clock: ``hh:mm:ss``, ``mm:ss`` (fractions allowed: ``1:02:03.5``, ``00:01.2``);
* a number with an optional unit: ``22``, ``22.5s``, ``22 seconds``, ``1.5 min``, ``2 h``;
* CUVA's 4-digit ``MMSS`` codes (6-digit ``HHMMSS`` too): ``0114`` = 74 s.
"""

from __future__ import annotations

import re

__all__ = ["CLOCK", "NUMBER", "TIME", "UNIT", "parse_mmss", "parse_time", "split_time", "unit_factor"]

#: a unit word after a number
UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b\.?"
#: ``hh:mm:ss`` or ``mm:ss``, with an optional fraction
CLOCK = r"\d+:\d{1,2}:\d{1,2}(?:\.\d+)?|\d+:\d{1,2}(?:\.\d+)?"
NUMBER = r"\d+(?:\.\d+)?"
#: one time: a clock or a number, optionally followed by a unit
TIME = rf"(?:{CLOCK}|{NUMBER})(?:\s*{UNIT})?"

_SPLIT = re.compile(rf"^(?P<value>{CLOCK}|{NUMBER})\s*(?P<unit>{UNIT})?$", flags=re.IGNORECASE)


def unit_factor(unit: str | None) -> float | None:
    """Seconds per ``unit`` (``"min"`` → 60); ``None`` when no unit is written."""
    if not unit:
        return None
    u = unit.lower().rstrip(".")
    if u.startswith("h"):
        return 3600.0
    if u.startswith("m"):
        return 60.0
    return 1.0


def split_time(text: str) -> tuple[str, str | None] | None:
    """``"22.5 s"`` → ``("22.5", "s")``; ``None`` when ``text`` is not one time."""
    match = _SPLIT.match(text.strip())
    return None if match is None else (match.group("value"), match.group("unit"))


def _clock(value: str) -> float:
    seconds = 0.0
    for part in value.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time(text: str, default_unit: str | None = None) -> float | None:
    """Seconds in ``text``: ``"1:02:03.5"`` → 3723.5, ``"01:14"`` → 74, ``"22.5s"`` →
    22.5, ``"2 min"`` → 120, ``"7"`` → 7 (or 420 with ``default_unit="min"``); ``None``
    when ``text`` is not a time."""
    parts = split_time(text)
    if parts is None:
        return None
    value, unit = parts
    if ":" in value:
        return _clock(value)
    return float(value) * (unit_factor(unit) or unit_factor(default_unit) or 1.0)


def parse_mmss(code: str) -> float:
    """CUVA's time code: 4 digits ``MMSS`` (``"0114"`` → 74.0) or 6 digits ``HHMMSS``;
    a clock (``"1:14"``) is accepted too.

    Raises:
        ValueError: not such a code, or a seconds (or, with hours, minutes) field ≥ 60.
    """
    code = code.strip()
    if ":" in code:
        seconds = parse_time(code)
        if seconds is None:
            raise ValueError(f"bad time {code!r}")
        return seconds
    if not code.isdigit() or len(code) not in (4, 6):
        raise ValueError(f"a time must be 4 digits MMSS (or 6 digits HHMMSS), got {code!r}")
    digits = code.zfill(6)
    h, m, s = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if s >= 60 or (len(code) == 6 and m >= 60):
        raise ValueError(f"bad time {code!r}: seconds (and minutes) must be below 60")
    return float(h * 3600 + m * 60 + s)
