"""The training configuration: the paper's defaults, the tiny settings, YAML files.

:class:`TrainConfig` holds every setting of a run. Its defaults are the paper's (§4.2):
AdamW, learning rate 2e-5, warm-up ratio 0.03, LoRA r 16 / α 32 / dropout 0.05 on the
language model, effective batch 8, one epoch, α_z = 0.05. A run is configured by a YAML
(or JSON) file, by keyword arguments / command-line flags, or both — flags override the
file. Keys are the flag names with ``_`` or ``-`` (``max_steps`` or ``max-steps``);
relative paths are taken from the current directory, as on the command line. It is a
:class:`uprm.settings.Settings`: each field's type and range are declared once, and a bad
value is a :class:`ConfigError` naming the file, the line of the key and the field.

The run directory keeps the resolved configuration (``train_config.json``: absolute
paths, the learning rate actually used, the experts resolved); ``--resume`` compares
the new configuration with it and refuses any difference except in the settings of
:data:`RESUMABLE_CHANGES`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from uprm.errors import ConfigError
from uprm.moe.names import ROUTER_NAMES
from uprm.settings import PathStr, Settings

__all__ = [
    "PAPER_LR",
    "RESUMABLE_CHANGES",
    "TINY_LR",
    "TINY_TRAIN_MODULES",
    "ConfigError",
    "TrainConfig",
    "expert_options",
    "load_config_file",
]

#: the paper's learning rate (AdamW, §4.2)
PAPER_LR = 2e-5

#: Learning rate of ``--tiny`` (measured: benchmarks/tiny_learning.py, docs/training.md §2).
#: The tiny backbone is random, so the whole tiny language model is trained
#: (:data:`TINY_TRAIN_MODULES`, LoRA off): LoRA on a frozen random language model does
#: not learn to answer each question in its own form (300 steps at 3e-4: no answer in
#: form). With warm-up 3 %, cosine decay, clipping at 1.0 and batch 8, on three synthetic
#: worlds of 40 videos: 1e-3 answers every training clip's identify and locate questions
#: in their form and correctly after 600 steps (coarse expert; also with all four
#: experts), loss 6.9 -> 0.08-0.11; 3e-4 reaches 57-86 % of identify answers in form
#: after 600 steps and 100 % after 1500 (loss 0.15). An earlier probe without this
#: schedule (shared/ENV.md) saw 1e-3 fail; here it is the faster of the two.
TINY_LR = 1e-3

#: backbone parameters ``--tiny`` trains in full: the tiny language model (embeddings,
#: every layer, final norm) and its output head
TINY_TRAIN_MODULES = [r"^model\.language_model\.", r"^lm_head\."]

#: settings that may differ when a run is resumed (they change neither the data order
#: nor the optimisation)
RESUMABLE_CHANGES = frozenset({"resume", "progress", "save_every", "keep_last", "eval_every", "num_workers", "val"})

_PATHS = ("cache", "backbone", "init", "out")


def _as_list(value: Any, comma: bool = False) -> Any:
    """One string (or path) is a one-item list, or with ``comma`` a comma list; a tuple a list."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        return [v.strip() for v in text.split(",") if v.strip()] if comma else [text]
    return list(value) if isinstance(value, tuple) else value


#: instruction files (or options): a list, or one string
Strings = Annotated[list[PathStr], BeforeValidator(_as_list)]
#: expert names: a list, or one comma-separated string
Names = Annotated[list[str], BeforeValidator(lambda v: _as_list(v, comma=True)), Field(min_length=1)]


class TrainConfig(Settings):
    """Every setting of a training run (see ``uprm train --help`` for each flag).

    Attributes:
        data: instruction JSON files to train on (one or more).
        out: the run directory.
        stage: ``pretune`` (stage 1, physical-world instructions) or ``deepsvu``
            (stage 2, identify / locate / attribute).
        val: instruction JSON files whose loss is evaluated every ``eval_every`` steps
            and at the end.
        cache: a feature cache (``uprm extract``); clips missing from it are extracted
            online once and written back. ``None``: every clip is extracted online.
        experts: expert names (``None``: the ``init`` checkpoint's, else every installed
            expert; a coarse expert is always added).
        expert_option: ``NAME.KEY=VALUE`` options of the experts (``pose.weights=yolo.pt``,
            ``background.checkpoint=sam_vit_h.pth``; VALUE read as JSON when it parses),
            as ``uprm extract --expert-option`` takes them, so the cache fits the model.
        router: ``tradeoff`` (UPRM) or ``basic`` (w/o PTR); ``None``: the ``init``
            checkpoint's, else ``tradeoff``.
        router_norm: a LayerNorm without parameters on the router's input (the coarse
            tokens ``h``), so that it routes by the direction of ``h`` and not its
            scale; a departure from eq.6 (docs/design.md). ``None``: the ``init``
            checkpoint's, else off.
        backbone: a local Video-LLaVA directory or a hub id in the local HF cache.
        tiny: the tiny random backbone, trained with the tiny settings
            (:data:`TINY_LR`, :data:`TINY_TRAIN_MODULES`).
        init: start from this checkpoint's trainable weights (its experts and router).
        train_projector: train the projector (the coarse expert's adapter) in this stage,
            as Video-LLaVA's recipe does (the default); ``False`` keeps it as it starts
            (docs/training.md §3).
        max_steps: optimizer steps (overrides ``epochs``).
        epochs: passes over the training data (may be fractional).
        lr: peak learning rate (``None``: 2e-5, or :data:`TINY_LR` with ``tiny``).
        block_lr: peak learning rate of the UPE block (the experts' adapters, the coarse
            projector and the router); ``None``: ``lr``. The post-LN adapters (eq.2–3)
            are scale-free after their input, so too high a rate inflates that input
            and starves what feeds it (benchmarks/keyed_ablation.md §3c).
        batch_size: the *effective* batch per optimizer step, over all processes and
            accumulation steps; each process's micro-batch is
            ``batch_size / (grad_accum × processes)``.
        grad_accum: accumulation steps per optimizer step.
        warmup_ratio, scheduler: linear warm-up over this share of the steps, then
            cosine (or linear, or constant) decay.
        weight_decay, max_grad_norm: AdamW's decoupled weight decay (not on biases and
            norms); gradient clipping (0 = off; the norm is logged anyway).
        lora_r, lora_alpha, lora_dropout: LoRA on the language model (real backbone).
        lora_targets: which layers get LoRA: a preset (``all-linear``, ``q_proj,v_proj``)
            or a regex over module names; ``None``: the model's default (all-linear).
        z_loss_alpha: α_z of ``L = L_ce + α_z·L_z``.
        num_frames: frames per video clip (images are one frame).
        save_every, keep_last: checkpoint every N steps (and at the end); keep the last K.
        eval_every: validation loss every N steps (0: at the end only).
        resume: continue the run in ``out`` from its last checkpoint.
        seed: data order, dropout and every other training randomness.
        model_seed: the model's random initialisation (the tiny backbone, new
            adapters); keep it equal to ``uprm extract --seed`` so the cache fits.
        mixed_precision: ``auto`` (bf16 on a GPU that supports it, else off), ``no``,
            ``bf16``, ``fp16``.
        gradient_checkpointing: recompute the language model's activations in the
            backward pass (less memory, about a third more compute).
        cpu: train on the CPU even when a GPU is there.
        num_workers: DataLoader worker processes.
        progress: show a progress bar.
    """

    model_config = {"allow_inf_nan": False}  # a YAML .nan or .inf would pass every range check

    data: Strings = []
    out: PathStr | None = None
    stage: Literal["pretune", "deepsvu"] = "deepsvu"
    val: Strings = []
    cache: PathStr | None = None
    experts: Names | None = None
    expert_option: Strings = []
    router: Literal[ROUTER_NAMES] | None = None  # type: ignore[valid-type]
    router_norm: bool | None = None
    backbone: PathStr | None = None
    tiny: bool = False
    init: PathStr | None = None
    train_projector: bool = True
    max_steps: Annotated[int | None, Field(ge=1)] = None
    epochs: Annotated[float, Field(gt=0)] = 1.0
    lr: Annotated[float | None, Field(gt=0)] = None
    block_lr: Annotated[float | None, Field(gt=0)] = None
    batch_size: Annotated[int, Field(ge=1)] = 8
    grad_accum: Annotated[int, Field(ge=1)] = 1
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    max_grad_norm: Annotated[float, Field(ge=0)] = 1.0
    lora_r: Annotated[int, Field(ge=1)] = 16
    lora_alpha: Annotated[int, Field(ge=1)] = 32
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    lora_targets: str | None = None
    z_loss_alpha: Annotated[float, Field(ge=0)] = 0.05
    num_frames: Annotated[int, Field(ge=1)] = 8
    save_every: Annotated[int, Field(ge=1)] = 500
    keep_last: Annotated[int, Field(ge=1)] = 2
    eval_every: Annotated[int, Field(ge=0)] = 0
    resume: bool = False
    seed: int = 0
    model_seed: int = 0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    cpu: bool = False
    num_workers: Annotated[int, Field(ge=0)] = 0
    progress: bool = True

    @field_validator("expert_option")
    @classmethod
    def _options_parse(cls, value: list[str]) -> list[str]:
        expert_options(value)
        return value

    # ------------------------------------------------------------------ building
    @classmethod
    def load(cls, data: Any, source: str | os.PathLike | None = None,
             lines: Mapping[str, int] | None = None) -> TrainConfig:
        """As :meth:`Settings.load`, keys written with ``-`` or ``_`` (``max-steps``)."""
        if isinstance(data, Mapping):
            data = {_key(k): v for k, v in data.items()}
            lines = {_key(k): n for k, n in (lines or {}).items()}
        return super().load(data, source, lines)

    def given(self) -> dict[str, Any]:
        """The settings given explicitly (by the file or the arguments), not defaulted."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    # ------------------------------------------------------------------ checks
    def validate(self) -> TrainConfig:  # type: ignore[override]
        """Check that the run can start: data, a run directory and a model given, the
        flags that exclude or need each other; raise :class:`ConfigError` naming them."""
        if not self.data:
            raise ConfigError("no training data: give --data FILE (one or more instruction JSON files)")
        if not self.out:
            raise ConfigError("no run directory: give --out DIR")
        if self.tiny and self.backbone:
            raise ConfigError("give either --tiny or --backbone, not both")
        if not (self.tiny or self.backbone or self.init):
            raise ConfigError("no model: give --backbone PATH (a Video-LLaVA directory), --tiny, or --init CHECKPOINT")
        if self.eval_every and not self.val:
            raise ConfigError("--eval-every needs validation data: give --val FILE")
        missing = [f for f in [*self.data, *self.val] if not Path(f).is_file()]
        if missing:
            raise ConfigError(f"{missing[0]}: no such instruction file")
        return self

    def resolved(self) -> TrainConfig:
        """Absolute paths, experts as a sorted list, the learning rate chosen (the
        paper's, or :data:`TINY_LR` for the tiny model)."""
        values = self.model_dump()
        for name in _PATHS:
            if values[name] and (name != "backbone" or Path(values[name]).expanduser().exists()):
                values[name] = str(Path(values[name]).expanduser().resolve())
        values["data"] = [str(Path(f).resolve()) for f in self.data]
        values["val"] = [str(Path(f).resolve()) for f in self.val]
        if self.experts is not None:
            values["experts"] = sorted(dict.fromkeys(self.experts))
        if values["lr"] is None:
            values["lr"] = TINY_LR if self.tiny else PAPER_LR
        return TrainConfig(**values)

    def differences(self, saved: TrainConfig) -> list[str]:
        """Settings that differ from ``saved`` and may not change on resume."""
        mine, theirs = self.model_dump(), saved.model_dump()
        return [k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs[k]]


def _key(key: Any) -> str:
    return str(key).strip().replace("-", "_")


_OPTION = re.compile(r"\s*([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)", flags=re.S)


def expert_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["pose.max_people=4", "background.variant=vit_h"]`` → ``{"pose": {"max_people":
    4}, "background": {"variant": "vit_h"}}`` (values read as JSON when they parse)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        m = _OPTION.fullmatch(item)
        if m is None:
            raise ConfigError(f"expert option {item!r} is not NAME.KEY=VALUE (e.g. pose.max_people=4)")
        raw = m.group(3).strip()
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings a YAML (or JSON) run file gives, checked; errors name the file, the
    line and the field."""
    return TrainConfig.from_file(path).given()
