"""The evaluation's errors, defined with every other error class in :mod:`uprm.errors`."""

from uprm.errors import EvaluationError, JudgeError, JudgeReplyError

__all__ = ["EvaluationError", "JudgeError", "JudgeReplyError"]
