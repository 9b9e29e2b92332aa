"""Benchmark of the visual-background expert (VBE): SAM image-encoder cost per frame at
SAM's 1024² input vs reduced input sizes on this CPU, and the bytes a cached clip takes.

    .venv/bin/python benchmarks/background.py                       # vit_b, random weights, ~1–2 min
    .venv/bin/python benchmarks/background.py --sizes 1024,512 --frames 3
    .venv/bin/python benchmarks/background.py --checkpoint sam_vit_b_01ec64.pth --image frame.png

Without ``--checkpoint`` the encoder has random weights: the timings are those of the
real architecture, but feature agreement between sizes means nothing, so it is printed
only with a checkpoint (cosine similarity of the pooled grid tokens at each size to those
at 1024, on ``--image`` or a synthetic frame).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Figures are printed as a table; ratios are relative to the largest size measured.",
    )
    p.add_argument("--variant", choices=["vit_b", "vit_l", "vit_h"], default=None,
                   help="SAM image encoder to time (default: vit_b, or the checkpoint's own; "
                        "vit_l/vit_h have 3.4x/7.1x vit_b's parameters)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a local SAM checkpoint (.pth/.safetensors); default: random weights")
    p.add_argument("--sizes", default="1024,672,512,448,256",
                   help="comma list of input sizes, multiples of 16 (default: 1024,672,512,448,256); "
                        "sizes whose map side (size/16) is a multiple of SAM's 14-cell window avoid window padding")
    p.add_argument("--frames", type=int, default=1,
                   help="frames timed per size; sizes below 1024 repeat until ~3 s have been measured (default: 1)")
    p.add_argument("--min-time", type=float, default=3.0,
                   help="below 1024, repeat a size until this many seconds were measured (max 5 runs; "
                        "the fastest run is reported) (default: 3)")
    p.add_argument("--batch-size", type=int, default=1, help="frames per encoder forward (default: 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--image", type=Path, default=None,
                   help="an RGB image to encode (default: a synthetic 320x240 frame)")
    p.add_argument("--clip-frames", type=int, default=8, help="frames of the clip whose cache size is measured (default: 8)")
    p.add_argument("--tokens-per-frame", type=int, default=257,
                   help="coarse tokens per frame: 1 CLS + grid² (default: 257, Video-LLaVA)")
    return p.parse_args(argv)


def load_frame(path: Path | None):
    import torch

    from uprm.testing import synthetic_clip

    if path is None:
        return synthetic_clip(1, size=(240, 320), seed=0).frames
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None]


def count_gflops(config, size: int) -> float:
    """FLOPs of one frame through the encoder at ``size``, counted on the meta device
    (shapes only: no memory, no time)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from uprm_expert_background import sam as sam_mod

    encoder = sam_mod.build_image_encoder(config, device="meta")
    sam_mod.resize_input(encoder, size)
    with FlopCounterMode(display=False) as counter:
        encoder(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() / 1e9


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from tqdm import tqdm

    from uprm.experts.grid import pool_to_grid
    from uprm_expert_background import sam as sam_mod
    from uprm_expert_background.expert import load_sam_image_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()}, reverse=True)
    grid = round((args.tokens_per_frame - 1) ** 0.5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU count {os.cpu_count()}")

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "random weights" is the point here
        variant = args.variant or (None if args.checkpoint else "vit_b")
        encoder, info = load_sam_image_encoder(args.checkpoint, variant=variant)
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in encoder.parameters())
    native_pos = encoder.pos_embed.detach().clone()
    weights = "random weights" if args.checkpoint is None else str(args.checkpoint)
    print(f"SAM {info['variant']} image encoder ({weights}): {n_params / 1e6:.1f} M parameters, built in {load_s:.1f} s")

    frame = load_frame(args.image)
    print(f"frame: {tuple(frame.shape[-2:])} (H, W); pooled onto a {grid}x{grid} grid + 1 prefix token")
    rows = []
    pooled_at = {}
    for size in tqdm(sizes, desc="input sizes", unit="size", file=sys.stderr):
        encoder.pos_embed = torch.nn.Parameter(native_pos.clone(), requires_grad=False)
        sam_mod.resize_input(encoder, size)
        pixels, resized = sam_mod.sam_preprocess(frame, size)
        batch = pixels.expand(args.batch_size, -1, -1, -1).contiguous()
        times, cpu_times = [], []
        with torch.inference_mode():
            while True:
                start, cpu_start = time.perf_counter(), time.process_time()
                maps = encoder(batch)
                times.append((time.perf_counter() - start) / args.batch_size)
                cpu_times.append((time.process_time() - cpu_start) / args.batch_size)
                enough = len(times) * args.batch_size >= args.frames
                if enough and (size >= 1024 or sum(times) * args.batch_size >= args.min_time or len(times) >= 5):
                    break
            r, c = sam_mod.embedding_window(resized, maps.shape[-1], size, centre_crop=True)
            pooled_at[size] = pool_to_grid(maps[:1, :, r, c], grid, 1)[0]
        per_frame, cpu_per_frame = min(times), min(cpu_times)
        gflops = count_gflops(info["config"], size)
        window = info["config"]["window_size"]
        padded = -(-maps.shape[-1] // window) * window if window else maps.shape[-1]
        rows.append((size, maps.shape[-1], padded, gflops, per_frame, cpu_per_frame, len(times) * args.batch_size))

    base_flops, base, base_cpu = rows[0][3], rows[0][4], rows[0][5]
    print()
    print("map = SAM's embedding map; windowed = the side windowed blocks pad it to (whole 14-cell windows);")
    print("GFLOP counted by torch.utils.flop_counter (2 per multiply-add); s/frame = wall time and cpu-s/frame =")
    print("CPU time of this process (all threads), fastest run each; CPU time is the steadier figure on a shared machine")
    print(f"{'input':>7} {'map':>7} {'windowed':>9} {'GFLOP':>8} {'FLOP ratio':>11} {'s/frame':>9} {'cpu-s/frame':>12} "
          f"{'s/clip(' + str(args.clip_frames) + ')':>11} {'speed-up':>9} {'cpu speed-up':>13} {'runs':>5}"
          + ("  cos-sim to " + str(sizes[0]) if args.checkpoint else ""))
    for size, side, padded, gflops, per_frame, cpu_per_frame, n in rows:
        line = (f"{size:>7} {f'{side}x{side}':>7} {f'{padded}x{padded}':>9} {gflops:>8.1f} {base_flops / gflops:>10.1f}x "
                f"{per_frame:>9.3f} {cpu_per_frame:>12.3f} {per_frame * args.clip_frames:>11.2f} {base / per_frame:>8.1f}x "
                f"{base_cpu / cpu_per_frame:>12.1f}x {n:>5}")
        if args.checkpoint:
            a, b = pooled_at[size].float(), pooled_at[sizes[0]].float()
            line += f"  {torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item():.3f}"
        print(line)
    if not args.checkpoint:
        print("(feature agreement across sizes needs real weights: pass --checkpoint)")
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    print(f"peak resident memory of this process: {peak:.1f} GB (reached at input {sizes[0]}, batch {args.batch_size})")

    # ---------------------------------------------------------------- cache bytes per clip
    from safetensors.torch import save_file

    from uprm.testing import synthetic_clip, tiny_context
    from uprm_expert_background import BackgroundExpert

    ctx = tiny_context(tokens_per_frame=args.tokens_per_frame, num_frames=args.clip_frames, hidden_size=64)
    clip = synthetic_clip(args.clip_frames, size=(240, 320), seed=1)
    out_chans = info["config"]["out_chans"]
    print()
    print(f"cache of one {args.clip_frames}-frame clip ({args.tokens_per_frame} tokens/frame, {out_chans} channels):")
    with tempfile.TemporaryDirectory() as tmp:
        sizes_on_disk = {}
        for dtype in ("float16", "float32"):
            # the layout does not depend on the encoder's weights: the small default encoder writes it
            feats = BackgroundExpert(ctx, cache_dtype=dtype).extract(clip)
            path = Path(tmp) / f"pooled-{dtype}.safetensors"
            save_file(feats, str(path))
            sizes_on_disk[dtype] = path.stat().st_size
            print(f"  pooled {dtype:<8} {tuple(feats['embedding'].shape)}: {sizes_on_disk[dtype] / 1e6:8.2f} MB")
        side = info["config"]["img_size"] // info["config"]["patch_size"]  # SAM's own 64x64 map
        raw = torch.zeros(args.clip_frames, out_chans, side, side)
        path = Path(tmp) / "raw.safetensors"
        save_file({"embedding": raw}, str(path))
        raw_bytes = path.stat().st_size
        print(f"  unpooled float32 {tuple(raw.shape)}: {raw_bytes / 1e6:8.2f} MB")
        print(f"  pooled float16 is {raw_bytes / sizes_on_disk['float16']:.0f}x smaller than the unpooled map")
    return 0


if __name__ == "__main__":
    sys.exit(main())
