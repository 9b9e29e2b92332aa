"""Every exception uprm-core raises, in one module (imports nothing heavy).

Each message names the thing at fault — a file (and its line, record or field), an
expert, a plugin, a distribution, a config key — and what is wrong with it. A typed
error for each kind of bad input, rather than a ``KeyError`` or ``ValueError`` from deep
inside; each also derives from the built-in type a caller would naturally catch.
"""

from __future__ import annotations

import os

__all__ = [
    "AnnotationError",
    "BackboneNotFoundError",
    "CacheError",
    "CheckpointError",
    "ConfigError",
    "DuplicateExpertError",
    "ExpertOutputError",
    "MetricInputError",
    "MissingExpertError",
    "PluginError",
    "RecordError",
    "UPRMError",
    "UnknownExpertError",
    "VideoError",
]


class UPRMError(Exception):
    """Base class of UPRM's own errors."""


class VideoError(UPRMError, ValueError):
    """A video file cannot be read or sampled. The message names the file."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AnnotationError(UPRMError, ValueError):
    """A bad annotation file or line. The message names the file, the place (line,
    sheet row or JSON key) and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str, line: int | None = None, where: str | None = None):
        self.path = str(path)
        self.line = line
        self.where = where
        self.problem = problem
        place = f":{line}" if line is not None else ""
        place += f": {where}" if where else ""
        super().__init__(f"{self.path}{place}: {problem}")


class RecordError(UPRMError, ValueError):
    """An instruction file or one of its records cannot be used; the message names the
    file, the record and the field."""


class CacheError(RecordError):
    """A feature-cache entry cannot be used, or features are missing from the cache;
    the message names the file or the clip."""


class ConfigError(UPRMError, ValueError):
    """A configuration value (a ``UPRMConfig`` field, an override, a YAML key) is of the
    wrong type or out of range; the message names the key."""


class CheckpointError(UPRMError, ValueError):
    """A saved UPRM checkpoint is malformed: a missing or truncated file, weights that do
    not match the model the config describes, a router saved for another expert order.
    The message names the file and the problem."""


class MetricInputError(UPRMError, ValueError):
    """An input of a metric is malformed: wrong length, a NaN, an end before its start,
    a non-binary label... The message names the argument and, when it can, the row."""


class BackboneNotFoundError(UPRMError, FileNotFoundError):
    """The Video-LLaVA weights are not on this machine (or, offline, not in the local
    cache)."""


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
