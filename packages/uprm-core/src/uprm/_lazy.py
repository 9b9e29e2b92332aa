"""How a lazily loaded package of uprm lists its names: once, in its ``__init__.pyi``.

:func:`attach_stub` is lazy-loader's ``attach_stub`` (each ``from .module import name``
line of the stub is a name, imported on first use; ``from . import sub`` a submodule),
with Python's own error for a name the stub lacks: ``module 'uprm.data' has no attribute
'x'`` (``name`` and ``obj`` set, so Python can suggest a close name), not lazy-loader's
``No uprm.data attribute x``. Imports nothing but lazy-loader.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import lazy_loader

__all__ = ["attach_stub"]


def attach_stub(package: str, file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__, __dir__, __all__`` of ``package`` from the stub beside ``file``
    (``attach_stub(__name__, __file__)`` in its ``__init__.py``)."""
    stub_getattr, stub_dir, names = lazy_loader.attach_stub(package, file)
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in known:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}", name=name, obj=sys.modules.get(package)
            )
        return stub_getattr(name)

    return __getattr__, stub_dir, names
