"""The ablation's error, defined with every other error class in :mod:`uprm.errors`."""

from uprm.errors import AblationError, AblationRunError

__all__ = ["AblationError", "AblationRunError"]
