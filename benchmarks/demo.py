"""What `make demo` costs and shows: `uprm demo` at a setting, over seeds.

Runs the demo pipeline (`uprm.demo.run_demo`) once per seed with the default sizing
(`uprm.demo.DEFAULT`) or with `--set KEY=VALUE` changes, and prints, per run, the
wall and CPU seconds of each stage, the load average, and the table; at the end one
Markdown line per run for benchmarks/demo_sizing.md (the record of every configuration
tried) and, over the seeds, how often UPRM beat coarse-only, always-yes and the
untrained model on F2, mAP average and FNR. Results are appended to
`WORK/demo_runs.jsonl`.

    .venv/bin/python benchmarks/demo.py [--seeds 0,1,2] [--set steps=800 --set window=6] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("UPRM_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def parse_changes(items: list[str]) -> dict:
    """``KEY=VALUE`` (VALUE read as JSON when it parses) -> settings changes."""
    changes = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
        if key == "splits":
            changes[key] = tuple(changes[key])
    return changes


def summary_line(label: str, seed: int, doc: dict) -> str:
    rows = {r["model"]: r for r in doc["rows"]}

    def cell(name: str) -> str:
        r = rows[name]
        avg = (r["map"] or {}).get("average")
        fnr = "–" if r["fnr"] is None else f"{r['fnr']:.0f}"
        return f"{fnr} / {r['f2']:.0f} / {avg:.0f}" if avg is not None else f"{fnr} / {r['f2']:.0f} / –"

    st = doc["stages"]
    train = st["train"]["seconds"]  # the training stage's wall time (coarse-only trains beside UPRM)
    cpu = doc["cpu_seconds"]
    load = doc["machine"]["load_average"][0]
    return (f"| {label} | {seed} | {doc['seconds']:.0f} s (CPU {cpu:.0f} s, load {load:.1f}) | train {train:.0f} s | "
            f"{cell('untrained')} | {cell('always')} | {cell('coarse')} | {cell('uprm')} |")


def wins(docs: list[dict]) -> str:
    out = []
    for rival in ("coarse", "always", "untrained"):
        counts = {"f2": 0, "map": 0, "fnr": 0}
        for doc in docs:
            rows = {r["model"]: r for r in doc["rows"]}
            u, r = rows["uprm"], rows[rival]
            counts["f2"] += (u["f2"] or 0) > (r["f2"] or 0)
            counts["map"] += ((u["map"] or {}).get("average") or 0) > ((r["map"] or {}).get("average") or 0)
            counts["fnr"] += u["fnr"] is not None and r["fnr"] is not None and u["fnr"] < r["fnr"]
        out.append(f"UPRM beats {rival}: F2 {counts['f2']}/{len(docs)}, mAP avg {counts['map']}/{len(docs)}, "
                   f"FNR {counts['fnr']}/{len(docs)}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default=None, help="name of the configuration in the Markdown lines")
    parser.add_argument("--work", type=Path, default=None, help="keep every run here (WORK/seed-N)")
    args = parser.parse_args()
    from uprm.demo import DEFAULT, run_demo

    settings = DEFAULT.replace(**parse_changes(args.changes))
    work = args.work or Path(tempfile.mkdtemp(prefix="uprm-demo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    label = args.label or (", ".join(args.changes) or "default")
    docs, lines = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        doc = run_demo(work / f"seed-{seed}", seed=seed, settings=settings)
        docs.append(doc)
        lines.append(summary_line(label, seed, doc))
        with (work / "demo_runs.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"label": label, "seed": seed, **doc}) + "\n")
    print("\n| configuration | seed | total | training | untrained FNR / F2 / mAP | always | coarse | uprm |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print()
    print(wins(docs))


if __name__ == "__main__":
    sys.exit(main())
