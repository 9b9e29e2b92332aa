"""Errors of the pose expert. Each names the file (or clip) at fault, the field, and
what to do."""

from __future__ import annotations

import os

from uprm.errors import UPRMError

__all__ = ["KeypointFileError", "PoseSourceError", "PoseWeightsError"]


class KeypointFileError(UPRMError, ValueError):
    """A keypoint JSON file (docs/formats.md) is unreadable or holds bad values.

    Attributes:
        path: the file.
        field: where in the file, e.g. ``annotations[3].keypoints[14]``.
        problem: what is wrong.
    """

    def __init__(self, path: str | os.PathLike, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"keypoint file {self.path}: {field}: {problem}")


class PoseWeightsError(UPRMError, ValueError):
    """A YOLO-pose weights file (or model config) cannot be used: unreadable in safe
    mode, not an ultralytics model, or not a 17-joint pose model."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"pose weights {self.path}: {problem}")


class PoseSourceError(UPRMError, ValueError):
    """A clip cannot be given poses: no keypoint file in its meta and no pose model, or
    meta that does not say which frames of the video were sampled."""
