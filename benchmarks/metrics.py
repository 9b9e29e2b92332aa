"""uprm.metrics cost: map_at_tiou against a plain-loop transcription of ActivityNet's
detection AP (goal: >= 10x faster, the same numbers), and Sentence-BERT similarity
throughput.

    python benchmarks/metrics.py                    # 100k predictions / 1k videos, 10k pairs; 1-3 min on 2 cores
    python benchmarks/metrics.py --pairs 1000       # a shorter SBERT run
    python benchmarks/metrics.py --pairs 0          # mAP only

The data are random but shaped like a detector's output: 1-5 ground-truth segments per
video, predictions around them (jittered) or anywhere, scores rounded to 3 decimals (so
many ties). The plain loop is tests/metrics/anet_reference.py: pure Python, one
prediction x threshold x ground truth at a time. Figures are from one run: map_at_tiou
is the median of --repeats runs, the loop runs once.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the SBERT weights come from a local package
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REFERENCE = Path(__file__).resolve().parents[1] / "packages/uprm-core/tests/metrics/anet_reference.py"


def load_reference():
    spec = importlib.util.spec_from_file_location("anet_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def detection_data(n_videos: int, n_predictions: int, rng: np.random.Generator) -> tuple[list, list]:
    gt, segments = [], []
    for v in range(n_videos):
        duration = rng.uniform(30, 600)
        starts = rng.uniform(0, duration - 20, rng.integers(1, 6))
        segments.append([(s, s + rng.uniform(2, 20)) for s in starts])
        gt += [(f"video_{v:05d}", s, e) for s, e in segments[-1]]
    videos = rng.integers(0, n_videos, n_predictions)
    preds = []
    for v in videos:
        if rng.random() < 0.5:
            s, e = segments[v][rng.integers(len(segments[v]))]
            s, e = sorted((s + rng.normal(0, 3), e + rng.normal(0, 3)))
        else:
            s = rng.uniform(0, 600)
            e = s + rng.exponential(10)
        preds.append((f"video_{v:05d}", float(s), float(e), float(np.round(rng.random(), 3))))
    return preds, gt


def bench_map(args: argparse.Namespace) -> None:
    from uprm.metrics import map_at_tiou

    rng = np.random.default_rng(args.seed)
    preds, gt = detection_data(args.videos, args.predictions, rng)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    print(
        f"map_at_tiou: {len(preds)} predictions over {args.videos} videos, {len(gt)} ground-truth segments, "
        f"thresholds {thresholds}"
    )
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = map_at_tiou(preds, gt, thresholds)
        times.append(time.perf_counter() - start)
    fast = statistics.median(times)
    reference = load_reference()
    start = time.perf_counter()
    loop = reference.reference_map(preds, gt, thresholds)
    slow = time.perf_counter() - start
    kit = reference.reference_map(preds, gt, thresholds, kit_sums=True)
    print(f"  {'':>10} {'map_at_tiou':>20} {'plain loop':>20}")
    for key in ours:
        label = key if isinstance(key, str) else f"{key:g}"
        print(f"  {label:>10} {ours[key]:20.15f} {loop[key]:20.15f}")
    diff = max(abs(ours[k] - loop[k]) for k in ours)
    diff_kit = max(abs(ours[k] - kit[k]) for k in ours)
    print(f"  max |difference|: {diff:.3g} (loop with Python sums), {diff_kit:.3g} (loop with the kit's numpy sums)")
    verdict = "met" if slow / fast >= 10 and diff <= 1e-12 else "NOT met"
    print(
        f"  time: map_at_tiou {fast * 1e3:.0f} ms (median of {args.repeats}: "
        f"{', '.join(f'{t * 1e3:.0f}' for t in times)}), plain loop {slow:.2f} s"
    )
    print(f"  speed-up: {slow / fast:.1f}x   (goal >= 10x, identical numbers: {verdict})")


SUBJECTS = [
    "a man",
    "a woman",
    "two men",
    "a teenager",
    "a masked person",
    "the driver",
    "a guard",
    "a group of people",
    "an old man",
    "a cyclist",
    "the cashier",
    "a child",
    "a police officer",
    "a stranger",
]
ACTIONS = [
    "hits",
    "pushes",
    "robs",
    "chases",
    "threatens",
    "kicks",
    "follows",
    "attacks",
    "grabs",
    "argues with",
    "steals from",
    "runs towards",
    "shouts at",
    "fights with",
]
OBJECTS = [
    "another man",
    "a shop owner",
    "a pedestrian",
    "the victim",
    "a woman with a bag",
    "a parked car",
    "the security guard",
    "a customer",
    "a child",
    "an elderly woman",
]
PLACES = [
    "in a parking lot",
    "near the entrance",
    "inside a convenience store",
    "on a crowded street",
    "at night",
    "at a gas station",
    "next to a bus stop",
    "in a narrow alley",
    "in front of a bank",
    "on the sidewalk",
]
REASONS = [
    "because of a dispute over money",
    "to take a phone",
    "after a traffic accident",
    "without any reason",
    "while others watch",
    "and then runs away",
    "and a crowd gathers",
    "before the police arrive",
    "holding a knife",
    "with a baseball bat",
]


def sentence(rng: np.random.Generator) -> str:
    parts = [SUBJECTS, ACTIONS, OBJECTS, PLACES, REASONS]
    return " ".join(p[rng.integers(len(p))] for p in parts).capitalize() + "."


def bench_sbert(args: argparse.Namespace) -> None:
    from uprm.metrics import sbert_similarity
    from uprm.metrics.text import _sbert_model

    rng = np.random.default_rng(args.seed)
    preds = [sentence(rng) for _ in range(args.pairs)]
    refs = [sentence(rng) for _ in range(args.pairs)]
    unique = len(set(preds) | set(refs))
    start = time.perf_counter()
    _sbert_model("cpu")
    load = time.perf_counter() - start
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        threads = "?"
    print(
        f"\nsbert_similarity: {args.pairs} pairs ({unique} distinct sentences), batch {args.batch_size}, "
        f"CPU, {threads} torch threads; model load {load:.1f} s (once per process)"
    )
    start = time.perf_counter()
    score = sbert_similarity(preds, refs, batch_size=args.batch_size)
    took = time.perf_counter() - start
    print(
        f"  mean cosine {score:.4f} in {took:.1f} s: {2 * args.pairs / took:.0f} sentences/s "
        f"({unique / took:.0f} distinct sentences embedded/s, {args.pairs / took:.0f} pairs/s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--thresholds", default="0.1,0.3,0.5,0.7,0.9")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=10_000, help="SBERT sentence pairs (0: skip)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bench_map(args)
    if args.pairs > 0:
        bench_sbert(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
