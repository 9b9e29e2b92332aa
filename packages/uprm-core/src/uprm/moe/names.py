"""The router names, defined once (imports nothing): ``"tradeoff"`` — UPRM's gated
trade-off router with the z-loss (eq.6–7) — and ``"basic"`` — the plain soft MoE router
of the "w/o PTR" ablation."""

from __future__ import annotations

__all__ = ["ROUTER_NAMES"]

ROUTER_NAMES: tuple[str, ...] = ("tradeoff", "basic")
