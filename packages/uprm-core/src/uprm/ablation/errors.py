"""The ablation's error: a bad grid file (the message names the file and the key)."""

from __future__ import annotations

from uprm.errors import UPRMError

__all__ = ["AblationError"]


class AblationError(UPRMError, ValueError):
    """The ablation grid is not valid (unknown key, wrong type, missing file); the
    message names the file and the key."""
