"""The exceptions UPRM raises. Each message names the thing at fault (a file, an
expert, a plugin, a distribution) and what is wrong with it."""

from __future__ import annotations

__all__ = [
    "DuplicateExpertError",
    "ExpertOutputError",
    "MissingExpertError",
    "PluginError",
    "UPRMError",
    "UnknownExpertError",
    "VideoError",
]


class UPRMError(Exception):
    """Base class of UPRM's own errors."""


class VideoError(UPRMError, ValueError):
    """A video file cannot be read or sampled. The message names the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class PluginError(UPRMError):
    """A plugin is misbehaving (bad hook result, invalid expert class, ...)."""


class DuplicateExpertError(PluginError):
    """Two installed distributions register an expert under the same name."""


class UnknownExpertError(UPRMError, KeyError):
    """An expert name was asked for that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingExpertError(UnknownExpertError):
    """A saved model needs experts whose distributions are not installed."""


class ExpertOutputError(UPRMError):
    """An expert returned tokens that are not ``[B, T, D]`` on the coarse grid
    (wrong shape, dtype or device). The message names the expert."""
