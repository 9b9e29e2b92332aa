"""Expert routers: the gated trade-off router of UPRM (paper eq.6) and the basic soft
MoE router of the "w/o PTR" ablation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from uprm.moe.names import ROUTER_NAMES

__all__ = ["ROUTERS", "BasicRouter", "TradeoffRouter", "make_router"]


class _Router(nn.Module):
    """An FFN that gives each token ``N + 1`` logits — one per fine expert (in the
    model's expert order) and the coarse expert's last — and mixes the experts'
    outputs with weights derived from them.

    ``input_norm=True`` puts a LayerNorm without parameters in front of the FFN, so that
    the router sees the direction of ``h`` and not its scale (a departure from eq.6,
    off by default; docs/design.md and benchmarks/keyed_ablation.md §3c say why)."""

    #: whether training adds the z-loss (eq.7) for this router
    uses_z_loss: bool = True

    def __init__(self, hidden_size: int, num_fine: int, ffn_hidden: int | None = None, dropout: float = 0.0,
                 input_norm: bool = False):
        super().__init__()
        if num_fine < 0:
            raise ValueError(f"num_fine must be >= 0, got {num_fine}")
        self.hidden_size = hidden_size
        self.num_fine = num_fine
        inner = ffn_hidden or max(16, hidden_size // 4)
        # no parameters: a checkpoint's state dict is the same with the option on or off
        self.input_norm = nn.LayerNorm(hidden_size, elementwise_affine=False) if input_norm else None
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, inner),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(inner, num_fine + 1),
        )
        self.reset_parameters()

    @property
    def num_experts(self) -> int:
        return self.num_fine + 1

    def reset_parameters(self) -> None:
        first, last = cast(nn.Linear, self.ffn[0]), cast(nn.Linear, self.ffn[-1])
        first.reset_parameters()
        nn.init.normal_(last.weight, std=0.02)
        nn.init.zeros_(last.bias)

    def mixing_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Router logits ``[..., N + 1]`` → the weight of each expert's output
        ``[..., N + 1]`` (coarse last)."""
        raise NotImplementedError

    def forward(
        self, h: torch.Tensor, fine_outputs: Sequence[torch.Tensor], coarse_output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix the experts' tokens.

        Shapes:
            h: ``[B, T, D]`` router input (the coarse video tokens)
            fine_outputs: ``N`` tensors ``[B, T, D]``, in the model's expert order
            coarse_output: ``[B, T, D]``
            returns: ``(z [B, T, D], logits [B, T, N + 1])``, coarse logit last
        """
        if len(fine_outputs) != self.num_fine:
            raise ValueError(f"{type(self).__name__} was built for {self.num_fine} fine experts, got {len(fine_outputs)}")
        logits = self.ffn(self.input_norm(h) if self.input_norm is not None else h)
        weights = self.mixing_weights(logits).to(coarse_output.dtype)
        z = weights[..., -1:] * coarse_output
        for i, out in enumerate(fine_outputs):
            z = z + weights[..., i : i + 1] * out
        return z, logits

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, num_fine={self.num_fine}, input_norm={self.input_norm is not None}"


class TradeoffRouter(_Router):
    """The trade-off aware expert router of UPRM (paper eq.6).

    ``p = softmax(x)`` over all ``N + 1`` logits of a token; the fine experts get
    ``R_i = p_i``; the gate ``G = max_i R_i`` (``0`` without fine experts); the coarse
    expert gets ``1 − G``::

        z = Σ_i R_i · E_i(h) + (1 − G) · E_g(h)

    The coarse logit sits inside the softmax so that with one fine expert the coarse
    expert does not vanish (a softmax over one fine logit alone would give ``R = G = 1``).
    Train it with :func:`uprm.tradeoff_z_loss` on the returned logits (eq.7).

    Shapes:
        h, fine outputs, coarse output: ``[B, T, D]``; returns ``z [B, T, D]`` and
        ``logits [B, T, N + 1]``.
    """

    uses_z_loss = True

    def mixing_weights(self, logits: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits.float(), dim=-1)
        fine = p[..., : self.num_fine]
        gate = fine.max(dim=-1, keepdim=True).values if self.num_fine else torch.zeros_like(p[..., :1])
        return torch.cat([fine, 1.0 - gate], dim=-1)


class BasicRouter(_Router):
    """The basic soft MoE router (the paper's "w/o PTR" ablation): ``z = Σ_j p_j E_j``
    over all ``N + 1`` experts with ``p = softmax(x)``, trained without the z-loss.

    Shapes: as :class:`TradeoffRouter`.
    """

    uses_z_loss = False

    def mixing_weights(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)


#: router name (:data:`uprm.moe.names.ROUTER_NAMES`, in that order) -> class
ROUTERS: dict[str, type[_Router]] = dict(zip(ROUTER_NAMES, (TradeoffRouter, BasicRouter)))


def make_router(kind: str, hidden_size: int, num_fine: int, **options: Any) -> _Router:
    """``"tradeoff"`` (UPRM) or ``"basic"`` (w/o PTR)."""
    try:
        cls = ROUTERS[kind]
    except KeyError:
        raise ValueError(f"unknown router {kind!r}; choose one of {list(ROUTER_NAMES)}") from None
    return cls(hidden_size, num_fine, **options)
