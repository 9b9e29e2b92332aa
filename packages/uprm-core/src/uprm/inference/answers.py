"""What the model answered about one clip, and the threat segments read from it."""

from __future__ import annotations

from dataclasses import dataclass, field

from uprm.inference.segments import Segment, parse_segments
from uprm.prompts import strip_cause

__all__ = ["ClipAnswers"]


@dataclass
class ClipAnswers:
    """The three DeepSVU answers about one clip (``""`` for a task not asked).

    Attributes:
        identify, locate, attribute: the generated answers.
        p_yes: probability of the first token of "Yes, there exists a threat." as the
            identify answer's first token.
        locate_prob: geometric-mean probability of the locate answer's tokens.
        expert_weights: each expert's mean router weight over the clip's video tokens
            (the paper's Fig. 5 quantity), ``{name: weight}`` in router order.
    """

    identify: str = ""
    locate: str = ""
    attribute: str = ""
    p_yes: float = 0.0
    locate_prob: float = 1.0
    expert_weights: dict[str, float] = field(default_factory=dict)

    @property
    def threat(self) -> bool:
        """Whether the identify answer says there is a threat."""
        return self.identify.strip().lower().startswith("yes")

    @property
    def score(self) -> float:
        """``P("Yes") × geometric-mean probability of the locate answer``: how predictions
        of this clip rank for mAP."""
        return self.p_yes * self.locate_prob

    @property
    def cause(self) -> str:
        return strip_cause(self.attribute)

    def segments(self, window: tuple[float, float] | None = None, duration: float | None = None) -> list[Segment]:
        """The threat segments in seconds of the source video: ``[]`` unless the identify
        answer says yes; the locate answer's times (relative to the window start) are
        clamped to the window and shifted by its start. ``duration`` bounds them when
        there is no window."""
        if not self.threat:
            return []
        offset = float(window[0]) if window is not None else 0.0
        length = float(window[1] - window[0]) if window is not None else duration
        return [Segment(s.start + offset, s.end + offset, self.cause, self.score)
                for s in parse_segments(self.locate, length)]
