"""Testing support for UPRM and its plugins: the standard expert tests every expert
runs (:class:`ExpertTests`), a tiny :class:`~uprm.ExpertContext`, synthetic clips, an
isolated plugin host for throw-away plugins, and :func:`overfit` (a tiny model taught a
few answers, for tests that need a model which detects something).

``import uprm.testing`` does not need pytest: only :class:`ExpertTests` (the test
suite itself) imports it, when it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uprm.testing.experts import ColourExpert
from uprm.testing.fixtures import isolated_plugins, overfit, random_video_tokens, synthetic_clip, tiny_context

if TYPE_CHECKING:
    from uprm.testing.standard import ExpertTests

__all__ = [
    "ColourExpert", "ExpertTests", "isolated_plugins", "overfit", "random_video_tokens", "synthetic_clip", "tiny_context",
]


def __getattr__(name: str) -> Any:
    if name != "ExpertTests":
        raise AttributeError(f"module 'uprm.testing' has no attribute {name!r}")
    try:
        from uprm.testing.standard import ExpertTests
    except ImportError as err:
        if err.name != "pytest":
            raise
        raise ImportError(
            "uprm.testing.ExpertTests is a pytest test suite and needs pytest: pip install pytest", name="pytest"
        ) from err
    return ExpertTests
