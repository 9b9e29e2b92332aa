"""Training: both stages (pre-tuning, DeepSVU instruction tuning) on accelerate.

>>> import uprm
>>> run = uprm.train(data=["world/instructions/synthetic_train.json"], cache="cache",
...                  tiny=True, out="runs/tiny", max_steps=300)          # doctest: +SKIP
>>> uprm.UPRMModel.from_pretrained(run)                                  # doctest: +SKIP

``uprm train`` is the same on the command line. The run directory (``out``) holds the
final model (``config.json``, ``model.safetensors``), ``log.jsonl`` (one record per
optimizer step), ``eval.jsonl``, ``train_config.json`` (the resolved configuration),
``summary.json``, ``checkpoints/step-NNNNNNNN/`` and ``tensorboard/``. See
docs/training.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from uprm.training.config import PAPER_LR, TINY_LR, TINY_TRAIN_MODULES, ConfigError, TrainConfig
from uprm.training.trainer import Callback, Trainer, settings_for_resume

__all__ = ["PAPER_LR", "TINY_LR", "TINY_TRAIN_MODULES", "ConfigError", "TrainConfig", "Trainer", "make_config",
           "train"]


def make_config(config: str | os.PathLike | Mapping[str, Any] | TrainConfig | None = None,
                **settings: Any) -> TrainConfig:
    """The run's :class:`TrainConfig`: ``config`` (a YAML/JSON file, a mapping or a
    ``TrainConfig``) with ``settings`` on top. With ``resume=True`` and a run in
    ``out``, the run's saved configuration is the base, so only what is given again
    is compared with it."""
    if isinstance(config, TrainConfig):
        return config.replace(**settings)
    if isinstance(config, (str, os.PathLike)):
        base = TrainConfig.from_file(config)
    elif isinstance(config, Mapping):
        base = TrainConfig.load(config, "config")
    elif config is None:
        base = TrainConfig()
    else:
        raise TypeError(f"config must be a path, a mapping or a TrainConfig, not {type(config).__name__}")
    explicit = {**base.given(), **settings}
    resumed = settings_for_resume(explicit, explicit.get("out"))
    return resumed if resumed is not None else base.replace(**settings)


def train(config: str | os.PathLike | Mapping[str, Any] | TrainConfig | None = None, *,
          callbacks: Sequence[Callback] = (), **settings: Any) -> Path:
    """Train a UPRM model; returns the run directory, which
    ``UPRMModel.from_pretrained`` loads.

    ``settings`` are :class:`TrainConfig` fields (``data``, ``out``, ``tiny``,
    ``backbone``, ``init``, ``max_steps``, ``lr``, ...), overriding ``config`` (a YAML
    file, a mapping or a ``TrainConfig``). Launch the calling script with ``torchrun``
    or ``accelerate launch`` for several processes.
    """
    return Trainer(make_config(config, **settings), callbacks=callbacks).fit()
