"""Testing support for UPRM and its plugins: the standard expert tests every expert
runs (:class:`ExpertTests`), a tiny :class:`~uprm.ExpertContext`, synthetic clips, an
isolated plugin host for throw-away plugins, and :func:`overfit` (a tiny model taught a
few answers, for tests that need a model which detects something).

``import uprm.testing`` does not need pytest: every name (listed once, in ``__init__.pyi``)
is imported on first use, and only :class:`ExpertTests` (the test suite itself) imports
pytest.
"""

from __future__ import annotations

from typing import Any

from uprm._lazy import attach_stub

_stub_getattr, __dir__, __all__ = attach_stub(__name__, __file__)


def __getattr__(name: str) -> Any:
    """A name of ``__init__.pyi``, imported on first use; without pytest, :class:`ExpertTests`
    is an ImportError that says so."""
    try:
        return _stub_getattr(name)
    except ImportError as err:
        if err.name != "pytest":
            raise
        raise ImportError(
            f"uprm.testing.{name} is a pytest test suite and needs pytest: pip install pytest", name="pytest"
        ) from err
