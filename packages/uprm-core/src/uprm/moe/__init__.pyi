# The public names of ``uprm.moe`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/moe/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).

from .block import UPEBlock as UPEBlock
from .block import UPEOutput as UPEOutput
from .block import expert_order as expert_order
from .losses import tradeoff_z_loss as tradeoff_z_loss
from .names import ROUTER_NAMES as ROUTER_NAMES
from .router import ROUTERS as ROUTERS
from .router import BasicRouter as BasicRouter
from .router import TradeoffRouter as TradeoffRouter
from .router import make_router as make_router
