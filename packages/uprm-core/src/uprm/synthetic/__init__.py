"""The synthetic surveillance world: procedurally rendered CCTV clips with known threats,
their causes, and the true physical-world signals (poses and object relations).

:func:`generate_world` renders a world into a folder (``uprm data synthetic`` on the
command line); :func:`make_video` scripts one video (:class:`SyntheticVideo`). Modules:
``body`` (articulated COCO stick figures and their motions), ``scene`` (layouts, people,
cars, bags, fires, drawing, relations), ``events`` (each threat and its normal twin),
``video`` (one video and its sidecar JSON), ``world`` (a whole world on disk).

Imported lazily: ``import uprm.synthetic`` loads neither numpy nor the renderer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "NORMAL": "uprm.synthetic.events",
    "THREAT_CATEGORIES": "uprm.synthetic.events",
    "EVENT_SCENES": "uprm.synthetic.events",
    "ThreatEvent": "uprm.synthetic.events",
    "WorldConfig": "uprm.synthetic.config",
    "SyntheticVideo": "uprm.synthetic.video",
    "make_video": "uprm.synthetic.video",
    "WORLD_FORMAT": "uprm.synthetic.world",
    "generate_world": "uprm.synthetic.world",
    "write_mp4": "uprm.data.mp4",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'uprm.synthetic' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from uprm.data.mp4 import write_mp4
    from uprm.synthetic.config import WorldConfig
    from uprm.synthetic.events import EVENT_SCENES, NORMAL, THREAT_CATEGORIES, ThreatEvent
    from uprm.synthetic.video import SyntheticVideo, make_video
    from uprm.synthetic.world import WORLD_FORMAT, generate_world
