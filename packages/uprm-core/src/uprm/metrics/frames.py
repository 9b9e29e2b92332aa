"""From threat segments in seconds to the binary per-frame (or per-second) arrays that
FNR and F2 are computed on."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError, as_segments

__all__ = ["num_samples", "segments_to_frames"]

_GRID_TOLERANCE = 1e-6  # in samples: 8640 frames / 30 fps * 30 fps is 8640.000000000002


def _positive_finite(value: Any, name: str, allow_zero: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = "≥ 0" if allow_zero else "> 0"
        raise MetricInputError(f"{name}: must be finite and {need}, got {value!r}")
    return value


def num_samples(duration: float, rate: float) -> int:
    """How many samples :func:`segments_to_frames` makes: ``ceil(duration * rate)``,
    where a product within 1e-6 of an integer counts as that integer (float noise)."""
    duration = _positive_finite(duration, "duration", allow_zero=True)
    rate = _positive_finite(rate, "rate", allow_zero=False)
    x = duration * rate
    return round(x) if abs(x - round(x)) <= _GRID_TOLERANCE else math.ceil(x)


def segments_to_frames(segments: Any, duration: float, rate: float = 1.0) -> np.ndarray:
    """A boolean array with one entry per sample of a video: True where a threat is.

    ``segments``: ``(start, end)`` seconds (pairs, :class:`uprm.Segment` s, a ``[K, 2]``
    array or tensor, ``None`` or ``[]``); ``duration`` seconds (≥ 0); ``rate`` samples per
    second (> 0; the video's fps for frames, 1 for seconds).

    Conventions:

    - ``n = ceil(duration * rate)`` samples (:func:`num_samples`); sample ``i`` covers
      ``[i / rate, (i + 1) / rate)``, the last one cut at ``duration``; a zero duration
      gives an empty array, any duration up to one sample long gives one sample.
    - Sample ``i`` is positive when its centre (the midpoint of the interval it covers)
      lies in some segment, half-open: ``start <= centre < end``. Overlapping segments
      are merged; a zero-length segment marks nothing.
    - Segments reaching outside ``[0, duration]`` are clipped to it (samples exist only
      there); a segment wholly outside marks nothing.
    - NaN or infinite times and ``end < start`` are errors (:class:`MetricInputError`),
      as are a negative or non-finite ``duration`` and a ``rate`` that is not > 0.

    With UCF-Crime's frame annotations (``start = f0 / fps``, ``end = f1 / fps``) at
    ``rate = fps`` this marks frames ``f0 .. f1 - 1``.
    """
    n = num_samples(duration, rate)
    bounds = as_segments(segments, "segments")
    index = np.arange(n + 1, dtype=np.float64)
    lo = index[:-1] / rate
    hi = np.minimum(index[1:] / rate, float(duration))
    centres = (lo + hi) / 2
    first = np.searchsorted(centres, bounds[:, 0], side="left")  # first centre >= start
    stop = np.searchsorted(centres, bounds[:, 1], side="left")  # first centre >= end
    edges = np.zeros(n + 1, np.int64)
    np.add.at(edges, first, 1)
    np.add.at(edges, stop, -1)
    return np.cumsum(edges[:-1]) > 0
