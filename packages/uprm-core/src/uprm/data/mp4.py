"""Writing H.264 MP4 files with PyAV (the synthetic world, test fixtures, event clips)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from uprm.utils import atomic_path

__all__ = ["write_mp4"]


def write_mp4(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float, crf: int = 18,
              gop: int | None = None) -> Path:
    """Encode RGB frames ``uint8 [N, H, W, 3]`` to H.264 in an mp4 (PyAV), atomically.

    Frame ``i`` gets pts ``i`` in a ``1/fps`` time base. One encoder thread and no
    B-frames keep the bytes reproducible; a keyframe every ``gop`` frames (default
    2 s) keeps seeking cheap.
    """
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.codec_context.time_base = 1 / rate
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.options = {"crf": str(int(crf)), "preset": "veryfast", "bf": "0",
                          "g": str(int(gop or max(1, round(2 * fps)))), "threads": "1"}
        first = True
        for i, arr in enumerate(frames):
            if first:
                stream.height, stream.width = int(arr.shape[0]), int(arr.shape[1])
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            frame.pts = i
            frame.time_base = stream.codec_context.time_base
            container.mux(stream.encode(frame))
        if first:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return path

