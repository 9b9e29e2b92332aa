"""Feature cache: reading a clip's features from the cache vs extracting them (decode +
every expert's frozen perception), the ratio, and the bytes a clip takes in the cache.
Also the synthetic world's rendering speed (the clips come from it).

    python benchmarks/feature_cache.py                  # ~1 min on 2 CPU cores
    python benchmarks/feature_cache.py --experts coarse,pose --videos 12 --frames 16
    python benchmarks/feature_cache.py --tower vit-b16  # a ViT-B/16 video tower at 224 px (slower)

The experts are the installed ones with their no-file defaults (the tiny coarse tower,
pose and relation read the world's true keypoint / scene-graph files, background a
small random SAM encoder), built as `uprm extract` builds them. Figures are medians
over the clips of --repeats passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6, help="synthetic videos to render (default 6)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per video (default 10)")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per clip (default 8)")
    parser.add_argument("--experts", default=None, help="comma list (default: every installed expert)")
    parser.add_argument("--tower", choices=["tiny", "vit-b16"], default="tiny",
                        help="coarse video tower: the tiny default, or a random ViT-B/16 at 224 px")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the clips (default 3)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the world and the cache in this folder")
    args = parser.parse_args(argv)

    import torch

    from uprm.data import (
        FeatureCache,
        clip_keys_from_records,
        default_context,
        entry_spec,
        extract_features,
        load_clip_for,
    )
    from uprm.offline import configure_offline
    from uprm.plugins.factory import build_experts
    from uprm.plugins.manager import available_experts
    from uprm.synthetic import generate_world

    configure_offline()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    root = args.keep or Path(tempfile.mkdtemp(prefix="uprm-cache-bench-"))
    root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ the world
    start = time.perf_counter()
    world = generate_world(root / "world", args.videos, seed=0, progress=False, overwrite=True,
                           min_duration=args.duration, max_duration=args.duration)
    render_s = time.perf_counter() - start
    print(f"synthetic world: {args.videos} videos of {args.duration:g} s at 128x128, 8 fps rendered, encoded and "
          f"described (keypoints, scene graphs) in {render_s:.2f} s = {render_s / args.videos:.3f} s per clip")

    names = args.experts.split(",") if args.experts else list(available_experts())
    ctx_over, options = {}, {}
    if args.tower == "vit-b16":
        ctx_over = {"tokens_per_frame": 197, "image_size": 224}
        options["coarse"] = {"vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                               "num_attention_heads": 12, "image_size": 224, "patch_size": 16}}
    ctx = default_context(args.frames, **ctx_over)
    experts = build_experts(names, ctx, options)
    specs = {n: entry_spec(e) for n, e in experts.items()}
    files = [root / "world" / p for p in world["instructions"].values()]
    keys = clip_keys_from_records(files, args.frames)
    print(f"experts: {', '.join(names)}; context: D={ctx.hidden_size}, {ctx.tokens_per_frame} tokens/frame, "
          f"{ctx.image_size}px; {len(keys)} clips of {args.frames} frames")

    cache = FeatureCache(root / "cache")
    start = time.perf_counter()
    extract_features(keys, experts, cache, overwrite=True, progress=False)
    fill_s = time.perf_counter() - start
    print(f"uprm extract (decode + extract + write, all clips): {fill_s:.2f} s = {fill_s / len(keys) * 1e3:.1f} ms per clip")

    # ------------------------------------------------------------------ extract vs read, per clip
    decode_t, extract_t = [], {n: [] for n in names}
    read_t, read_by = [], {n: [] for n in names}
    for _ in range(args.repeats):
        for key in keys:
            t0 = time.perf_counter()
            clip = load_clip_for(key)
            decode_t.append(time.perf_counter() - t0)
            for n, e in experts.items():
                t0 = time.perf_counter()
                e.extract(clip)
                extract_t[n].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for n in names:
                t1 = time.perf_counter()
                entry = cache.read(key, n, specs[n])
                read_by[n].append(time.perf_counter() - t1)
                if entry is None:
                    print(f"cache miss for {key.video_id} / {n}", file=sys.stderr)
                    return 1
            read_t.append(time.perf_counter() - t0)

    med = statistics.median
    extract_ms = (med(decode_t) + sum(med(v) for v in extract_t.values())) * 1e3
    read_ms = med(read_t) * 1e3
    print("\nper clip (median)                extract [ms]   cache read [ms]   bytes in cache")
    print(f"  decode {args.frames} frames (PyAV)        {med(decode_t) * 1e3:10.2f}")
    total_bytes = 0
    for n in names:
        size = statistics.mean(cache.path(k, n).stat().st_size for k in keys)
        total_bytes += size
        print(f"  {n:<30} {med(extract_t[n]) * 1e3:10.2f}   {med(read_by[n]) * 1e3:15.2f}   {size:14,.0f}")
    print(f"  {'all experts':<30} {extract_ms:10.2f}   {read_ms:15.2f}   {total_bytes:14,.0f}")
    print(f"\ncache read is {extract_ms / read_ms:.1f}x faster than decode + extract "
          f"({extract_ms:.1f} ms vs {read_ms:.2f} ms per clip); {total_bytes / 1024:.0f} KiB per clip")
    per_frame = 257 * 1024 * 4
    print(f"(at Video-LLaVA's dims the coarse entry alone is 8 x 257 x 1024 float32 = {8 * per_frame / 2**20:.1f} MiB "
          "per clip; the tower it replaces is a ViT-L/14)")
    summary = {
        "render_s_per_clip": render_s / args.videos,
        "extract_ms_per_clip": extract_ms,
        "read_ms_per_clip": read_ms,
        "ratio": extract_ms / read_ms,
        "bytes_per_clip": total_bytes,
        "experts": names,
        "tower": args.tower,
    }
    print(json.dumps(summary))
    if args.keep is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
