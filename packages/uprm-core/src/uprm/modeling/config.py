"""``UPRMConfig``: everything needed to rebuild a UPRM model, as JSON.

HF-style: ``to_dict``/``from_dict``, ``to_json_string``, ``save_pretrained(dir)`` writes
``config.json``, ``from_pretrained(dir)`` reads it back. It is a
:class:`uprm.settings.Settings`: every value is checked where it enters — the
constructor, :meth:`UPRMConfig.replace` (what ``from_pretrained`` overrides go through),
:meth:`UPRMConfig.from_dict` and an assignment — and a bad one is a
:class:`~uprm.errors.ConfigError` naming the field. Keys a newer version wrote are
dropped with a warning when a file is read (as peft does). Defaults are the paper's
(§4.2): LoRA r = 16, α = 32, dropout 0.05 on every linear layer of the language model
(as Video-LLaVA's LoRA training), α_z = 0.05, 8 frames, the trade-off router.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from uprm.errors import CheckpointError, ConfigError
from uprm.moe.names import ROUTER_NAMES
from uprm.settings import PathStr, Settings, describe_validation_error
from uprm.utils import atomic_write_json

__all__ = ["CONFIG_NAME", "LORA_TARGET_PRESETS", "TINY_BACKBONE", "LoRASettings", "UPRMConfig"]

CONFIG_NAME = "config.json"

#: dimensions of the tiny Video-LLaVA (tests, demo, quick experiments)
TINY_BACKBONE: dict[str, Any] = {
    "vision": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
    "text": {
        "hidden_size": 64,
        "intermediate_size": 172,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
    },
    "tokenizer_vocab_size": 1024,
}


#: ``LoRASettings.target_modules`` presets, as regexes over the backbone's module names.
#: "all-linear" is what Video-LLaVA's own LoRA training wraps (every linear layer of the
#: language model, the output head excluded); the vision towers are never wrapped.
LORA_TARGET_PRESETS: dict[str, str] = {
    "all-linear": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
    "q_proj,v_proj": r".*language_model.*\.(q_proj|v_proj)",
}


def _as_list(value: Any, comma: bool = False) -> Any:
    """A tuple is a list; with ``comma``, a string is a comma list (never its letters)."""
    if comma and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) if isinstance(value, tuple) else value


def _regex(rx: str) -> str:
    try:
        re.compile(rx)
    except re.error as exc:
        raise ValueError(f"{rx!r} is not a valid regex ({exc})") from None
    return rx


Name = Annotated[str, Field(min_length=1)]
Regexes = Annotated[list[str], BeforeValidator(_as_list)]


class LoRASettings(Settings):
    """LoRA on the language model (peft).

    ``target_modules``: a preset of :data:`LORA_TARGET_PRESETS` (``"all-linear"``, the
    default, as Video-LLaVA's LoRA training; ``"q_proj,v_proj"``), a regex over module
    names, or a list of module names (``["q_proj", "v_proj"]``), which is restricted to
    the language model so that the vision towers' projections are never wrapped."""

    r: Annotated[int, Field(gt=0)] = 16
    alpha: Annotated[int, Field(gt=0)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    target_modules: str | list[str] = "all-linear"
    enabled: bool = True

    @field_validator("target_modules", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        value = _as_list(value)
        if not ((isinstance(value, str) and value.strip()) or (
                isinstance(value, list) and value and all(isinstance(t, str) and t for t in value))):
            raise ValueError(f"expected a preset, a regex or a list of module names, got {value!r}")
        _regex(_targets_regex(value))
        return value

    def targets_regex(self) -> str:
        """The regex peft is given (``target_modules`` as a string is matched in full)."""
        return _targets_regex(self.target_modules)


def _targets_regex(targets: str | list[str]) -> str:
    if isinstance(targets, list):
        return rf".*language_model.*\.({'|'.join(re.escape(t) for t in targets)})"
    return LORA_TARGET_PRESETS.get(targets.replace(" ", ""), targets)


class UPRMConfig(Settings):
    """Configuration of a UPRM model.

    Attributes:
        experts: expert names (a list, or one comma-separated string); ``None`` = every
            installed (enabled) expert, resolved and recorded when the model is built.
            The router's column order is ``expert_names`` (fine sorted, coarse last),
            recorded at build time.
        router: ``"tradeoff"`` (UPRM, eq.6 + z-loss) or ``"basic"`` (w/o PTR).
        router_options: keyword options of the router (``ffn_hidden``, ``dropout``,
            ``input_norm``: a parameter-free LayerNorm on its input, off by default).
        z_loss_alpha: α of ``L = L_ce + α·L_z`` (paper: 0.05).
        lora: LoRA settings for the language model.
        num_frames: frames sampled per clip (Video-LLaVA: 8).
        backbone: local directory of a Video-LLaVA checkpoint in the transformers layout
            (e.g. a download of ``LanguageBind/Video-LLaVA-7B-hf``); ``None`` = the tiny
            random backbone described by ``tiny_backbone`` and built from ``seed``.
        tiny_backbone: dimensions of the tiny backbone (only when ``backbone`` is None).
        seed: seed of every random initialisation (tiny backbone, random perception,
            adapters), so a tiny model is the same model on every machine.
        expert_options: per-expert constructor options, ``{"pose": {"weights": "..."}}``.
        train_modules: regexes of backbone parameter names trained in full, besides LoRA
            and the projector (saved in the checkpoint). ``build_model`` makes trainable
            the LoRA layers, the projector (the coarse expert's adapter, trained in full
            as Video-LLaVA's recipe does), the fine experts' adapters, the router and
            these; a real backbone needs none (``[]``). The tiny backbone trains its
            output head and final norm too, because a random, frozen ``lm_head`` cannot
            express a confident prediction (its logits stay within about ±1.5 for any
            hidden state), so nothing could be learned through LoRA. Which of these a
            training stage trains is its choice (``uprm train --freeze-projector``;
            docs/training.md §3).
        torch_dtype: dtype of the backbone (``"float32"``, ``"bfloat16"``, ``"float16"``).
        max_new_tokens: default generation length.
        expert_names / versions / distributions: recorded by ``build_model`` and
            ``save_pretrained`` (router order; core and plugin versions; which
            distribution provides each expert).
    """

    # build_model records what it resolved on its own copy (HF configs are mutable too)
    model_config = ConfigDict(frozen=False, validate_assignment=True)

    experts: Annotated[list[Name], BeforeValidator(lambda v: _as_list(v, comma=True))] | None = None
    router: Literal[ROUTER_NAMES] = "tradeoff"  # type: ignore[valid-type]
    router_options: dict[str, Any] = {}
    z_loss_alpha: Annotated[float, Field(ge=0)] = 0.05
    lora: LoRASettings = LoRASettings()
    num_frames: Annotated[int, Field(gt=0)] = 8
    backbone: Annotated[PathStr, Field(min_length=1)] | None = None
    tiny_backbone: dict[str, Any] | None = None
    seed: int = 0
    expert_options: dict[str, dict[str, Any]] = {}
    train_modules: Regexes = []
    torch_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_new_tokens: Annotated[int, Field(gt=0)] = 48
    expert_names: list[str] | None = None
    versions: dict[str, str] = {}
    distributions: dict[str, str] = {}

    @field_validator("experts")
    @classmethod
    def _sorted(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(dict.fromkeys(value))

    @field_validator("train_modules")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return [_regex(rx) for rx in value]

    @field_validator("router_options", "expert_options")
    @classmethod
    def _own_copy(cls, value: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(value)  # never shared with the caller or another config

    @field_validator("tiny_backbone")
    @classmethod
    def _tiny_by_default(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None and "backbone" in info.data and info.data["backbone"] is None:
            value = TINY_BACKBONE
        return copy.deepcopy(value)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise self.error(describe_validation_error(exc)) from None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def tiny(cls, **overrides: Any) -> UPRMConfig:
        """A randomly initialised small Video-LLaVA (2-layer 64-d CLIP tower at 32×32 with
        8-pixel patches → 17 tokens a frame; 2-layer 64-d Llama; a tokenizer built
        offline) with the same code paths as the real one; builds in about a second.
        ``tiny(experts=["coarse", "pose"], router="basic", num_frames=4, ...)``."""
        tiny = copy.deepcopy(TINY_BACKBONE)
        for key in ("vision", "text"):
            tiny[key].update(overrides.pop(f"{key}_overrides", {}) or {})
        overrides.setdefault("tiny_backbone", tiny)
        overrides.setdefault("lora", LoRASettings(r=8, alpha=16))
        overrides.setdefault("train_modules", [r"^lm_head\.", r"language_model\.norm\."])
        overrides["backbone"] = None
        return cls(**overrides)

    @property
    def is_tiny(self) -> bool:
        return self.backbone is None

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "model_type": "uprm"}

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True, source: str | os.PathLike | None = None) -> UPRMConfig:
        """A config from its dict. An unknown key is a :class:`~uprm.errors.ConfigError`
        with ``strict``; without (reading a file a newer version may have written), it is
        dropped with a warning."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "model_type"}
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown and not strict:
                where = f"{source}: " if source else ""
                warnings.warn(f"{where}ignoring UPRMConfig field(s) {unknown} unknown to this version of uprm-core",
                              UserWarning, stacklevel=3)
                data = {k: v for k, v in data.items() if k not in unknown}
        return cls.load(data, source)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        atomic_write_json(path, json.loads(self.to_json_string()))
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> UPRMConfig:
        """Read ``config.json`` (of a checkpoint directory, or the file itself). A missing
        or malformed file is a :class:`~uprm.errors.CheckpointError` naming it."""
        directory = Path(directory)
        path = directory / CONFIG_NAME if directory.is_dir() else directory
        if not path.is_file():
            raise CheckpointError(f"{path}: no UPRM config.json here (not a checkpoint saved by save_pretrained)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if not isinstance(data, dict) or data.get("model_type") != "uprm":
            kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f"{path}: not a UPRM config (model_type={kind!r})")
        try:
            return cls.from_dict(data, strict=False, source=path)
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
