"""The built-in plugin of uprm-core: registers the coarse video expert through the same
hook as any external plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uprm.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from uprm.experts.base import Expert


@hookimpl
def uprm_register_experts() -> list[type[Expert]]:
    from uprm.experts.coarse import CoarseExpert

    return [CoarseExpert]
