# The public names of ``uprm.serve`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/serve/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).

from .app import create_app as create_app
from .config import ServeConfig as ServeConfig
from .config import ServeConfigError as ServeConfigError
from .server import run as run
