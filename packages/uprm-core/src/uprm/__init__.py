"""UPRM — Unified Physical-world Regularized MoE for in-depth security-oriented video
understanding (Jin et al., WWW 2026).

A Video-LLM (Video-LLaVA) whose visual tokens come from a mixture of physical-world
experts — human pose, object relations, visual background and a coarse video expert —
mixed by a gated trade-off router (eq.6) and regularised by a router z-loss (eq.7).

The public API is imported lazily: ``import uprm`` loads neither torch nor any plugin;
``uprm.available_experts()`` discovers the installed expert plugins on first use. Its
names (``uprm.__all__``) are listed once, in ``__init__.pyi``, which lazy-loader reads to
import each on first use and type checkers read as the module's interface; any other
submodule (``uprm.data``, ``uprm.metrics``, ``uprm.testing``, ...) is an attribute too.

>>> import uprm
>>> sorted(uprm.available_experts())           # doctest: +SKIP
['background', 'coarse', 'pose', 'relation']
"""

from __future__ import annotations

import importlib
from typing import Any

from uprm._lazy import attach_stub
from uprm._version import __version__
from uprm.offline import configure_offline as _configure_offline

# UPRM_OFFLINE=1 reaches the libraries' own switches before any of them is imported
# (setdefault only: what the user set wins; nothing changes online)
_configure_offline()

_stub_getattr, __dir__, __all__ = attach_stub(__name__, __file__)


def __getattr__(name: str) -> Any:
    """A name of ``__init__.pyi``, else a submodule (``uprm.data``), imported on first use."""
    if name not in __all__ and not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return _stub_getattr(name)  # a name of the stub, or the AttributeError naming it
