"""The Unified Physical-world Enhanced MoE (UPE) block (paper §3.1–3.2).

The block holds one coarse expert and any number of fine experts, runs each on its
features, checks that each brings its tokens onto the coarse grid, and mixes them with
a router (:class:`~uprm.moe.router.TradeoffRouter` for UPRM, the basic one for the
"w/o PTR" ablation). The expert order — fine experts sorted by name, the coarse expert
last — is the router's column order and is recorded in :attr:`UPEBlock.expert_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from uprm.errors import ExpertOutputError
from uprm.experts.base import Expert
from uprm.experts.faults import expert_call, expert_origin
from uprm.moe.losses import tradeoff_z_loss
from uprm.moe.router import make_router
from uprm.types import VideoClip

__all__ = ["UPEBlock", "UPEOutput", "expert_order"]

Features = Mapping[str, torch.Tensor]


@dataclass
class UPEOutput:
    """What the UPE block returns.

    Attributes:
        z: the mixed visual tokens ``[B, T, D]`` that go to the LLM.
        router_logits: ``[B, T, N + 1]``, columns in :attr:`expert_names` order.
        z_loss: eq.7 over ``router_logits`` (masked to real tokens); ``None`` for the
            basic router, which trains without it.
        expert_weights: the weight each expert's output got, per token,
            ``[B, T, N + 1]`` (trade-off router: ``R_i`` and ``1 − G``; basic: ``p``),
            for the paper's Fig. 5 analysis.
        expert_names: the column order: fine experts sorted by name, coarse last.
        coarse_tokens: the coarse expert's output ``[B, T, D]`` (the router's input).
    """

    z: torch.Tensor
    router_logits: torch.Tensor
    z_loss: torch.Tensor | None
    expert_weights: torch.Tensor
    expert_names: tuple[str, ...]
    coarse_tokens: torch.Tensor


def expert_order(names_and_granularity: Mapping[str, str]) -> list[str]:
    """The router's column order: fine experts sorted by name, then the coarse one."""
    coarse = [n for n, g in names_and_granularity.items() if g == "coarse"]
    fine = sorted(n for n, g in names_and_granularity.items() if g != "coarse")
    if len(coarse) != 1:
        raise ValueError(
            f"a UPE block needs exactly one coarse expert, got {len(coarse)}: {sorted(coarse) or 'none'} "
            f"(experts: {sorted(names_and_granularity)})"
        )
    return fine + coarse


class UPEBlock(nn.Module):
    """Coarse-to-fine experts mixed by a router.

    Args:
        experts: the expert modules (one coarse, any number of fine).
        router: ``"tradeoff"`` (UPRM, eq.6 + eq.7) or ``"basic"`` (w/o PTR).
        router_options: extra keyword arguments of the router (``ffn_hidden``, ``dropout``,
            ``input_norm``).

    Shapes:
        forward(features): ``features[name]`` is the collated feature dict of expert
        ``name``; returns :class:`UPEOutput` with ``z [B, T, D]``.
    """

    def __init__(
        self,
        experts: Sequence[Expert] | Mapping[str, Expert],
        router: str = "tradeoff",
        router_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        modules = list(experts.values()) if isinstance(experts, Mapping) else list(experts)
        by_name: dict[str, Expert] = {}
        for expert in modules:
            if not isinstance(expert, Expert):
                raise TypeError(f"{expert!r} is not an uprm.Expert")
            if expert.name in by_name:
                raise ValueError(f"expert {expert.name!r} appears twice in the block")
            by_name[expert.name] = expert
        order = expert_order({n: e.granularity for n, e in by_name.items()})
        self.expert_names: tuple[str, ...] = tuple(order)
        self.coarse_name = order[-1]
        self.fine_names: tuple[str, ...] = tuple(order[:-1])
        self.experts = nn.ModuleDict({name: by_name[name] for name in order})
        ctx = by_name[self.coarse_name].ctx
        self.ctx = ctx
        self.router_kind = router
        self.router = make_router(router, ctx.hidden_size, len(self.fine_names), **dict(router_options or {}))

    def _expert(self, name: str) -> Expert:
        """The block's expert called ``name``."""
        return cast(Expert, self.experts[name])

    # ------------------------------------------------------------------ perception
    def extract(self, clip: VideoClip) -> dict[str, dict[str, torch.Tensor]]:
        """Every expert's frozen perception of one clip. An expert that raises is an
        ``uprm.errors.ExpertError`` naming it, its distribution and the clip."""
        out = {}
        for name in self.expert_names:
            expert = self._expert(name)
            with expert_call(expert, "extract", f"clip {clip.video_id!r}"):
                out[name] = expert.extract(clip)
        return out

    def collate(self, items: Sequence[Mapping[str, Features]]) -> dict[str, dict[str, torch.Tensor]]:
        """Batch per-clip feature dicts expert by expert."""
        out = {}
        for name in self.expert_names:
            missing = [i for i, item in enumerate(items) if name not in item]
            if missing:
                raise KeyError(f"features of expert {name!r} are missing for batch item(s) {missing}")
            out[name] = self._expert(name).collate([item[name] for item in items])
        return out

    # ------------------------------------------------------------------ forward
    def forward(self, features: Mapping[str, Features], token_mask: torch.Tensor | None = None) -> UPEOutput:
        """Run the experts and the router.

        Shapes:
            features: ``{expert name: collated features}``
            token_mask: bool ``[B, T]``, ``True`` = a real video token (for the z-loss)
        """
        for name in self.expert_names:
            if name not in features:
                raise KeyError(f"no features for expert {name!r} (got {sorted(features)})")
        coarse = self._expert(self.coarse_name)
        with expert_call(coarse, "forward"):
            h = coarse(_to_device(features[self.coarse_name], coarse.device), None)
        self._check_coarse(h)
        fine_outputs = []
        for name in self.fine_names:
            expert = self._expert(name)
            with expert_call(expert, "forward"):
                out = expert(_to_device(features[name], expert.device), h)
            self._check_fine(expert, out, h)
            fine_outputs.append(out)
        z, logits = self.router(h, fine_outputs, h)
        weights = self.router.mixing_weights(logits)
        z_loss = tradeoff_z_loss(logits, token_mask) if self.router.uses_z_loss else None
        return UPEOutput(
            z=z,
            router_logits=logits,
            z_loss=z_loss,
            expert_weights=weights,
            expert_names=self.expert_names,
            coarse_tokens=h,
        )

    def _check_coarse(self, h: Any) -> None:
        tpf, d = self.ctx.tokens_per_frame, self.ctx.hidden_size
        if not isinstance(h, torch.Tensor) or h.dim() != 3 or h.shape[-1] != d or h.shape[1] % tpf:
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            origin = expert_origin(self._expert(self.coarse_name))
            raise ExpertOutputError(f"coarse {origin} returned {shape}; expected [B, F x {tpf}, {d}]",
                                    expert=self.coarse_name, origin=origin, stage="output")

    @staticmethod
    def _check_fine(expert: Expert, out: Any, h: torch.Tensor) -> None:
        problem = None
        if not isinstance(out, torch.Tensor):
            problem = f"returned {type(out).__name__}, not a tensor [B, T, D]"
        elif out.shape != h.shape:
            problem = f"returned shape {tuple(out.shape)}; the coarse token grid is {tuple(h.shape)} [B, T, D]"
        elif out.dtype != h.dtype:
            problem = f"returned dtype {out.dtype}; the coarse tokens are {h.dtype}"
        elif out.device != h.device:
            problem = f"returned tokens on {out.device}; the coarse tokens are on {h.device}"
        if problem is not None:
            origin = expert_origin(expert)
            raise ExpertOutputError(f"{origin} {problem}", expert=expert.name, origin=origin, stage="output")

    # ------------------------------------------------------------------ state
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Adapters and router, without any expert's frozen perception:
        keys ``experts.<name>.<...>`` and ``router.<...>``."""
        state = {f"router.{k}": v for k, v in self.router.state_dict().items()}
        for name in self.expert_names:
            state.update({f"experts.{name}.{k}": v for k, v in self._expert(name).trainable_state_dict().items()})
        return state

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load what :meth:`trainable_state_dict` wrote; a missing or unexpected key is an
        error naming the expert."""
        router = {k[len("router.") :]: v for k, v in state.items() if k.startswith("router.")}
        columns = router.get(f"ffn.{len(self.router.ffn) - 1}.bias")
        if columns is not None and columns.shape[0] != self.router.num_experts:
            raise ValueError(
                f"the router was trained for {columns.shape[0]} expert columns, this block has "
                f"{self.router.num_experts} ({list(self.expert_names)})"
            )
        self.router.load_state_dict(router, strict=True)
        prefixes = {f"experts.{name}." for name in self.expert_names}
        stray = sorted(k for k in state if not k.startswith("router.") and not any(k.startswith(p) for p in prefixes))
        if stray:
            raise KeyError(f"state for unknown experts: {stray[:8]} (block experts: {list(self.expert_names)})")
        for name in self.expert_names:
            prefix = f"experts.{name}."
            self._expert(name).load_trainable_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )

    def extra_repr(self) -> str:
        return f"experts={list(self.expert_names)}, router={self.router_kind!r}"


def _to_device(features: Features, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
