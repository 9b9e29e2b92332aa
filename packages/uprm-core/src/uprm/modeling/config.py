"""``UPRMConfig``: everything needed to rebuild a UPRM model, as JSON.

HF-style: ``to_dict``/``from_dict``, ``to_json_string``, ``save_pretrained(dir)`` writes
``config.json``, ``from_pretrained(dir)`` reads it back. Every value is checked where it
enters — the constructor, :meth:`UPRMConfig.replace` (what ``from_pretrained`` overrides
go through) and :meth:`UPRMConfig.from_dict` — and a bad one is a
:class:`~uprm.errors.ConfigError` naming the field. Keys a newer version wrote are
dropped with a warning when a file is read (as peft does). Defaults are the paper's
(§4.2): LoRA r = 16, α = 32, dropout 0.05 on every linear layer of the language model
(as Video-LLaVA's LoRA training), α_z = 0.05, 8 frames, the trade-off router.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from uprm.errors import CheckpointError, ConfigError
from uprm.moe.names import ROUTER_NAMES
from uprm.utils import atomic_write_json, jsonable

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


@dataclass
class LoRASettings:
    """LoRA on the language model (peft).

    ``target_modules``: a preset of :data:`LORA_TARGET_PRESETS` (``"all-linear"``, the
    default, as Video-LLaVA's LoRA training; ``"q_proj,v_proj"``), a regex over module
    names, or a list of module names (``["q_proj", "v_proj"]``), which is restricted to
    the language model so that the vision towers' projections are never wrapped."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("r", "alpha"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) > 0, f"lora.{name}",
                   "a positive int", getattr(self, name))
        _check(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0, "lora.dropout",
               "a number in [0, 1)", self.dropout)
        _check(isinstance(self.enabled, bool), "lora.enabled", "true or false", self.enabled)
        targets = self.target_modules
        ok = (isinstance(targets, str) and targets.strip()) or (
            isinstance(targets, (list, tuple)) and targets and all(isinstance(t, str) and t for t in targets)
        )
        _check(bool(ok), "lora.target_modules", "a preset, a regex or a list of module names", targets)
        if isinstance(targets, tuple):
            self.target_modules = list(targets)
        try:
            re.compile(self.targets_regex())
        except re.error as exc:
            raise ConfigError(f"UPRMConfig.lora.target_modules: {targets!r} is not a valid regex ({exc})") from None

    def targets_regex(self) -> str:
        """The regex peft is given (``target_modules`` as a string is matched in full)."""
        targets = self.target_modules
        if isinstance(targets, list):
            return rf".*language_model.*\.({'|'.join(re.escape(t) for t in targets)})"
        return LORA_TARGET_PRESETS.get(targets.replace(" ", ""), targets)


def _check(ok: bool, name: str, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"UPRMConfig.{name} must be {expected}, got {value!r}")


@dataclass
class UPRMConfig:
    """Configuration of a UPRM model.

    Attributes:
        experts: expert names; ``None`` = every installed (enabled) expert, resolved and
            recorded when the model is built. The router's column order is
            ``expert_names`` (fine sorted, coarse last), recorded at build time.
        router: ``"tradeoff"`` (UPRM, eq.6 + z-loss) or ``"basic"`` (w/o PTR).
        router_options: keyword options of the router (``ffn_hidden``, ``dropout``).
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
        train_modules: regexes of backbone parameter names trained in full besides LoRA
            (saved in the checkpoint). The paper trains LoRA only (``[]``); the tiny
            backbone trains its output head and final norm too, because a random, frozen
            ``lm_head`` cannot express a confident prediction (its logits stay within
            about ±1.5 for any hidden state), so nothing could be learned through LoRA.
        torch_dtype: dtype of the backbone (``"float32"``, ``"bfloat16"``, ``"float16"``).
        max_new_tokens: default generation length.
        expert_names / versions / distributions: recorded by ``build_model`` and
            ``save_pretrained`` (router order; core and plugin versions; which
            distribution provides each expert).
    """

    experts: list[str] | None = None
    router: str = "tradeoff"
    router_options: dict[str, Any] = field(default_factory=dict)
    z_loss_alpha: float = 0.05
    lora: LoRASettings = field(default_factory=LoRASettings)
    num_frames: int = 8
    backbone: str | None = None
    tiny_backbone: dict[str, Any] | None = None
    seed: int = 0
    expert_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_modules: list[str] = field(default_factory=list)
    torch_dtype: str = "float32"
    max_new_tokens: int = 48
    expert_names: list[str] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            unknown = sorted(set(self.lora) - {f.name for f in fields(LoRASettings)})
            _check(not unknown, "lora", f"an object with keys {[f.name for f in fields(LoRASettings)]}", self.lora)
            self.lora = LoRASettings(**self.lora)
        _check(isinstance(self.lora, LoRASettings), "lora", "LoRA settings", self.lora)
        _check(self.router in ROUTER_NAMES, "router", f"one of {list(ROUTER_NAMES)}", self.router)
        if self.experts is not None:
            if isinstance(self.experts, str):
                self.experts = [e.strip() for e in self.experts.split(",") if e.strip()]
            _check(isinstance(self.experts, (list, tuple)) and all(isinstance(e, str) and e for e in self.experts),
                   "experts", "a list of expert names (or a comma-separated string)", self.experts)
            self.experts = sorted(dict.fromkeys(self.experts))
        self._check_scalars()
        self._check_mappings()
        if self.backbone is None and self.tiny_backbone is None:
            self.tiny_backbone = copy.deepcopy(TINY_BACKBONE)

    def _check_scalars(self) -> None:
        _check(_is_int(self.num_frames) and self.num_frames > 0, "num_frames", "a positive int", self.num_frames)
        _check(_is_int(self.seed), "seed", "an int", self.seed)
        _check(_is_int(self.max_new_tokens) and self.max_new_tokens > 0, "max_new_tokens", "a positive int",
               self.max_new_tokens)
        _check(isinstance(self.z_loss_alpha, (int, float)) and not isinstance(self.z_loss_alpha, bool)
               and self.z_loss_alpha >= 0, "z_loss_alpha", "a number >= 0", self.z_loss_alpha)
        _check(self.backbone is None or (isinstance(self.backbone, str) and self.backbone.strip()), "backbone",
               "a local directory or a hub id (or null for the tiny backbone)", self.backbone)
        _check(self.torch_dtype in ("float32", "bfloat16", "float16"), "torch_dtype",
               "one of float32, bfloat16, float16", self.torch_dtype)

    def _check_mappings(self) -> None:
        _check(isinstance(self.router_options, dict), "router_options", "an object", self.router_options)
        _check(isinstance(self.expert_options, dict)
               and all(isinstance(k, str) and isinstance(v, dict) for k, v in self.expert_options.items()),
               "expert_options", "an object of {expert: {option: value}}", self.expert_options)
        _check(isinstance(self.train_modules, (list, tuple)) and all(isinstance(r, str) for r in self.train_modules),
               "train_modules", "a list of regexes", self.train_modules)
        self.train_modules = list(self.train_modules)
        for rx in self.train_modules:
            try:
                re.compile(rx)
            except re.error as exc:
                raise ConfigError(f"UPRMConfig.train_modules: {rx!r} is not a valid regex ({exc})") from None
        _check(self.tiny_backbone is None or isinstance(self.tiny_backbone, dict), "tiny_backbone", "an object",
               self.tiny_backbone)
        for name in ("expert_names",):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)), name,
                   "a list of names", value)
        for name in ("versions", "distributions"):
            _check(isinstance(getattr(self, name), dict), name, "an object", getattr(self, name))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def tiny(cls, **overrides: Any) -> UPRMConfig:
        """A randomly initialised small Video-LLaVA (2-layer 64-d CLIP tower at 32×32 with
        8-pixel patches → 17 tokens a frame; 2-layer 64-d Llama; a tokenizer built
        offline) with the same code paths as the real one; builds in about a second.
        ``tiny(experts=["coarse", "pose"], router="basic", num_frames=4, ...)``."""
        tiny = json.loads(json.dumps(TINY_BACKBONE))
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
        d = asdict(self)
        d["model_type"] = "uprm"
        return jsonable(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True, source: str | None = None) -> UPRMConfig:
        """A config from its dict. An unknown key is a :class:`~uprm.errors.ConfigError`
        with ``strict``; without (reading a file a newer version may have written), it is
        dropped with a warning."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source or 'UPRMConfig'}: a config is a JSON object, got {type(data).__name__}")
        data = dict(data)
        data.pop("model_type", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            where = f"{source}: " if source else ""
            if strict:
                raise ConfigError(f"{where}unknown UPRMConfig field(s) {unknown}; known: {sorted(known)}")
            warnings.warn(f"{where}ignoring UPRMConfig field(s) {unknown} unknown to this version of uprm-core",
                          UserWarning, stacklevel=3)
            for key in unknown:
                del data[key]
        return cls(**data)

    def replace(self, **overrides: Any) -> UPRMConfig:
        """A new config with ``overrides`` applied and checked exactly as the constructor
        checks them (``experts="coarse,pose"`` is two names, a wrong type an error
        naming the field). The original is not changed."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown UPRMConfig field(s) {unknown}; known: {sorted(known)}")
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        data.update(overrides)
        return type(self)(**data)

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
            return cls.from_dict(data, strict=False, source=str(path))
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
