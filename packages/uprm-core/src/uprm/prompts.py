"""The DeepSVU instruction templates (paper §4.1, DESIGN §7) and Video-LLaVA's prompt
format, defined once (imports nothing).

The instruction builders (``uprm.data``), the model (``uprm.modeling``) and the
evaluation all read these: the task names, their questions, the fixed answers, the
prefix of an attribution answer, and the conversation prompt
``"USER: <video>\\n{question} ASSISTANT:"``.
"""

from __future__ import annotations

__all__ = [
    "ANSWERS",
    "CAUSE_PREFIX",
    "LOCATE_PREFIX",
    "PROMPT",
    "QUESTIONS",
    "STAGE1_TASKS",
    "STAGE2_TASKS",
    "VIDEO_PLACEHOLDER",
    "YES_ANSWER",
    "format_prompt",
    "question_for",
    "strip_cause",
]

#: stage-2 (DeepSVU) tasks, in the order the model asks them
STAGE2_TASKS: tuple[str, ...] = ("identify", "locate", "attribute")
#: stage-1 (physical-world pre-tuning) tasks: one per fine expert's kind of knowledge
STAGE1_TASKS: tuple[str, ...] = ("pose", "relation", "background")

#: the questions of paper §4.1
QUESTIONS: dict[str, str] = {
    "identify": "Please determine whether there exist threats in the video",
    "locate": "Please locate the exact timestamps where the threats occur",
    "attribute": "Please give me a detailed explanation of the root causes of the threat",
}

#: the fixed answers (docs/formats.md)
ANSWERS: dict[str, str] = {
    "identify_yes": "Yes, there exists a threat.",
    "identify_no": "No, there is no threat.",
    "locate_none": "There is no threat in the video.",
}
YES_ANSWER = ANSWERS["identify_yes"]
LOCATE_PREFIX = "The threat occurs"
CAUSE_PREFIX = "The threat is attributed to"

VIDEO_PLACEHOLDER = "<video>"
PROMPT = "USER: {video}\n{question} ASSISTANT:"


def question_for(task_or_question: str) -> str:
    """A task name (``identify``/``locate``/``attribute``) → its question; anything else
    is taken as the question itself."""
    return QUESTIONS.get(task_or_question.strip().lower(), task_or_question)


def format_prompt(question: str) -> str:
    """The Video-LLaVA prompt around a question. A question that already holds the
    ``<video>`` (or ``<image>``) placeholder keeps it where it is; images enter as
    one-frame clips, so ``<image>`` is read as ``<video>``."""
    q = question.strip()
    if VIDEO_PLACEHOLDER in q or "<image>" in q:
        q = q.replace("<image>", VIDEO_PLACEHOLDER)
        head, _, tail = q.partition(VIDEO_PLACEHOLDER)
        return f"USER: {head}{VIDEO_PLACEHOLDER}{tail} ASSISTANT:"
    return PROMPT.format(video=VIDEO_PLACEHOLDER, question=q)


def strip_cause(answer: str) -> str:
    """The cause in an attribution answer: ``"The threat is attributed to a fire."`` →
    ``"a fire"`` (the answer itself, trimmed, when it lacks the prefix)."""
    cause = answer.strip()
    if cause.lower().startswith(CAUSE_PREFIX.lower()):
        cause = cause[len(CAUSE_PREFIX) :].strip()
    return cause.rstrip(".").strip()
