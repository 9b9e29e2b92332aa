"""The training configuration: the paper's defaults, the tiny settings, YAML files.

:class:`TrainConfig` holds every setting of a run. Its defaults are the paper's (§4.2):
AdamW, learning rate 2e-5, warm-up ratio 0.03, LoRA r 16 / α 32 / dropout 0.05 on the
language model, effective batch 8, one epoch, α_z = 0.05. A run is configured by a YAML
(or JSON) file, by keyword arguments / command-line flags, or both — flags override the
file. Keys are the flag names with ``_`` or ``-`` (``max_steps`` or ``max-steps``);
relative paths are taken from the current directory, as on the command line.

The run directory keeps the resolved configuration (``train_config.json``: absolute
paths, the learning rate actually used, the experts resolved); ``--resume`` compares
the new configuration with it and refuses any difference except in the settings of
:data:`RESUMABLE_CHANGES`.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from uprm.errors import ConfigError
from uprm.moe.names import ROUTER_NAMES

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

_CHOICES: dict[str, tuple[str, ...]] = {
    "stage": ("pretune", "deepsvu"),
    "router": (*ROUTER_NAMES, None),
    "scheduler": ("cosine", "linear", "constant"),
    "mixed_precision": ("auto", "no", "bf16", "fp16"),
}
_POSITIVE = ("batch_size", "grad_accum", "save_every", "keep_last", "num_frames", "lora_r", "lora_alpha")
_NON_NEGATIVE = ("eval_every", "num_workers", "weight_decay", "max_grad_norm", "lora_dropout", "z_loss_alpha")
_PATHS = ("cache", "backbone", "init", "out")
_FINITE = ("lr", "epochs", "warmup_ratio", "weight_decay", "max_grad_norm", "lora_dropout", "z_loss_alpha")


@dataclass
class TrainConfig:
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
        backbone: a local Video-LLaVA directory or a hub id in the local HF cache.
        tiny: the tiny random backbone, trained with the tiny settings
            (:data:`TINY_LR`, :data:`TINY_TRAIN_MODULES`).
        init: start from this checkpoint's trainable weights (its experts and router).
        max_steps: optimizer steps (overrides ``epochs``).
        epochs: passes over the training data (may be fractional).
        lr: peak learning rate (``None``: 2e-5, or :data:`TINY_LR` with ``tiny``).
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

    data: list[str] = field(default_factory=list)
    out: str | None = None
    stage: str = "deepsvu"
    val: list[str] = field(default_factory=list)
    cache: str | None = None
    experts: list[str] | None = None
    expert_option: list[str] = field(default_factory=list)
    router: str | None = None
    backbone: str | None = None
    tiny: bool = False
    init: str | None = None
    max_steps: int | None = None
    epochs: float = 1.0
    lr: float | None = None
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str | None = None
    z_loss_alpha: float = 0.05
    num_frames: int = 8
    save_every: int = 500
    keep_last: int = 2
    eval_every: int = 0
    resume: bool = False
    seed: int = 0
    model_seed: int = 0
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    cpu: bool = False
    num_workers: int = 0
    progress: bool = True

    # ------------------------------------------------------------------ building
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """A config from a mapping (a YAML file's content, keyword arguments), every
        value type-checked; unknown keys are errors naming ``source``."""
        return cls().updated(data, source)

    def updated(self, data: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """A copy with the settings of ``data`` (checked as in :meth:`from_mapping`)."""
        values = asdict(self)
        values.update(check_values(data, source))
        return TrainConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ checks
    def validate(self) -> TrainConfig:
        """Check ranges and combinations; raise :class:`ConfigError` naming the field."""
        if not self.data:
            raise ConfigError("no training data: give --data FILE (one or more instruction JSON files)")
        if not self.out:
            raise ConfigError("no run directory: give --out DIR")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                named = ", ".join(c for c in choices if c is not None)
                raise ConfigError(f"{name} must be one of {named}; got {getattr(self, name)!r}")
        odd = [n for n in _FINITE if getattr(self, n) is not None and not math.isfinite(getattr(self, n))]
        if odd:  # a YAML .nan or .inf passes every comparison below
            raise ConfigError(f"{odd[0]} must be a finite number; got {getattr(self, odd[0])!r}")
        low = [n for n in _POSITIVE if getattr(self, n) < 1] + [n for n in _NON_NEGATIVE if getattr(self, n) < 0]
        if low:
            bound = "be at least 1" if low[0] in _POSITIVE else "not be negative"
            raise ConfigError(f"{low[0]} must {bound}; got {getattr(self, low[0])!r}")
        self._check_combinations()
        missing = [f for f in [*self.data, *self.val] if not Path(f).is_file()]
        if missing:
            raise ConfigError(f"{missing[0]}: no such instruction file")
        return self

    def _check_combinations(self) -> None:
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1; got {self.max_steps}")
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be positive; got {self.epochs}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"lr must be positive; got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}")
        if self.tiny and self.backbone:
            raise ConfigError("give either --tiny or --backbone, not both")
        if not (self.tiny or self.backbone or self.init):
            raise ConfigError("no model: give --backbone PATH (a Video-LLaVA directory), --tiny, or --init CHECKPOINT")
        if self.eval_every and not self.val:
            raise ConfigError("--eval-every needs validation data: give --val FILE")
        if self.experts is not None and not self.experts:
            raise ConfigError("experts is empty: name at least one expert (coarse is always added)")
        expert_options(self.expert_option)

    def resolved(self) -> TrainConfig:
        """Absolute paths, experts as a sorted list, the learning rate chosen (the
        paper's, or :data:`TINY_LR` for the tiny model)."""
        values = asdict(self)
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
        mine, theirs = asdict(self), asdict(saved)
        return [k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs[k]]


# ---------------------------------------------------------------------- type checks
def _normalise_key(key: Any) -> str:
    return str(key).strip().replace("-", "_")


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def _describe(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = type(None) in typing.get_args(tp)
    base = args[0] if optional and args else tp
    name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(base)
    if name is None:
        name = "a list of strings (or one comma-separated string)"
    return name + (" or null" if optional else "")


def _coerce(value: Any, tp: Any, comma_list: bool = False) -> Any:
    """``value`` as type ``tp``, or raise ``TypeError`` (``comma_list``: a string with
    commas is a list)."""
    args = typing.get_args(tp)
    if (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args:
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (str, os.PathLike)):
        return str(value)
    if typing.get_origin(tp) is list:
        if isinstance(value, (str, os.PathLike)):
            value = [v.strip() for v in str(value).split(",") if v.strip()] if comma_list else [str(value)]
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
            return [str(v) for v in value]
    raise TypeError


def check_values(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``data`` with keys normalised and values type-checked against :class:`TrainConfig`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a training config is a mapping of settings, got {type(data).__name__}")
    known = _field_types()
    out: dict[str, Any] = {}
    unknown = []
    for raw_key, value in data.items():
        key = _normalise_key(raw_key)
        if key not in known:
            unknown.append(str(raw_key))
            continue
        try:
            out[key] = _coerce(value, known[key], comma_list=key == "experts")
        except TypeError:
            raise ConfigError(
                f"{source}: field {key!r} must be {_describe(known[key])}, got {value!r} ({type(value).__name__})"
            ) from None
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {unknown}; known settings: {', '.join(sorted(known))}")
    return out


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
    """The settings of a YAML (or JSON) run file, type-checked; errors name the file."""
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError(f"{path}: reading a run file needs pyyaml: pip install 'uprm-core[train]'") from exc
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    try:
        data = yaml.safe_load(text) if path.suffix.lower() != ".json" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML/JSON ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    return check_values(data, str(path))
