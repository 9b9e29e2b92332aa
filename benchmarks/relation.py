"""Benchmark of the object-relation expert (uprm-expert-relation) on this machine.

Prints, in one run:

1. **Extraction cost per frame** — the detector path split into its parts (yolo11n
   letterbox + forward + NMS, the geometric/motion predicates, the padding into
   tensors) at each ``--imgsz``; and the scene-graph JSON path (a 60-s, 30-fps video's
   file: the first read with validation, a cached read, and a clip's extraction).
   The default detector is the real yolo11n architecture with random weights, made to
   give boxes (``uprm_expert_relation.testing.plausible_random_detector``); its cost is
   a trained one's. Pass ``--weights`` for a trained checkpoint.
2. **Adapter cost at the real dims** — ``D = 4096``, ``T = 8 × 257 = 2056`` tokens,
   ``K = 16`` objects: parameters, forward time (and forward + backward with
   ``--backward``) for ``grid="scatter"`` and ``grid="attention"``, as ratios to the
   coarse expert's projector on the same tokens; and the bytes of a clip's cached features.

Run ``python benchmarks/relation.py --help`` for the options; the default run takes
about a minute or two on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("UPRM_CACHE", str(ROOT / ".cache" / "uprm"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure the relation expert: extraction cost per frame (detector and scene-graph JSON) and "
        "the adapter's cost at the real dims (D = 4096, 2056 tokens).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--weights", help="a local ultralytics detection .pt (default: yolo11n, random, made plausible)")
    p.add_argument("--model-config", default="yolo11n.yaml", help="the detector's YAML when no --weights are given")
    p.add_argument("--frames", type=int, default=8, help="frames per clip for the extraction benchmark")
    p.add_argument("--size", default="320x240", help="frame size WxH for the extraction benchmark")
    p.add_argument("--imgsz", type=int, nargs="+", default=[320, 640], help="detector input sizes to measure")
    p.add_argument("--conf", type=float, default=0.25, help="detector confidence threshold")
    p.add_argument("--max-objects", type=int, default=16, help="K, objects kept per frame")
    p.add_argument("--json-frames", type=int, default=1800, help="frames in the scene-graph file (60 s at 30 fps)")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (the best is reported)")
    p.add_argument("--hidden", type=int, default=4096, help="D, the LLM's hidden size")
    p.add_argument("--num-frames", type=int, default=8, help="frames of a clip for the adapter")
    p.add_argument("--tokens-per-frame", type=int, default=257, help="coarse tokens per frame (1 + 16 × 16)")
    p.add_argument("--vision-hidden", type=int, default=1024, help="the coarse tower's width (projector input)")
    p.add_argument("--batch", type=int, default=1, help="clips per adapter batch")
    p.add_argument("--node-dim", type=int, default=256, help="width of the graph's node features")
    p.add_argument("--num-layers", type=int, default=2, help="L, graph layers")
    p.add_argument("--grids", nargs="+", default=["scatter", "attention"], choices=["scatter", "attention"])
    p.add_argument("--backward", action="store_true", help="also time forward + backward (a training step)")
    p.add_argument("--residual", action="store_true",
                   help="also measure the residual form (residual=True: video_tokens + Δ) for each grid")
    p.add_argument("--skip-extraction", action="store_true")
    p.add_argument("--skip-adapter", action="store_true")
    return p.parse_args(argv)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def row(*cells, widths=(34, 14, 14, 30)) -> str:
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))


# ---------------------------------------------------------------------------- extraction
def scene_graph_file(path: Path, frames: int, width: int, height: int) -> None:
    """A synthetic world-like file: 2-6 objects and 1-5 triplets per frame."""
    import random

    rng = random.Random(0)
    labels = ["person", "bag", "car", "door", "fire"]
    predicates = ["near", "holding", "hitting", "pushing", "carrying", "inside"]
    out = []
    for f in range(frames):
        objs = []
        for _ in range(rng.randint(2, 6)):
            x, y = rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.8)
            objs.append({"label": rng.choice(labels), "box": [x, y, x + rng.uniform(5, width * 0.2), y + rng.uniform(5, height * 0.2)], "score": 1.0})
        triplets = [
            {"subject": objs[0], "predicate": rng.choice(predicates), "object": objs[i], "score": 1.0}
            for i in range(1, len(objs))
        ]
        out.append({"frame_index": f, "timestamp": f / 30.0, "objects": [], "triplets": triplets})
    path.write_text(json.dumps({"video_id": "bench", "width": width, "height": height, "frames": out}))


def bench_extraction(args) -> None:
    import torch

    from uprm.testing import synthetic_clip, tiny_context
    from uprm_expert_relation import RelationExpert
    from uprm_expert_relation.detector import detect
    from uprm_expert_relation.geometry import derive_relations
    from uprm_expert_relation.graph import encode_graphs
    from uprm_expert_relation.scene_graph import _read_cached, read_scene_graph
    from uprm_expert_relation.testing import plausible_random_detector, save_detector_checkpoint

    w, h = (int(v) for v in args.size.lower().split("x"))
    ctx = tiny_context()
    clip = synthetic_clip(args.frames, size=(h, w), seed=3)
    print(f"\n== Extraction: {args.frames} frames of {w}x{h}, K = {args.max_objects}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            t0 = time.perf_counter()
            weights = save_detector_checkpoint(
                plausible_random_detector(args.model_config, imgsz=min(args.imgsz)), Path(tmp) / "detector.pt"
            )
            print(f"(random {args.model_config}, made plausible, in {time.perf_counter() - t0:.1f} s)")
        print(row("part", "ms / frame", "frames / s", "notes"))
        for imgsz in args.imgsz:
            expert = RelationExpert(ctx, weights=weights, imgsz=imgsz, conf=args.conf, max_objects=args.max_objects)
            params = sum(p.numel() for p in expert.detector.parameters())
            run = lambda e=expert, s=imgsz: detect(  # noqa: E731
                e.detector, e.detector_names, clip.frames, imgsz=s, conf=args.conf, max_det=args.max_objects
            )
            graphs = run()  # warm-up (first shapes)
            t_det = best_time(run, args.repeats) / args.frames
            graphs = [g.keep_top(args.max_objects) for g in graphs]
            t_geo = best_time(lambda g=graphs: derive_relations(g, (w, h)), args.repeats) / args.frames
            derived = derive_relations(graphs, (w, h))
            t_enc = best_time(
                lambda d=derived, e=expert: encode_graphs(d, e.labels, e.predicates, args.max_objects, 4, (w, h)),
                args.repeats,
            ) / args.frames
            objects = sum(len(g.objects) for g in graphs) / args.frames
            relations = sum(len(g.relations) for g in derived) / args.frames
            total = t_det + t_geo + t_enc
            print(row(f"detector {imgsz}px ({params / 1e6:.1f} M params)", f"{t_det * 1e3:.1f}", f"{1 / t_det:.1f}", f"{objects:.1f} objects / frame"))
            print(row("  geometric + motion predicates", f"{t_geo * 1e3:.2f}", f"{1 / t_geo:.0f}", f"{relations:.0f} relations / frame"))
            print(row("  padding into tensors", f"{t_enc * 1e3:.2f}", f"{1 / t_enc:.0f}", ""))
            print(row("  extract() total", f"{total * 1e3:.1f}", f"{1 / total:.1f}", f"detector {t_det / total:.0%} of it"))

        path = Path(tmp) / "scene_graph.json"
        scene_graph_file(path, args.json_frames, w, h)
        size_mb = path.stat().st_size / 1e6

        def first_read():
            _read_cached.cache_clear()
            read_scene_graph(path)

        t_first = best_time(first_read, args.repeats)
        t_cached = best_time(lambda: read_scene_graph(path), args.repeats)
        expert = RelationExpert(ctx, max_objects=args.max_objects)
        step = args.json_frames // args.frames
        clip.meta.update(scene_graph=str(path), frame_indices=[i * step for i in range(args.frames)], source_size=[w, h])
        expert.extract(clip)
        t_clip = best_time(lambda: expert.extract(clip), args.repeats)
        print(row(f"JSON first read ({args.json_frames} fr, {size_mb:.1f} MB)", f"{t_first / args.json_frames * 1e3:.3f}", f"{args.json_frames / t_first:.0f}", f"{t_first * 1e3:.0f} ms for the file"))
        print(row("JSON cached read", f"{t_cached / args.json_frames * 1e3:.4f}", "", f"{t_cached * 1e6:.0f} µs for the file"))
        print(row("JSON extract() of a clip", f"{t_clip / args.frames * 1e3:.2f}", f"{args.frames / t_clip:.0f}", "matching + graphs + tensors"))
        feats = expert.extract(clip)
        nbytes = sum(v.numel() * v.element_size() for v in feats.values())
        print(f"cached features per clip: {nbytes / 1e3:.1f} kB ({', '.join(f'{k} {tuple(v.shape)}' for k, v in feats.items())})")


# ---------------------------------------------------------------------------- adapter
def bench_adapter(args) -> None:
    import torch

    import uprm
    from uprm.experts.coarse import Projector
    from uprm_expert_relation import RelationExpert
    from uprm_expert_relation.graph import FrameGraph, GraphObject, Relation, encode_graphs

    grid = round((args.tokens_per_frame - 1) ** 0.5)
    ctx = uprm.ExpertContext(
        hidden_size=args.hidden, num_frames=args.num_frames, tokens_per_frame=args.tokens_per_frame, image_size=grid * 14
    )
    b, t, d = args.batch, args.num_frames * args.tokens_per_frame, args.hidden
    print(f"\n== Adapter at the real dims: B = {b}, T = {args.num_frames} x {args.tokens_per_frame} = {t}, D = {d}, "
          f"K = {args.max_objects}, node_dim = {args.node_dim}, L = {args.num_layers}")

    g = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(args.num_frames):  # K objects, a chain of relations plus some random ones
        objects = []
        for _ in range(args.max_objects):
            x, y = torch.rand(2, generator=g).tolist()
            objects.append(GraphObject("person", (x * 0.8, y * 0.8, x * 0.8 + 0.2, y * 0.8 + 0.2), 0.9))
        relations = [Relation(i, "near", i + 1, 0.8) for i in range(args.max_objects - 1)]
        relations += [Relation(i, "holding", (i + 3) % args.max_objects, 0.7) for i in range(0, args.max_objects, 2)]
        graphs.append(FrameGraph(objects, relations))
    tokens = torch.randn(b, t, d)
    vision = torch.randn(b, args.num_frames, args.tokens_per_frame, args.vision_hidden)
    projector = Projector(args.vision_hidden, d).eval()
    proj_params = sum(p.numel() for p in projector.parameters())
    with torch.no_grad():
        projector(vision)
        t_proj = best_time(lambda: projector(vision), args.repeats)
    print(row("module", "params (M)", "forward ms", "ratio to the coarse projector"))
    print(row("coarse projector (1024 → D → D)", f"{proj_params / 1e6:.1f}", f"{t_proj * 1e3:.0f}", "1.00"))
    t_proj_train = None
    if args.backward:
        def step_proj():
            projector.zero_grad(set_to_none=True)
            projector(vision).float().square().mean().backward()

        step_proj()
        t_proj_train = best_time(step_proj, args.repeats)
    forms = [False, True] if args.residual else [False]
    for grid_mode, residual in ((g, r) for g in args.grids for r in forms):
        torch.manual_seed(0)
        expert = RelationExpert(
            ctx, max_objects=args.max_objects, node_dim=args.node_dim, num_layers=args.num_layers, grid=grid_mode,
            residual=residual,
        ).eval()
        feats = encode_graphs(graphs, expert.labels, expert.predicates, args.max_objects, 4, (640, 480))
        batch = expert.collate([feats] * b)
        params = sum(p.numel() for p in expert.parameters())
        with torch.no_grad():
            expert(batch, tokens)
            t_fwd = best_time(lambda e=expert, x=batch: e(x, tokens), args.repeats)
        label = f"relation adapter, grid={grid_mode}" + (", residual" if residual else "")
        print(row(label, f"{params / 1e6:.1f}", f"{t_fwd * 1e3:.0f}", f"{t_fwd / t_proj:.2f}"))
        if args.backward:
            expert.train()

            def step(e=expert, x=batch):
                e.zero_grad(set_to_none=True)
                e(x, tokens).float().square().mean().backward()

            step()
            t_train = best_time(step, args.repeats)
            print(row("  forward + backward", "", f"{t_train * 1e3:.0f}", f"{t_train / t_proj_train:.2f} (of the projector's step)"))
    print(f"peak RSS of this process: {peak_rss_gb():.2f} GB")


def main(argv=None) -> None:
    args = parse_args(argv)
    from uprm.offline import configure_offline

    configure_offline()
    start = time.perf_counter()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (other work on the machine slows every figure)")
    if not args.skip_extraction:
        bench_extraction(args)
    if not args.skip_adapter:
        bench_adapter(args)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
