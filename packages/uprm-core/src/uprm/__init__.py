"""UPRM — Unified Physical-world Regularized MoE for in-depth security-oriented video
understanding (Jin et al., WWW 2026).

A Video-LLM (Video-LLaVA) whose visual tokens come from a mixture of physical-world
experts — human pose, object relations, visual background and a coarse video expert —
mixed by a gated trade-off router (eq.6) and regularised by a router z-loss (eq.7).

The public API is imported lazily: ``import uprm`` loads neither torch nor any plugin;
``uprm.available_experts()`` discovers the installed expert plugins on first use.

>>> import uprm
>>> sorted(uprm.available_experts())           # doctest: +SKIP
['background', 'coarse', 'pose', 'relation']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from uprm._version import __version__
from uprm.offline import configure_offline as _configure_offline

# UPRM_OFFLINE=1 reaches the libraries' own switches before any of them is imported
# (setdefault only: what the user set wins; nothing changes online)
_configure_offline()

# name -> module that defines it
_LAZY: dict[str, str] = {
    # data types and errors
    "VideoClip": "uprm.types",
    "UPRMError": "uprm.errors",
    "VideoError": "uprm.errors",
    "PluginError": "uprm.errors",
    "DuplicateExpertError": "uprm.errors",
    "UnknownExpertError": "uprm.errors",
    "MissingExpertError": "uprm.errors",
    "ExpertOutputError": "uprm.errors",
    "AnnotationError": "uprm.errors",
    "RecordError": "uprm.errors",
    "CacheError": "uprm.errors",
    "ConfigError": "uprm.errors",
    "CheckpointError": "uprm.errors",
    "BackboneNotFoundError": "uprm.errors",
    # experts and plugins
    "Expert": "uprm.experts.base",
    "ExpertContext": "uprm.experts.base",
    "hookimpl": "uprm.plugins.hookspecs",
    "available_experts": "uprm.plugins.manager",
    "expert_infos": "uprm.plugins.manager",
    "get_expert_class": "uprm.plugins.manager",
    "reset_plugins": "uprm.plugins.manager",
    "build_experts": "uprm.plugins.factory",
    # the UPE block
    "TradeoffRouter": "uprm.moe.router",
    "BasicRouter": "uprm.moe.router",
    "tradeoff_z_loss": "uprm.moe.losses",
    "UPEBlock": "uprm.moe.block",
    "UPEOutput": "uprm.moe.block",
    # the model
    "UPRMConfig": "uprm.modeling.config",
    "UPRMModel": "uprm.modeling.model",
    "UPRMOutput": "uprm.modeling.model",
    "build_model": "uprm.modeling.model",
    "load_model": "uprm.modeling.loading",
    "LoadedModel": "uprm.modeling.loading",
    # inference
    "Segment": "uprm.inference.segments",
    "parse_segments": "uprm.inference.segments",
    "ClipAnswers": "uprm.inference.answers",
    "detect": "uprm.detection",
    # training and evaluation
    "train": "uprm.training",
    "evaluate": "uprm.evaluation",
    "ablate": "uprm.ablation",
    "score_predictions": "uprm.evaluation",
}

# ``uprm.watch`` is a package that can be called (``uprm.watch(sources, checkpoint)``);
# the submodule fallback below finds it, so it is listed here rather than in _LAZY
__all__ = ["__version__", "watch", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:  # submodules: uprm.data, uprm.metrics, uprm.testing, ...
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'uprm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from uprm.ablation import ablate
    from uprm.detection import detect
    from uprm.errors import (
        AnnotationError,
        BackboneNotFoundError,
        CacheError,
        CheckpointError,
        ConfigError,
        DuplicateExpertError,
        ExpertOutputError,
        MissingExpertError,
        PluginError,
        RecordError,
        UnknownExpertError,
        UPRMError,
        VideoError,
    )
    from uprm.evaluation import evaluate, score_predictions
    from uprm.experts.base import Expert, ExpertContext
    from uprm.inference.answers import ClipAnswers
    from uprm.inference.segments import Segment, parse_segments
    from uprm.modeling.config import UPRMConfig
    from uprm.modeling.model import UPRMModel, UPRMOutput, build_model
    from uprm.moe.block import UPEBlock, UPEOutput
    from uprm.moe.losses import tradeoff_z_loss
    from uprm.moe.router import BasicRouter, TradeoffRouter
    from uprm.plugins.factory import build_experts
    from uprm.plugins.hookspecs import hookimpl
    from uprm.plugins.manager import available_experts, expert_infos, get_expert_class, reset_plugins
    from uprm.training import train
    from uprm.types import VideoClip
