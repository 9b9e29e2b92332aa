"""From window answers to threat segments of the whole video.

Rules (documented in docs/detection.md):

* a window whose identify answer says yes gives the segments of its locate answer,
  shifted to absolute seconds and clamped to the window (``ClipAnswers.segments``); when
  the locate answer names no time, the whole window is the segment;
* segments that overlap, or whose gap is at most ``gap`` seconds (default: one sampling
  interval, ``window / num_frames``), merge — transitively, across any number of windows;
* a merged segment's **score** is the highest of its windows' scores (``P(yes) ×``
  geometric-mean probability of the locate answer), so merged segments rank as their
  most confident window for mAP; its **cause** is the cause given by that window; its
  **expert_weights** are the score-weighted mean of its windows' router weights (each
  window counted once; the plain mean when every score is 0).

:class:`SegmentMerger` does this online, window by window in time order, and hands out
each merged segment as soon as no later window can touch it (its end plus ``gap`` lies
before the next window's start), so an hour-long video never holds more than the open
segments. :func:`merge_windows` is the same on a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from uprm.inference.segments import Segment

__all__ = ["DetectedSegment", "SegmentMerger", "WindowResult", "merge_windows"]


@dataclass
class WindowResult:
    """What the model said about one window.

    Attributes:
        index: the window's number in the video's plan.
        start, end: the window in seconds of the video.
        p_yes: probability of "Yes" as the identify answer's first token.
        threat: the identify answer says yes.
        score: ``p_yes × locate_prob`` (0 when there is no threat).
        cause: the attribute answer's cause ('' when not asked).
        expert_weights: the router's mean weight of each expert over the window's tokens.
        segments: the window's threat segments in seconds of the video.
    """

    index: int
    start: float
    end: float
    p_yes: float = 0.0
    threat: bool = False
    score: float = 0.0
    cause: str = ""
    expert_weights: dict[str, float] = field(default_factory=dict)
    segments: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "p_yes": round(self.p_yes, 6), "threat": self.threat,
                "score": round(self.score, 6)}


@dataclass
class DetectedSegment(Segment):
    """A threat segment of a video (seconds), with the router's weight of each expert and
    the windows it was merged from; ``category`` and ``severity`` when the site taxonomy
    knows the category of its cause (:mod:`uprm.detection.categories`), else ``None``."""

    expert_weights: dict[str, float] = field(default_factory=dict)
    windows: list[int] = field(default_factory=list)
    category: str | None = None
    severity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The segment's record in ``OUT/<video_id>.json``; ``category`` and ``severity``
        only when the category is known."""
        out: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "score": round(self.score, 6),
                               "cause": self.cause,
                               "expert_weights": {k: round(v, 6) for k, v in self.expert_weights.items()}}
        if self.category is not None:
            out.update(category=self.category, severity=self.severity)
        return out


@dataclass(eq=False)
class _Run:
    """A segment being merged: its span and the windows in it (by index)."""

    start: float
    end: float
    members: dict[int, WindowResult]
    best: WindowResult
    payload: Any = None  # what the caller keeps of the best window (evidence)

    def absorb(self, other: _Run) -> None:
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        self.members.update(other.members)
        if other.best.score > self.best.score:
            self.best, self.payload = other.best, other.payload

    def segment(self) -> DetectedSegment:
        windows = sorted(self.members)
        results = [self.members[i] for i in windows]
        return DetectedSegment(self.start, self.end, self.best.cause, self.best.score,
                               expert_weights=_weighted_weights(results), windows=windows)


def _weighted_weights(results: list[WindowResult]) -> dict[str, float]:
    total = sum(r.score for r in results)
    weights = [r.score / total for r in results] if total > 0 else [1.0 / len(results)] * len(results)
    out: dict[str, float] = {}
    for r, w in zip(results, weights):
        for name, value in r.expert_weights.items():
            out[name] = out.get(name, 0.0) + w * float(value)
    return out


#: how far apart (seconds) two spans may be beyond the merge gap and still merge: the
#: rounding of window spans to microseconds
SPAN_TOLERANCE = 2e-6


class SegmentMerger:
    """Merge window segments online (see the module doc).

    ``add(result, payload)`` returns the segments closed by this window, each as
    ``(DetectedSegment, payload of its best window)``; ``finish()`` closes the rest.
    """

    def __init__(self, gap: float = 0.0) -> None:
        if gap < 0:
            raise ValueError(f"the merge gap must be >= 0 seconds, got {gap}")
        # window spans are rounded to microseconds (WindowPlan.span): two windows one
        # sampling interval apart may be that interval plus 1 µs apart, and still merge
        self.gap = float(gap)
        self._reach = self.gap + SPAN_TOLERANCE
        self.open: list[_Run] = []
        self._last_start = float("-inf")

    def add(self, result: WindowResult, payload: Any = None) -> list[tuple[DetectedSegment, Any]]:
        if result.start < self._last_start:
            raise ValueError(f"windows must come in time order (window {result.index} starts at {result.start} s, "
                             f"before {self._last_start} s)")
        self._last_start = result.start
        closed = [r for r in self.open if r.end + self._reach < result.start]
        self.open = [r for r in self.open if r.end + self._reach >= result.start]
        if result.threat:
            for start, end in result.segments:
                self._insert(_Run(start, end, {result.index: result}, result, payload))
        return _emit(closed)

    def _insert(self, run: _Run) -> None:
        keep = []
        for other in self.open:
            if other.start - self._reach <= run.end and run.start <= other.end + self._reach:
                run.absorb(other)
            else:
                keep.append(other)
        self.open = [*keep, run]

    def finish(self) -> list[tuple[DetectedSegment, Any]]:
        closed, self.open = self.open, []
        return _emit(closed)


def _emit(runs: list[_Run]) -> list[tuple[DetectedSegment, Any]]:
    return [(r.segment(), r.payload) for r in sorted(runs, key=lambda r: (r.start, r.end))]


def merge_windows(results: Iterable[WindowResult], gap: float = 0.0) -> list[DetectedSegment]:
    """The merged threat segments of windows given in time order (see the module doc)."""
    merger = SegmentMerger(gap)
    out = [seg for r in results for seg, _ in merger.add(r)]
    out += [seg for seg, _ in merger.finish()]
    return out


def window_segments(answers: Any, span: tuple[float, float], duration: float) -> list[tuple[float, float]]:
    """A window's threat segments from its :class:`~uprm.ClipAnswers`: the locate answer's
    times in seconds of the video, or the whole window when it names none; ``[]`` when
    the identify answer says no."""
    if not answers.threat:
        return []
    found = [(s.start, s.end) for s in answers.segments(span, duration)]
    return found or [(float(span[0]), float(span[1]))]


def window_result(index: int, answers: Any, span: tuple[float, float], duration: float) -> WindowResult:
    """A :class:`WindowResult` from a window's :class:`~uprm.ClipAnswers`."""
    threat = bool(answers.threat)
    weights: Mapping[str, float] = answers.expert_weights or {}
    return WindowResult(index, float(span[0]), float(span[1]), p_yes=float(answers.p_yes), threat=threat,
                        score=float(answers.score) if threat else 0.0, cause=answers.cause if threat else "",
                        expert_weights={k: float(v) for k, v in weights.items()},
                        segments=window_segments(answers, span, duration))
