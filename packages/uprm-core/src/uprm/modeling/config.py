"""``UPRMConfig``: everything needed to rebuild a UPRM model, as JSON.

HF-style: ``to_dict``/``from_dict``, ``to_json_string``, ``save_pretrained(dir)`` writes
``config.json``, ``from_pretrained(dir)`` reads it back. Defaults are the paper's (§4.2):
LoRA r = 16, α = 32, dropout 0.05 on the language model's q/v projections, α_z = 0.05,
8 frames, the trade-off router.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from uprm.utils import atomic_write_json, jsonable

__all__ = ["CONFIG_NAME", "TINY_BACKBONE", "LoRASettings", "UPRMConfig"]

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


@dataclass
class LoRASettings:
    """LoRA on the language model (peft). ``target_modules`` is a regex so that the
    vision towers' ``q_proj``/``v_proj`` are *not* wrapped."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = r".*language_model.*\.(q_proj|v_proj)"
    enabled: bool = True


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
            self.lora = LoRASettings(**self.lora)
        if self.router not in ("tradeoff", "basic"):
            raise ValueError(f"UPRMConfig.router must be 'tradeoff' or 'basic', got {self.router!r}")
        if self.experts is not None:
            if isinstance(self.experts, str):
                self.experts = [e.strip() for e in self.experts.split(",") if e.strip()]
            self.experts = sorted(dict.fromkeys(self.experts))
        if self.num_frames <= 0:
            raise ValueError(f"UPRMConfig.num_frames must be positive, got {self.num_frames}")
        if self.backbone is None and self.tiny_backbone is None:
            self.tiny_backbone = json.loads(json.dumps(TINY_BACKBONE))

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
    def from_dict(cls, data: dict[str, Any]) -> UPRMConfig:
        data = dict(data)
        data.pop("model_type", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown UPRMConfig field(s): {unknown}")
        return cls(**data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        atomic_write_json(path, json.loads(self.to_json_string()))
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> UPRMConfig:
        directory = Path(directory)
        path = directory / CONFIG_NAME if directory.is_dir() else directory
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no UPRM config.json here")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if data.get("model_type") != "uprm":
            raise ValueError(f"{path}: not a UPRM config (model_type={data.get('model_type')!r})")
        return cls.from_dict(data)
