"""The UPE block: routers (eq.6), the trade-off z-loss (eq.7), and the block itself."""

from uprm.moe.block import UPEBlock, UPEOutput, expert_order
from uprm.moe.losses import tradeoff_z_loss
from uprm.moe.router import ROUTERS, BasicRouter, TradeoffRouter, make_router

__all__ = [
    "ROUTERS",
    "BasicRouter",
    "TradeoffRouter",
    "UPEBlock",
    "UPEOutput",
    "expert_order",
    "make_router",
    "tradeoff_z_loss",
]
