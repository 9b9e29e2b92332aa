"""Reading the metrics' inputs: lists, tuples, numpy arrays or torch tensors (any device,
any dtype) become numpy arrays, without importing torch. Every problem is reported as a
:class:`MetricInputError` naming the argument (and the row) at fault."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uprm.errors import MetricInputError

__all__ = [
    "MetricInputError",
    "as_array",
    "as_binary",
    "as_scores",
    "as_segments",
    "as_texts",
    "check_same_length",
    "segment_bounds",
]


def as_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array. Tensors are detached and moved to the CPU (bfloat16 and
    other dtypes numpy lacks are widened to float32 first)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        try:
            x = x.numpy()
        except TypeError:
            x = x.float().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name}: cannot be read as an array ({exc})") from None


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.ravel())[0])


def as_binary(x: Any, name: str) -> np.ndarray:
    """A flat boolean array from labels that are booleans or the numbers 0 and 1."""
    arr = as_array(x, name)
    if arr.dtype == bool:
        return arr.ravel()
    if arr.dtype.kind not in "iuf":
        raise MetricInputError(f"{name}: expected binary labels (bool or 0/1), got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(
            f"{name}: expected binary labels (bool or 0/1), got {arr.ravel()[i].item()!r} at index {i}"
            " (threshold scores before calling)"
        )
    return arr.ravel() != 0


def as_scores(x: Any, name: str) -> np.ndarray:
    """A flat float64 array of scores; NaN is refused (±inf is allowed: it orders)."""
    arr = as_array(x, name)
    if arr.dtype.kind not in "biuf":
        raise MetricInputError(f"{name}: expected numeric scores, got dtype {arr.dtype}")
    arr = arr.astype(np.float64).ravel()
    nan = np.isnan(arr)
    if nan.any():
        raise MetricInputError(f"{name}: NaN score at index {_first_bad(nan)}")
    return arr


def check_same_length(a: np.ndarray | Sequence, b: np.ndarray | Sequence, names: str) -> None:
    if len(a) != len(b):
        raise MetricInputError(f"{names}: lengths differ ({len(a)} vs {len(b)})")


def segment_bounds(item: Any) -> tuple[float, float]:
    """``(start, end)`` of one segment: a ``(start, end, ...)`` sequence or an object
    with ``start`` and ``end`` attributes (:class:`uprm.Segment`)."""
    if hasattr(item, "start") and hasattr(item, "end"):
        return float(item.start), float(item.end)
    return float(item[0]), float(item[1])


def check_bounds(start: np.ndarray, end: np.ndarray, name: str) -> None:
    """Refuse non-finite times and ends before starts, naming the first bad row."""
    bad = ~(np.isfinite(start) & np.isfinite(end))
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(f"{name}[{i}]: times must be finite, got ({float(start[i])!r}, {float(end[i])!r})")
    bad = end < start
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(f"{name}[{i}]: end {float(end[i])!r} is before start {float(start[i])!r}")


def as_segments(segments: Any, name: str) -> np.ndarray:
    """A ``[K, 2]`` float64 array of ``(start, end)`` seconds from ``None``, an empty
    list, a ``[K, 2]`` array or tensor, or a list of pairs / :class:`uprm.Segment` s."""
    if segments is None:
        return np.zeros((0, 2))
    if isinstance(segments, np.ndarray) or hasattr(segments, "detach"):
        arr = as_array(segments, name).astype(np.float64)
        if arr.size == 0:
            return np.zeros((0, 2))
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise MetricInputError(f"{name}: expected a [K, 2] array of (start, end), got shape {arr.shape}")
        arr = arr[:, :2]
    else:
        arr = np.zeros((len(segments), 2))
        for i, item in enumerate(segments):
            try:
                arr[i] = segment_bounds(item)
            except (TypeError, ValueError, IndexError):
                raise MetricInputError(f"{name}[{i}]: expected a (start, end) segment, got {item!r}") from None
    check_bounds(arr[:, 0], arr[:, 1], name)
    return arr


def as_texts(x: Any, name: str) -> list[str]:
    """A list of strings (a list, tuple or numpy array of ``str``)."""
    if isinstance(x, str):
        raise MetricInputError(f"{name}: expected a list of strings, got a single string")
    items = x.tolist() if isinstance(x, np.ndarray) else list(x)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise MetricInputError(f"{name}[{i}]: expected a string, got {type(item).__name__} {item!r}")
    return items
