"""The gated physical-world trade-off loss (paper eq.7)."""

from __future__ import annotations

import torch

__all__ = ["tradeoff_z_loss"]


def tradeoff_z_loss(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Router z-loss over the ``N + 1`` router logits of each token (paper eq.7).

    ``L_z = 1/T Σ_i ( log( Σ_j exp x_j^(i) + exp x_g^(i) ) )²`` — the squared
    log-sum-exp of a token's fine-expert logits ``x_j`` and coarse logit ``x_g``,
    averaged over the real (unmasked) video tokens. It penalises large logits, so no
    expert (the coarse one included) can dominate by growing its logit.

    Shapes:
        logits: ``[..., N + 1]`` (the router's logits, coarse last; any leading dims,
            usually ``[B, T]``)
        mask: bool ``[...]`` matching the leading dims; ``True`` = a real token.
            ``None`` = every token counts.
        returns: a float32 scalar; ``0`` when the mask selects no token.
    """
    lse = torch.logsumexp(logits.float(), dim=-1)
    squared = lse.square()
    if mask is None:
        return squared.mean()
    mask = mask.to(device=squared.device, dtype=torch.bool)
    if mask.shape != squared.shape:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not match logits' tokens {tuple(squared.shape)}")
    count = mask.sum()
    return torch.where(mask, squared, torch.zeros_like(squared)).sum() / count.clamp_min(1)
