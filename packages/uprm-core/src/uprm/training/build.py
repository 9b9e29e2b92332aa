"""The model a run trains: built fresh (tiny or a real backbone) or from ``--init``;
its frozen parts kept frozen, in eval mode and out of the optimizer.

Fresh, real backbone: the paper's setting — LoRA (r 16, α 32, dropout 0.05) on the
language model's linear layers; the experts' adapters, the projector (unless
``--freeze-projector``) and the router trained; the towers and every expert's perception
frozen. ``--tiny``: the tiny random
backbone with its whole language model trained (:data:`TINY_TRAIN_MODULES`, LoRA off),
because a frozen random language model cannot learn to read the question through
LoRA. ``--init DIR``: the checkpoint's model (experts, router, LoRA layout, trained
weights), with ``z_loss_alpha`` and ``num_frames`` of this run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from uprm.training.config import PAPER_LR, TINY_LR, TINY_TRAIN_MODULES, ConfigError, TrainConfig, expert_options

__all__ = ["ParameterReport", "build_training_model", "keep_frozen_in_eval", "parameter_report", "resolve_config"]


# ---------------------------------------------------------------------- configuration
def _with_coarse(names: list[str], installed: dict[str, Any]) -> list[str]:
    unknown = sorted(set(names) - set(installed))
    if unknown:
        raise ConfigError(f"experts {unknown} are not installed (installed: {', '.join(sorted(installed))}; "
                          "see `uprm experts`)")
    if not any(installed[n].granularity == "coarse" for n in names):
        names = [*names, "coarse"]
    return sorted(dict.fromkeys(names))


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with paths absolute, the learning rate chosen, and the experts, router
    and tiny-ness taken from ``--init``'s checkpoint or the installed experts."""
    from uprm.plugins.manager import available_experts

    cfg = config.validate().resolved()
    installed = available_experts()
    if cfg.init is None:
        experts = cfg.experts if cfg.experts is not None else sorted(installed)
        return cfg.replace(experts=_with_coarse(experts, installed), router=cfg.router or "tradeoff",
                           router_norm=bool(cfg.router_norm))
    saved = _init_config(cfg)
    have = sorted(saved.experts or [])
    if cfg.experts is not None and _with_coarse(cfg.experts, installed) != have:
        raise ConfigError(
            f"--experts {cfg.experts} differ from the experts of the --init checkpoint {cfg.init} ({have}); its "
            "trained weights belong to those experts: drop --experts (they come from the checkpoint) or train "
            "without --init"
        )
    if cfg.router is not None and cfg.router != saved.router:
        raise ConfigError(f"--router {cfg.router} differs from the --init checkpoint's router {saved.router!r} "
                          f"({cfg.init}); drop --router or train without --init")
    saved_norm = bool(saved.router_options.get("input_norm", False))
    if cfg.router_norm is not None and cfg.router_norm != saved_norm:
        raise ConfigError(f"--{'' if cfg.router_norm else 'no-'}router-norm differs from the --init checkpoint "
                          f"{cfg.init} (router input_norm={saved_norm}); drop it or train without --init")
    if cfg.tiny and not saved.is_tiny:
        raise ConfigError(f"--tiny, but the --init checkpoint {cfg.init} has the backbone {saved.backbone!r}")
    lr = config.lr if config.lr is not None else (TINY_LR if saved.is_tiny else PAPER_LR)
    return cfg.replace(experts=have, router=saved.router, router_norm=saved_norm, tiny=saved.is_tiny, lr=lr)


def _init_config(cfg: TrainConfig):
    from uprm.modeling.config import UPRMConfig

    try:
        return UPRMConfig.from_pretrained(cfg.init)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--init {cfg.init}: {exc}") from exc


def model_config(cfg: TrainConfig, dtype: str = "float32"):
    """The ``UPRMConfig`` of a fresh model for a resolved ``cfg``."""
    from uprm.modeling.config import LoRASettings, UPRMConfig

    common = {"experts": cfg.experts, "router": cfg.router, "z_loss_alpha": cfg.z_loss_alpha,
              "num_frames": cfg.num_frames, "seed": cfg.model_seed, "expert_options": expert_options(cfg.expert_option),
              "router_options": {"input_norm": True} if cfg.router_norm else {}}
    if cfg.tiny:
        return UPRMConfig.tiny(**common, lora=LoRASettings(enabled=False), train_modules=list(TINY_TRAIN_MODULES))
    targets = {"target_modules": cfg.lora_targets} if cfg.lora_targets else {}
    lora = LoRASettings(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, **targets)
    return UPRMConfig(**common, backbone=cfg.backbone, lora=lora, torch_dtype=dtype)


def build_training_model(cfg: TrainConfig, *, dtype: str = "float32") -> nn.Module:
    """The model to train for a resolved ``cfg`` (``dtype``: the frozen base's dtype
    for a real backbone; trainable parameters are always float32)."""
    from uprm.modeling import build_model, load_model

    if cfg.init is not None:
        overrides: dict[str, Any] = {"z_loss_alpha": cfg.z_loss_alpha, "num_frames": cfg.num_frames}
        if cfg.backbone is not None:
            overrides["backbone"] = cfg.backbone
        # expert options (e.g. weights that moved) are merged onto the checkpoint's; the
        # Accelerator moves the model to its device
        model = load_model(cfg.init, device="cpu", expert_options=expert_options(cfg.expert_option) or None,
                           overrides=overrides).model
        model.train()
    else:
        model = build_model(model_config(cfg, dtype))
    if not cfg.train_projector:  # --freeze-projector: this stage keeps the projector it starts with
        model.vlm.model.multi_modal_projector.requires_grad_(False)
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


# ---------------------------------------------------------------------- freezing
def keep_frozen_in_eval(model: nn.Module) -> list[str]:
    """Put every module whose parameters are all frozen into eval mode (dropout off,
    norms fixed), after ``model.train()``; returns their names. Modules holding a
    trainable parameter, and parameter-free modules inside them, stay in train mode."""
    frozen = []
    for name, module in model.named_modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params) and module.training:
            module.eval()
            frozen.append(name)
    return frozen


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Parameters that require grad, each once (tied weights counted once), in order."""
    seen, out = set(), []
    for name, param in model.named_parameters():
        if param.requires_grad and id(param) not in seen:
            seen.add(id(param))
            out.append((name, param))
    return out


@dataclass
class ParameterReport:
    trainable: int
    total: int
    groups: dict[str, int]

    def lines(self) -> list[str]:
        share = 100.0 * self.trainable / max(1, self.total)
        out = [f"trainable parameters: {self.trainable:,} of {self.total:,} ({share:.2f} %)"]
        width = max((len(g) for g in self.groups), default=0)
        out += [f"  {group:<{width}}  {count:>12,}" for group, count in self.groups.items()]
        return out


def _group(name: str) -> str:
    if "lora_" in name:
        return "LoRA (language model)"
    if "multi_modal_projector" in name:
        return "expert coarse (projector)"
    parts = name.split(".")
    if parts[0] == "block" and parts[1] == "router":
        return "router"
    if parts[0] == "block" and parts[1] == "experts":
        return f"expert {parts[2]}" + (" (projector)" if parts[2] == "coarse" else " (adapter)")
    if "language_model" in name or name.startswith("backbone.lm_head") or ".lm_head." in name:
        return "language model (trained in full)"
    return "backbone (other)"


def parameter_report(model: nn.Module) -> ParameterReport:
    """Trainable parameters counted, grouped by where they live."""
    groups: Counter[str] = Counter()
    for name, param in trainable_parameters(model):
        groups[_group(name)] += param.numel()
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return ParameterReport(sum(groups.values()), total, dict(sorted(groups.items())))
