"""The model's answers for a batch of windows (of any cameras): identify for every
window, locate and attribute only for the windows whose P("Yes") reaches the threshold
— most live video is normal, so most windows cost one short question."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["IDENTIFY_TOKENS", "answer_windows", "threat_span"]

#: tokens generated for the identify question: its first token gives P("Yes") and the
#: yes/no; the rest of "Yes, there exists a threat." is not needed (as uprm detect)
IDENTIFY_TOKENS = 4


def answer_windows(model: Any, features: Sequence[Mapping[str, Any]], threshold: float) -> list[Any]:
    """:class:`~uprm.ClipAnswers` of each window's ``features`` (``{expert: {key: tensor}}``),
    with ``locate``/``attribute`` filled for the windows with ``p_yes >= threshold``.

    The adapters, the router and the language model's reading of the video tokens run once
    per window (``model.prefill``); the hot windows' further questions start from there."""
    prefix = model.prefill(model.collate(list(features)))
    answers = model.answer(prefix, ("identify",), max_new_tokens=IDENTIFY_TOKENS)
    hot = [i for i, a in enumerate(answers) if a.p_yes >= threshold]
    if hot:
        more = model.answer(prefix.select(hot), ("locate", "attribute"))
        for i, extra in zip(hot, more):
            answers[i].locate, answers[i].attribute = extra.locate, extra.attribute
            answers[i].locate_prob = extra.locate_prob
    return answers


def threat_span(locate: str, span: tuple[float, float]) -> tuple[float, float]:
    """Where a locate answer puts the threat inside the window ``span`` (stream seconds):
    the hull of the segments it names (relative to the window, clamped to it), or the
    whole window when it names none."""
    from uprm.inference.segments import parse_segments

    start, end = float(span[0]), float(span[1])
    found = parse_segments(locate, end - start) if locate else []
    if not found:
        return start, end
    return start + min(s.start for s in found), start + max(s.end for s in found)
