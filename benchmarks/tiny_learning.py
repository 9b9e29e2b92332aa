"""What makes the tiny model learn: the `--tiny` settings against the alternatives.

Renders a synthetic world, caches its features (`uprm extract --model tiny`), then
trains tiny runs with the same data, steps and batch (8); by default:

- ``tiny``           : ``uprm train --tiny`` — the whole tiny language model trained,
                       LoRA off, at the shipped tiny learning rate;
- ``lora-only@3e-4`` : the model of ``UPRMConfig.tiny()`` (LoRA on the language model +
                       its output head and final norm), lr 3e-4 — what a new user got before;
- ``tiny@1e-3``      : the whole language model at lr 1e-3.

``--only tiny@3e-4,tiny@1e-3`` picks others.

For each run it prints the loss curve (mean of each tenth of the steps) and, on the
training clips and on the held-out (val + test) clips, asks the identify and locate
questions and counts: answers in the question's own form (identify: "yes, ..." /
"no, ..."; locate: "the threat occurs ..." / "there is no threat ..."), and identify
answers that are right. One run of the script; figures go to docs/training.md.

    .venv/bin/python benchmarks/tiny_learning.py [--videos 40] [--steps 300] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("UPRM_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

IDENTIFY_FORMS = ("yes, there exists a threat", "no, there is no threat")
LOCATE_FORMS = ("the threat occurs", "there is no threat")


def build_world(work: Path, videos: int, experts: str, frames: int, seed: int) -> dict[str, Path]:
    from click.testing import CliRunner

    from uprm.cli import cli
    from uprm.synthetic import generate_world

    world = work / "world"
    generate_world(world, videos, seed=seed, progress=False, min_duration=8.0, max_duration=8.0, size=64)
    files = {s: world / "instructions" / f"synthetic_{s}.json" for s in ("train", "val", "test")}
    args = ["extract", "--model", "tiny", "--experts", experts, "--num-frames", str(frames), "--out",
            str(work / "cache"), "--quiet"]
    for f in files.values():
        args += ["--data", str(f)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return files


def lora_only_init(work: Path, experts: list[str], frames: int) -> Path:
    from uprm import UPRMConfig, build_model

    path = work / "lora-only-init"
    build_model(UPRMConfig.tiny(experts=experts, num_frames=frames)).save_pretrained(path)
    return path


def answer_forms(run: Path, files: list[Path], cache: Path, frames: int) -> dict[str, float]:
    """Shares of identify / locate answers in their own form, and identify accuracy."""
    import torch

    from uprm import UPRMModel
    from uprm.data import InstructionDataset, UPRMCollator

    model = UPRMModel.from_pretrained(run).eval()
    data = InstructionDataset([str(f) for f in files], model.block, str(cache), num_frames=frames,
                              tasks=["identify", "locate"])
    collate = UPRMCollator(model.collate, None, with_answers=False)
    counts = {"identify_form": 0, "identify_right": 0, "identify": 0, "locate_form": 0, "locate": 0}
    examples: dict[str, str] = {}
    for start in range(0, len(data), 16):
        items = [data[i] for i in range(start, min(start + 16, len(data)))]
        batch = collate(items)
        with torch.no_grad():
            texts = model.generate(batch["features"], batch["questions"], max_new_tokens=24).texts
        for item, text in zip(items, texts):
            said, truth = text.lower().strip(), (item["answer"] or "").lower()
            task = item["task"]
            counts[task] += 1
            examples.setdefault(task, f"{item['answer']!r} -> {text!r}")
            forms = IDENTIFY_FORMS if task == "identify" else LOCATE_FORMS
            counts[f"{task}_form"] += said.startswith(forms)
            if task == "identify":
                counts["identify_right"] += said[:3] == truth[:3]
    return {
        "identify in its form": counts["identify_form"] / max(1, counts["identify"]),
        "identify right": counts["identify_right"] / max(1, counts["identify"]),
        "locate in its form": counts["locate_form"] / max(1, counts["locate"]),
        "examples": examples,
    }


def curve(run: Path, parts: int = 10) -> list[float]:
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    size = max(1, len(losses) // parts)
    return [round(sum(losses[i : i + size]) / len(losses[i : i + size]), 3) for i in range(0, len(losses), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--experts", default="coarse")
    parser.add_argument("--work", type=Path, default=None, help="keep the world, cache and runs here")
    parser.add_argument("--only", default=None,
                        help="comma list of runs: tiny (the shipped --tiny settings), tiny@LR, lora-only@LR")
    parser.add_argument("--world-seed", type=int, default=11)
    parser.add_argument("--seed", type=int, default=0, help="training seed (data order)")
    args = parser.parse_args()
    import uprm

    work = args.work or Path(tempfile.mkdtemp(prefix="uprm-tiny-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = build_world(work, args.videos, args.experts, args.frames, args.world_seed)
    experts = args.experts.split(",")
    print(f"world of {args.videos} videos + cache in {time.perf_counter() - t0:.0f} s ({work})")
    common = {"data": [str(files["train"])], "cache": str(work / "cache"), "num_frames": args.frames,
              "batch_size": 8, "max_steps": args.steps, "save_every": args.steps, "progress": False,
              "experts": experts}
    chosen = args.only.split(",") if args.only else ["tiny", "lora-only@3e-4", "tiny@1e-3"]
    rows = {}
    for name in chosen:
        kind, _, lr = name.partition("@")
        settings = {"tiny": True} if kind == "tiny" else {
            "init": str(lora_only_init(work, experts, args.frames)), "experts": None}
        if lr:
            settings["lr"] = float(lr)
        out = work / "runs" / name
        t = time.perf_counter()
        uprm.train(out=str(out), **{**common, **settings, "seed": args.seed})
        seconds = time.perf_counter() - t
        rows[name] = {
            "seconds": round(seconds, 1),
            "curve": curve(out),
            "train clips": answer_forms(out, [files["train"]], work / "cache", args.frames),
            "held-out clips": answer_forms(out, [files["val"], files["test"]], work / "cache", args.frames),
        }
        print(f"\n== {name}: {args.steps} steps in {seconds:.0f} s; loss by tenths {rows[name]['curve']}")
        for split in ("train clips", "held-out clips"):
            shares = {k: v for k, v in rows[name][split].items() if k != "examples"}
            print(f"   {split}: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
            for task, example in rows[name][split]["examples"].items():
                print(f"      {task}: {example}")
    (work / "tiny_learning.json").write_text(json.dumps(rows, indent=2))
    print(f"\nfigures: {work / 'tiny_learning.json'}")


if __name__ == "__main__":
    sys.exit(main())
