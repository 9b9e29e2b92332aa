"""Events of one camera from its windows' scores: hysteresis with a threshold and a
cool-down (pure logic, no I/O; unit-tested with hand-made score sequences).

* An event **opens** at the first window whose P("Yes") is at or above ``threshold``.
  It starts where that window's locate answer puts the threat (the window's start when
  the answer names no time).
* While it is open, every window at or above ``threshold`` extends it to the end of its
  threat; a window below starts (or continues) a quiet spell.
* It **closes** at the first window that ends ``cooldown`` seconds of stream time or more
  after the end of the first window of the quiet spell (``cooldown = 0``: at the first
  window below). A window at or above the threshold ends the quiet spell. The event's
  end is the end of its last threat window, not the moment it closed.
* ``finish(reason)`` closes an open event at once (shutdown, end of a file).

An event's ``score`` is its highest window P("Yes"), its ``cause`` that window's cause
(the first non-empty one when it gave none), its ``expert_weights`` the P("Yes")-weighted
mean of its threat windows' router weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventTracker", "WindowScore"]


@dataclass
class WindowScore:
    """What the model said about one window of a camera.

    Attributes:
        start, end: the window in stream seconds.
        p_yes: probability of "Yes" as the identify answer's first token.
        cause: the attribute answer's cause ('' when not asked).
        expert_weights: the router's mean weight of each expert over the window.
        threat_start, threat_end: where the locate answer puts the threat (stream
            seconds; default: the window).
        start_wall, end_wall: wall-clock arrival (``time.time()``) of ``threat_start``
            and ``threat_end``.
        newest_wall: arrival of the newest frame the window sampled.
        score: ``P(yes) × locate probability`` (detect's ranking score).
    """

    start: float
    end: float
    p_yes: float
    cause: str = ""
    expert_weights: dict[str, float] = field(default_factory=dict)
    threat_start: float | None = None
    threat_end: float | None = None
    start_wall: float | None = None
    end_wall: float | None = None
    newest_wall: float | None = None
    score: float = 0.0

    def __post_init__(self) -> None:
        if self.threat_start is None:
            self.threat_start = self.start
        if self.threat_end is None:
            self.threat_end = self.end


@dataclass
class Event:
    """A threat event of one camera (stream seconds and wall-clock epochs).

    ``number`` counts the camera's events from 1; ``closed`` and ``reason`` are set when
    it closes (``"cooldown"``, ``"shutdown"``, ``"end of stream"``, ...)."""

    camera: str
    number: int
    start: float
    end: float
    start_wall: float | None
    end_wall: float | None
    score: float
    cause: str
    expert_weights: dict[str, float]
    windows: int = 1
    opened_by: WindowScore | None = None
    closed: bool = False
    reason: str = ""
    closed_at: float | None = None  # stream time of the window that closed it
    _weight_sum: float = 0.0
    _weighted: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<camera>-<UTC start, to the second>-<number>``, e.g. ``cam1-20260101T120000Z-3``:
        unique across runs that append to one alerts file, and a clip's file name."""
        stamp = "unknown" if self.start_wall is None else time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.start_wall))
        return f"{self.camera}-{stamp}-{self.number}"

    @classmethod
    def open(cls, camera: str, number: int, w: WindowScore) -> Event:
        event = cls(camera, number, float(w.threat_start), float(w.threat_end), w.start_wall, w.end_wall,
                    float(w.p_yes), w.cause, dict(w.expert_weights), 1, w)
        event._add_weights(w)
        return event

    def absorb(self, w: WindowScore) -> None:
        """A further threat window."""
        self.windows += 1
        if float(w.threat_end) >= self.end:
            self.end, self.end_wall = float(w.threat_end), w.end_wall
        if w.p_yes > self.score:
            self.score = float(w.p_yes)
            self.cause = w.cause or self.cause
        elif not self.cause:
            self.cause = w.cause
        self._add_weights(w)

    def _add_weights(self, w: WindowScore) -> None:
        weight = max(float(w.p_yes), 1e-12)
        self._weight_sum += weight
        for name, value in w.expert_weights.items():
            self._weighted[name] = self._weighted.get(name, 0.0) + weight * float(value)
        self.expert_weights = {k: v / self._weight_sum for k, v in self._weighted.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "number": self.number, "start": round(self.start, 3),
                "end": round(self.end, 3), "score": round(self.score, 6), "cause": self.cause,
                "expert_weights": {k: round(v, 6) for k, v in self.expert_weights.items()},
                "windows": self.windows, "closed": self.closed, "reason": self.reason}


class EventTracker:
    """Threshold/cool-down hysteresis over one camera's windows (see the module doc).

    ``update(window)`` and ``finish(reason)`` return the transitions they caused, as
    ``[("open" | "close", event)]``.
    """

    def __init__(self, camera: str, threshold: float = 0.5, cooldown: float = 8.0) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0 seconds, got {cooldown}")
        self.camera = camera
        self.threshold = float(threshold)
        self.cooldown = float(cooldown)
        self.current: Event | None = None
        self.quiet_since: float | None = None
        self.count = 0

    def above(self, w: WindowScore) -> bool:
        return w.p_yes >= self.threshold

    def update(self, w: WindowScore) -> list[tuple[str, Event]]:
        if self.current is None:
            if not self.above(w):
                return []
            self.count += 1
            self.current = Event.open(self.camera, self.count, w)
            self.quiet_since = None
            return [("open", self.current)]
        if self.above(w):
            self.current.absorb(w)
            self.quiet_since = None
            return []
        if self.quiet_since is None:
            self.quiet_since = w.end
        if w.end - self.quiet_since >= self.cooldown:
            return self._close("cooldown", w.end)
        return []

    def finish(self, reason: str = "shutdown", at: float | None = None) -> list[tuple[str, Event]]:
        """Close the open event (if any) now."""
        return self._close(reason, at) if self.current is not None else []

    def _close(self, reason: str, at: float | None) -> list[tuple[str, Event]]:
        event, self.current, self.quiet_since = self.current, None, None
        event.closed, event.reason, event.closed_at = True, reason, at
        return [("close", event)]
