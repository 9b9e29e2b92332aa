"""Benchmark of the human-pose expert (uprm-expert-pose) on this machine.

Prints, in one run:

1. **Extraction** — frames/s of YOLO-pose batched (one predictor call per clip) vs frame
   by frame, on synthetic frames; and of reading keypoint JSON (a 60-s, 30-fps video in
   the COCO dataset layout, 8 sampled frames; first read vs cached). The default model is
   the real yolo11n-pose architecture with random weights (BatchNorm calibrated, a tiny
   confidence threshold so that NMS has ``K`` people to keep); pass ``--weights`` for a
   trained checkpoint.
2. **Adapter cost at the real dims** — ``D = 4096``, ``T = 8 × 257 = 2056`` tokens: the
   parameters, the multiply-accumulates by part (cross-attention, MSA projections, MSA
   scores ``T²``, FFN), and the measured forward time for the paper's layout (the
   defaults: the paper form, MSA over all ``T`` tokens, no temporal layer), per-frame
   MSA, a narrower ``model_dim`` and, with ``--residual``, the residual form with one
   temporal layer (``residual=True, temporal_layers=1``, the ablation's other arm).

Run ``python benchmarks/pose.py --help`` for the options; the default run takes about
two minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("UPRM_CACHE", str(ROOT / ".cache" / "uprm"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure the pose expert: extraction frames/s (batched vs frame by frame) and the adapter's "
        "cost at the real dims (D = 4096, 2056 tokens).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--weights", help="a local YOLO-pose .pt (default: yolo11n-pose with random weights)")
    p.add_argument("--frames", type=int, default=8, help="frames per clip for the extraction benchmark")
    p.add_argument("--size", default="640x480", help="frame size WxH for the extraction benchmark")
    p.add_argument("--imgsz", type=int, nargs="+", default=[320], help="YOLO inference sizes to measure (e.g. 320 640)")
    p.add_argument("--max-people", type=int, default=8, help="K, people kept per frame")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions, interleaved (the best is reported)")
    p.add_argument("--hidden", type=int, default=4096, help="D, the LLM's hidden size")
    p.add_argument("--num-frames", type=int, default=8, help="frames of a clip for the adapter")
    p.add_argument("--tokens-per-frame", type=int, default=257, help="coarse tokens per frame (1 + 16 × 16)")
    p.add_argument("--batch", type=int, default=1, help="clips per adapter batch")
    p.add_argument("--model-dims", type=int, nargs="*", default=[1024], help="narrower model_dim settings to compare")
    p.add_argument("--backward", action="store_true", help="also time forward + backward (training step cost)")
    p.add_argument("--residual", action="store_true",
                   help="also measure the residual form with a temporal layer (residual=True, temporal_layers=1)")
    p.add_argument("--skip-extraction", action="store_true")
    p.add_argument("--skip-adapter", action="store_true")
    return p.parse_args(argv)


def best_time(fn, repeats: int) -> float:
    return best_times(fn, repeats)[0]


def best_times(fn, repeats: int) -> tuple[float, float]:
    """The best wall-clock and the best process CPU time over ``repeats`` runs. On a
    machine shared with other jobs the wall time swings with their load; the CPU time
    (summed over our threads) much less."""
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ---------------------------------------------------------------------------- extraction
def bench_extraction(args) -> None:
    import torch
    from tqdm import tqdm

    from uprm.testing import synthetic_clip, tiny_context
    from uprm_expert_pose import PoseExpert
    from uprm_expert_pose.testing import random_pose_checkpoint, synthetic_people, write_dataset_json

    w, h = (int(v) for v in args.size.lower().split("x"))
    ctx = tiny_context()
    print(f"\n== 1. Extraction ({args.frames} frames of {w}×{h}, K = {args.max_people}, "
          f"{torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.weights:
            weights, conf, label = args.weights, 0.25, Path(args.weights).name
        else:
            weights = random_pose_checkpoint(Path(tmp) / "yolo11n-pose-random.pt")
            conf, label = 1e-6, "yolo11n-pose (random weights, conf 1e-6)"
        clip = synthetic_clip(args.frames, size=(h, w), seed=0)
        print(f"model: {label}")
        print(f"{'imgsz':>6} {'batched f/s':>12} {'1-by-1 f/s':>11} {'ratio':>6} {'people/frame':>13}")
        for imgsz in args.imgsz:
            batched = PoseExpert(ctx, weights=str(weights), conf=conf, imgsz=imgsz, max_people=args.max_people,
                                 batch_size=args.frames)
            single = PoseExpert(ctx, weights=str(weights), conf=conf, imgsz=imgsz, max_people=args.max_people,
                                batch_size=1)
            batched.extract(synthetic_clip(2, size=(h, w), seed=9))  # predictor set-up and warm-up
            single.extract(synthetic_clip(2, size=(h, w), seed=9))
            t_b = t_1 = float("inf")
            for _ in range(max(1, args.repeats)):  # interleaved: both see the same machine load
                t_b = min(t_b, best_time(lambda e=batched: e.extract(clip), 1))
                t_1 = min(t_1, best_time(lambda e=single: e.extract(clip), 1))
            people = batched.extract(clip)["person_mask"].sum(dim=1).float().mean().item()
            print(f"{imgsz:>6} {args.frames / t_b:>12.1f} {args.frames / t_1:>11.1f} {t_1 / t_b:>6.2f} {people:>13.1f}")

        # keypoint JSON: a 60-s 30-fps video, every frame annotated, 3 people a frame
        n = 60 * 30
        path = Path(tmp) / "video.json"
        write_dataset_json(path, range(n), synthetic_people([3] * n, size=(w, h), seed=0), size=(w, h), fps=30.0)
        from uprm_expert_pose.keypoints import clear_keypoint_cache

        expert = PoseExpert(ctx, max_people=args.max_people)
        sampled = [round(i * (n - 1) / 7) for i in range(8)]

        def json_clip():
            c = synthetic_clip(8, size=32, seed=0)
            c.meta.update(frame_indices=sampled, fps=30.0, source_size=[w, h], keypoints=str(path))
            c.duration = 60.0
            return c

        clear_keypoint_cache()
        t_cold = best_time(lambda: expert.extract(json_clip()), 1)
        t_warm = best_time(lambda: [expert.extract(json_clip()) for _ in tqdm(range(50), leave=False, desc="json")],
                           1) / 50
        size_mb = path.stat().st_size / 1e6
        print(f"keypoint JSON ({size_mb:.1f} MB, {n} frames, {3 * n} people): first read {t_cold * 1e3:.0f} ms/clip, "
              f"cached {8 / t_warm:,.0f} frames/s ({t_warm * 1e3:.2f} ms per 8-frame clip)")


# ---------------------------------------------------------------------------- adapter
def macs(d: int, t: int, f: int, k: int, pose_dim: int, ffn_mult: int, mode: str, hidden: int) -> dict[str, float]:
    """Multiply-accumulates of eq.2-3 for one clip (the tokenizer/eq.1 part is tiny)."""
    keys = f * (k + 2)  # K people + frame token + null key per frame
    proj = (t * hidden * d + t * d * hidden) if d != hidden else 0
    cross = t * d * d * 2 + keys * (pose_dim * d + 2 * d * d) + t * (k + 2) * d * 2
    msa_proj = 4 * t * d * d
    msa_scores = 2 * (t * t if mode == "full" else f * (t // f) ** 2) * d
    ffn = 2 * ffn_mult * t * d * d
    return {"in/out proj": proj, "cross-attn": cross, "MSA proj": msa_proj, "MSA T²": msa_scores, "FFN": ffn}


def bench_adapter(args) -> None:
    import torch
    from tqdm import tqdm

    from uprm_expert_pose.adapter import PoseAdapter

    D, tpf, F, B, K = args.hidden, args.tokens_per_frame, args.num_frames, args.batch, args.max_people
    T = F * tpf
    print(f"\n== 2. Adapter cost: D = {D}, T = {F} × {tpf} = {T} tokens, batch {B}, K = {K}, fp32, "
          f"{torch.get_num_threads()} threads")
    g = torch.Generator().manual_seed(0)
    features = {
        "keypoints": torch.rand(B, F, K, 17, 3, generator=g),
        "boxes": torch.rand(B, F, K, 4, generator=g).sort(dim=-1).values,
        "scores": torch.rand(B, F, K, generator=g),
        "person_mask": torch.rand(B, F, K, generator=g) > 0.5,
    }
    tokens = torch.randn(B, T, D, generator=g)
    configs = [("paper: MSA over all T", dict(self_attention="full")),
               ("per-frame MSA", dict(self_attention="frame"))]
    configs += [(f"model_dim {d}, MSA over all T", dict(self_attention="full", model_dim=d)) for d in args.model_dims]
    if args.residual:
        configs.append(("residual form + temporal layer", dict(self_attention="full", residual=True, temporal_layers=1)))
    with torch.no_grad():  # warm-up: kernels, allocator
        PoseAdapter(64, tpf).eval()(features, tokens[..., :64].contiguous())
    reps = 2 if D >= 2048 else args.repeats  # a forward at D = 4096 takes seconds: best of two
    rows = []
    for label, cfg in tqdm(configs, desc="adapter configs", leave=False):
        torch.manual_seed(0)
        adapter = PoseAdapter(D, tpf, **cfg).eval()
        params = sum(p.numel() for p in adapter.parameters())
        with torch.no_grad():
            t_fwd, c_fwd = best_times(lambda a=adapter: a(features, tokens), reps)
        t_bwd = None
        if args.backward:
            adapter.train()

            def step(a=adapter):
                a.zero_grad(set_to_none=True)
                a(features, tokens).float().square().mean().backward()

            t_bwd = best_time(step, reps)
        d = cfg.get("model_dim") or D
        m = macs(d, T, F, K, 256, 4, cfg["self_attention"], D)
        total = sum(m.values()) * B
        rows.append((label, params, m, total, c_fwd, t_fwd, t_bwd))
        del adapter

    print(f"{'layout':<32} {'params':>8} {'GMAC':>7} {'T² share':>9} {'fwd s':>7} {'cpu s':>7} {'GFLOP/s':>8}"
          + (f" {'fwd+bwd s':>10}" if args.backward else ""))
    base, base_cpu = rows[0][5], rows[0][4]
    for label, params, m, total, c_fwd, t_fwd, t_bwd in rows:
        share = m["MSA T²"] * B / total
        line = (f"{label:<32} {params / 1e6:>7.1f}M {total / 1e9:>7.1f} {share:>8.1%} {t_fwd:>7.2f} {c_fwd:>7.2f} "
                f"{2 * total / t_fwd / 1e9:>8.1f}")
        if t_bwd is not None:
            line += f" {t_bwd:>10.2f}"
        print(line + (f"   (wall {base / t_fwd:.2f}×, cpu {base_cpu / c_fwd:.2f}× the paper layout's speed)"
                      if t_fwd != base else ""))
    label, params, m, total, *_ = rows[0]
    parts = ", ".join(f"{k} {v * B / 1e9:.1f}" for k, v in m.items() if v)
    print(f"paper layout GMAC by part: {parts}")
    print(f"adapter weights (paper layout): {params * 4 / 1e9:.2f} GB in fp32, {params * 2 / 1e9:.2f} GB in bf16; "
          f"peak RSS of this process so far {peak_rss_gb():.2f} GB")


def main(argv=None) -> int:
    args = parse_args(argv)
    from uprm.offline import configure_offline

    configure_offline()
    import torch

    print(f"uprm-expert-pose benchmark — torch {torch.__version__}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    start = time.perf_counter()
    if not args.skip_extraction:
        bench_extraction(args)
    if not args.skip_adapter:
        bench_adapter(args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
