"""The UPE block: routers (eq.6), the trade-off z-loss (eq.7), and the block itself.

Pure torch: the block receives built experts and never looks a name up (the plugin
layer's :func:`uprm.plugins.build_experts` does). Imported lazily, so
``uprm.moe.names.ROUTER_NAMES`` is available without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "ROUTER_NAMES": "uprm.moe.names",
    "ROUTERS": "uprm.moe.router",
    "BasicRouter": "uprm.moe.router",
    "TradeoffRouter": "uprm.moe.router",
    "make_router": "uprm.moe.router",
    "tradeoff_z_loss": "uprm.moe.losses",
    "UPEBlock": "uprm.moe.block",
    "UPEOutput": "uprm.moe.block",
    "expert_order": "uprm.moe.block",
    "expert_call": "uprm.moe.faults",
    "expert_origin": "uprm.moe.faults",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'uprm.moe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from uprm.moe.block import UPEBlock, UPEOutput, expert_order
    from uprm.moe.faults import expert_call, expert_origin
    from uprm.moe.losses import tradeoff_z_loss
    from uprm.moe.names import ROUTER_NAMES
    from uprm.moe.router import ROUTERS, BasicRouter, TradeoffRouter, make_router
