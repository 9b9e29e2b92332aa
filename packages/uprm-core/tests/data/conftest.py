"""Fixtures shared by the data tests: small H.264 videos written with PyAV.

``write_video`` writes a clip whose frames carry their own index as a 4 × 3 grid of
black/white cells (12 bits, robust to H.264's losses); ``frame_number`` reads it back
from a decoded frame, so a test can check which frame the decoder returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

_COLS, _ROWS = 4, 3


def _pattern(index: int, width: int, height: int) -> np.ndarray:
    """An RGB frame showing ``index`` in binary, most significant bit top-left."""
    img = np.zeros((height, width, 3), np.uint8)
    cw, ch = width // _COLS, height // _ROWS
    for bit in range(_COLS * _ROWS):
        if (index >> (_COLS * _ROWS - 1 - bit)) & 1:
            r, c = divmod(bit, _COLS)
            img[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = 255
    return img


def _read_pattern(frame: torch.Tensor) -> int:
    """The index shown by a uint8 ``[3, H, W]`` frame of ``_pattern``."""
    gray = frame.float().mean(0)
    h, w = gray.shape
    cw, ch = w // _COLS, h // _ROWS
    value = 0
    for bit in range(_COLS * _ROWS):
        r, c = divmod(bit, _COLS)
        cell = gray[r * ch + ch // 4 : (r + 1) * ch - ch // 4, c * cw + cw // 4 : (c + 1) * cw - cw // 4]
        value = (value << 1) | int(cell.mean() > 127)
    return value


def write_video_file(
    path: Path,
    num_frames: int = 20,
    fps: float = 10.0,
    size: tuple[int, int] = (64, 48),
    gop: int = 10,
    pts_ms: Sequence[int] | None = None,
    rotation: int | None = None,
    faststart: bool = False,
    bframes: int = 0,
    image: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Write an H.264 MP4 with PyAV (libx264). ``pts_ms`` gives each frame's time in
    milliseconds (variable frame rate); ``rotation`` sets a display-matrix rotation."""
    import av

    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        rate = Fraction(fps).limit_denominator(1000)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "bf": str(bframes), "sc_threshold": "0"}
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(num_frames):
            pixels = image(i) if image is not None else _pattern(i, width, height)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts_ms is not None:
                frame.pts = int(pts_ms[i])
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def write_video() -> Callable[..., Path]:
    """``write_video(path, num_frames=20, fps=10, size=(64, 48), gop=10, ...)`` → path."""
    return write_video_file


@pytest.fixture
def frame_number() -> Callable[[torch.Tensor], int]:
    """``frame_number(frame)`` → the index a ``write_video`` frame shows (``[3, H, W]``)."""
    return _read_pattern


@pytest.fixture(scope="session")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-minute clip (2 fps, 1200 frames, keyframe every 5 s), written once."""
    return write_video_file(tmp_path_factory.mktemp("long") / "long.mp4", num_frames=1200, fps=2.0, gop=10)
