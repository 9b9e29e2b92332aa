"""The evaluation's own errors (the core's are in :mod:`uprm.errors`)."""

from __future__ import annotations

from uprm.errors import UPRMError

__all__ = ["EvaluationError", "JudgeError", "JudgeReplyError"]


class EvaluationError(UPRMError, ValueError):
    """An evaluation input cannot be used: a missing checkpoint, a data file without
    records of the split, a predictions file not in the ActivityNet results layout,
    predictions naming videos the ground truth lacks, a run folder holding another
    evaluation's answers, a badly filled rating sheet... The message names the file
    (and the record, row or video) and the problem."""


class JudgeError(EvaluationError):
    """The LLM judge cannot be configured or reached, or keeps answering out of format."""


class JudgeReplyError(JudgeError):
    """The judge gave no usable verdict on one answer after every retry (server errors,
    timeouts or replies out of format); that answer is reported as failed."""
