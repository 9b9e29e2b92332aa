"""The conversation format of Video-LLaVA and the DeepSVU questions (paper §4.1).

Video-LLaVA's prompt is ``"USER: <video>\\n{question} ASSISTANT:"``; the answer follows
after one space and ends with the end-of-sequence token.
"""

from __future__ import annotations

from uprm.data.instructions import ANSWERS, QUESTIONS

__all__ = ["CAUSE_PREFIX", "PROMPT", "TASK_QUESTIONS", "VIDEO_PLACEHOLDER", "YES_ANSWER", "format_prompt", "question_for"]

VIDEO_PLACEHOLDER = "<video>"
PROMPT = "USER: {video}\n{question} ASSISTANT:"

#: the three DeepSVU instructions (identify, locate, attribute) and the fixed answers,
#: shared with the instruction builders
TASK_QUESTIONS = QUESTIONS
YES_ANSWER = ANSWERS["identify_yes"]
CAUSE_PREFIX = "The threat is attributed to"


def question_for(task_or_question: str) -> str:
    """A task name (``identify``/``locate``/``attribute``) → its question; anything else
    is taken as the question itself."""
    return TASK_QUESTIONS.get(task_or_question.strip().lower(), task_or_question)


def format_prompt(question: str) -> str:
    """The Video-LLaVA prompt around a question. A question that already holds the
    ``<video>`` (or ``<image>``) placeholder keeps it where it is."""
    q = question.strip()
    if VIDEO_PLACEHOLDER in q or "<image>" in q:
        q = q.replace("<image>", VIDEO_PLACEHOLDER)  # images enter as one-frame clips
        head, _, tail = q.partition(VIDEO_PLACEHOLDER)
        return f"USER: {head}{VIDEO_PLACEHOLDER}{tail} ASSISTANT:"
    return PROMPT.format(video=VIDEO_PLACEHOLDER, question=q)
