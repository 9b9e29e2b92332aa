"""The hook specifications of UPRM's plugin host (pluggy project name ``uprm``).

Plugins implement them with :data:`uprm.hookimpl`. Hook names carry the ``uprm_``
prefix; an implementation with a ``uprm_`` name that matches no spec here is a typo
and the plugin is reported as broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # heavy types only for the type checker: no torch at import
    from collections.abc import Iterable

    from uprm.experts.base import Expert

PROJECT = "uprm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def uprm_register_experts() -> Iterable[type[Expert]]:
    """Return the :class:`uprm.Expert` subclasses this plugin provides.

    Each class has a unique lowercase ``name`` and a ``granularity`` of ``"fine"`` or
    ``"coarse"``. Called once per process, the first time experts are asked for.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations
