"""Every exception uprm-core raises, in one module (imports nothing heavy).

Each message names the thing at fault — a file (and its line, record or field), an
expert, a plugin, a distribution, a config key — and what is wrong with it. A typed
error for each kind of bad input, rather than a ``KeyError`` or ``ValueError`` from deep
inside; each also derives from the built-in type a caller would naturally catch.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "AblationError",
    "AblationRunError",
    "AnnotationError",
    "ApiError",
    "BackboneNotFoundError",
    "CacheError",
    "CheckpointError",
    "ConfigError",
    "DuplicateExpertError",
    "EvaluationError",
    "ExpertError",
    "ExpertOutputError",
    "JudgeError",
    "JudgeReplyError",
    "MetricInputError",
    "MissingExpertError",
    "MissingExtraError",
    "PerceptionError",
    "PlotError",
    "PluginError",
    "RecordError",
    "ServeConfigError",
    "UPRMError",
    "UltralyticsModelError",
    "UnknownExpertError",
    "VideoError",
    "WatchError",
    "WatchSettingsError",
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


class MissingExtraError(UPRMError, ImportError):
    """A feature needs an extra of uprm-core that is not (fully) installed
    (:func:`uprm.extras.require`). ``missing`` maps each extra to its distributions that
    are absent; ``install`` is the one line that fixes it, ``pip install "uprm-core[a,b]"``."""

    def __init__(self, feature: str, missing: dict[str, list[str]], hint: str | None = None):
        self.feature = feature
        self.missing = {extra: list(names) for extra, names in missing.items()}
        self.install = f'pip install "uprm-core[{",".join(self.missing)}]"'
        names = [n for names in self.missing.values() for n in names]
        extras = " and ".join(self.missing)
        verb = "is" if len(names) == 1 else "are"
        message = (f"{feature} needs uprm-core's {extras} extra{'s' if len(self.missing) > 1 else ''} "
                   f"({', '.join(names)} {verb} not installed): {self.install}")
        super().__init__(message + (f" ({hint})" if hint else ""), name=names[0] if names else None)


class ExpertError(PluginError):
    """An expert failed while it ran: it raised in ``__init__``, ``extract`` or
    ``forward``, or returned something unusable. The message names the expert, its
    plugin and its distribution (``expert 'pose' (distribution uprm-expert-pose 0.1.0,
    plugin 'pose')``); the expert's own exception is chained as ``__cause__``.

    Attributes:
        expert: the expert's name.
        origin: the distribution, version and plugin, as in the message.
        stage: ``"__init__"``, ``"extract"``, ``"forward"`` or ``"output"``.
    """

    def __init__(self, message: str, expert: str | None = None, origin: str | None = None,
                 stage: str | None = None) -> None:
        super().__init__(message)
        self.expert = expert
        self.origin = origin
        self.stage = stage


class ExpertOutputError(ExpertError):
    """An expert returned tokens that are not ``[B, T, D]`` on the coarse grid
    (wrong shape, dtype or device). The message names the expert and its distribution."""


# --------------------------------------------------------------------------- the upper half
class PerceptionError(UPRMError):
    """An expert could not perceive a window of a video in ``uprm detect``; names the
    expert, the video and what to pass."""


class PlotError(UPRMError):
    """A training run cannot be plotted; the message names it."""


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


class AblationError(ConfigError):
    """The ablation grid is not valid (unknown key, wrong type, missing file); the
    message names the file and the key."""


class AblationRunError(UPRMError):
    """One run of an ablation cannot go on (its message is the reason); the others do."""


_ULTRALYTICS_PROBLEMS = {
    "suffix": "has suffix {detail!r}; ultralytics checkpoints are .pt files",
    "unreadable": "cannot be loaded in safe mode (weights_only): {detail}",
    "no_model": "holds no ultralytics model (it holds {detail})",
    "build": "cannot be built: {detail}",
    "task": "is an ultralytics {detail!r} model",
    "kpt_shape": "is a pose model with kpt_shape {detail}",
}


class UltralyticsModelError(UPRMError, ValueError):
    """An ultralytics checkpoint or config that cannot be used.

    Attributes:
        path: the file or config name.
        kind: ``"suffix"``, ``"unreadable"``, ``"no_model"``, ``"build"``, ``"task"`` or ``"kpt_shape"``.
        detail: the suffix, the loader's first error line, what the file holds, the
            model's task, or its ``kpt_shape`` (a list), by ``kind``.
    """

    def __init__(self, path: str | os.PathLike, kind: str, detail: Any) -> None:
        self.path = str(path)
        self.kind = kind
        self.detail = detail
        self.problem = _ULTRALYTICS_PROBLEMS[kind].format(detail=detail)
        super().__init__(f"{self.path}: {self.problem}")


class WatchError(UPRMError):
    """The watcher cannot go on: a bad source or setting, or an expert that cannot
    perceive live video. The message names the camera or the setting."""


class WatchSettingsError(ConfigError, WatchError):
    """A setting of ``uprm watch`` that cannot work; the message names it (a
    :class:`ConfigError` like every settings error, and a :class:`WatchError`)."""


class ServeConfigError(ConfigError):
    """A setting of ``uprm serve`` that cannot work; the message names it."""


class ApiError(UPRMError):
    """An error the REST API of ``uprm serve`` answers with: an HTTP status, a stable
    code and a sentence for people (sent as RFC 9457 problem details)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
