"""The UPE block: routers (eq.6), the trade-off z-loss (eq.7), and the block itself.

Pure torch: the block receives built experts and never looks a name up (the plugin
layer's :func:`uprm.plugins.build_experts` does). Imported lazily, so
``uprm.moe.names.ROUTER_NAMES`` is available without torch.
"""

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
