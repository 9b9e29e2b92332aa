"""Video decoding cost: 8 frames from a 1-minute vs a 10-minute file (goal: ≤ 2× apart),
seeking vs decoding everything, and a sliding-window pass over the long file.

    python benchmarks/video_decode.py                 # ~1-2 min on 2 CPU cores
    python benchmarks/video_decode.py --size 640x360 --fps 30 --gop 250 --long-minutes 30

The files are generated with PyAV (libx264) in a temporary folder (kept with --keep).
Every figure is the median of --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(path: Path, seconds: float, fps: int, width: int, height: int, gop: int) -> float:
    """A moving gradient with a bouncing square (cheap to encode, not static). Returns
    the time the encoding took."""
    import av

    start = time.perf_counter()
    n = round(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "sc_threshold": "0"}
        for i in range(n):
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (xx + i) % 256
            img[..., 1] = (yy + 2 * i) % 256
            img[..., 2] = 96
            s = height // 4
            x0 = (i * 3) % (width - s)
            y0 = (i * 2) % (height - s)
            img[y0 : y0 + s, x0 : x0 + s] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return time.perf_counter() - start


def decode_all(path: Path, num_frames: int = 8) -> np.ndarray:
    """The baseline: decode every frame, keep ``num_frames`` uniformly spaced ones."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames
        want = set(np.linspace(0, total - 1, num_frames).round().astype(int).tolist())
        kept = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(stream)) if i in want]
    return np.stack(kept)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x240", help="frame size WxH (default 320x240)")
    parser.add_argument("--fps", type=int, default=15, help="frame rate of the generated files (default 15)")
    parser.add_argument("--gop", type=int, default=60, help="keyframe interval in frames (default 60)")
    parser.add_argument("--short-minutes", type=float, default=1.0)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per clip (default 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window", type=float, default=30.0, help="window of the sliding pass (s)")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from uprm.data import VideoReader, load_clip

    folder = args.keep or Path(tempfile.mkdtemp(prefix="uprm-video-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for label, minutes in (("short", args.short_minutes), ("long", args.long_minutes)):
        path = folder / f"{label}_{minutes:g}min_{width}x{height}_{args.fps}fps_gop{args.gop}.mp4"
        if not path.exists():
            took = write_video(path, minutes * 60, args.fps, width, height, args.gop)
            print(f"generated {path.name} in {took:.1f} s ({path.stat().st_size / 1e6:.1f} MB)")
        files[label] = path

    print(f"\n{args.frames} frames, {width}x{height}, {args.fps} fps, keyframe every {args.gop} frames, "
          f"median of {args.repeats}")  # fmt: skip
    seek = {k: timed(lambda p=p: load_clip(p, args.frames), args.repeats) for k, p in files.items()}
    for k, p in files.items():
        print(f"  load_clip (seek)   {p.name:<40} {seek[k] * 1e3:8.1f} ms")
    ratio = seek["long"] / seek["short"]
    verdict = "OK" if ratio <= 2.0 else "ABOVE GOAL"
    print(f"  long / short ratio: {ratio:.2f}x   (goal <= 2x: {verdict})")

    full = {k: timed(lambda p=p: decode_all(p, args.frames), max(1, args.repeats // 2)) for k, p in files.items()}
    for k, p in files.items():
        print(f"  decode everything  {p.name:<40} {full[k] * 1e3:8.1f} ms  "
              f"(seek is {full[k] / seek[k]:.0f}x faster)")  # fmt: skip
    print(f"  decode-everything long / short ratio: {full['long'] / full['short']:.2f}x")

    late = timed(
        lambda: load_clip(
            files["long"], args.frames, start=args.long_minutes * 60 - 60, end=args.long_minutes * 60 - 30
        ),
        args.repeats,
    )
    early = timed(lambda: load_clip(files["long"], args.frames, start=0.0, end=30.0), args.repeats)
    print(f"\n  30-s window at the start of the long file: {early * 1e3:.1f} ms; near its end: {late * 1e3:.1f} ms")

    t = time.perf_counter()
    with VideoReader(files["long"]) as reader:
        count = sum(1 for _ in reader.windows(args.window, num_frames=args.frames))
    took = time.perf_counter() - t
    hours = args.long_minutes / 60
    print(f"  sliding {args.window:g}-s windows over the long file: {count} windows in {took:.2f} s "
          f"({took / count * 1e3:.1f} ms a window; {took / hours:.1f} s per hour of video)")  # fmt: skip
    if args.keep is None:
        for p in files.values():
            p.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
