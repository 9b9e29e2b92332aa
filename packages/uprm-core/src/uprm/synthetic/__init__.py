"""The synthetic surveillance world: procedurally rendered CCTV clips with known threats,
their causes, and the true physical-world signals (poses and object relations).

:func:`generate_world` renders a world into a folder (``uprm data synthetic`` on the
command line); :func:`make_video` scripts one video (:class:`SyntheticVideo`). Modules:
``body`` (articulated COCO stick figures and their motions), ``scene`` (layouts, people,
cars, bags, fires, drawing, relations), ``events`` (each threat and its normal twin),
``video`` (one video and its sidecar JSON), ``world`` (a whole world on disk), ``keyed``
(the keyed world: each threat differs from its twin in exactly one expert's input).

Imported lazily: ``import uprm.synthetic`` loads neither numpy nor the renderer.
"""

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
