"""Training benchmarks: the feature cache's speed-up, peak memory per step, and the
arithmetic for the 7B backbone.

1. ``speed``   steps/s of the same tiny run (8 frames, batch 8) reading features from
               the cache vs extracting them online (decode + every expert's perception
               at every visit), for three sets of experts. Goal: >= 10x.
2. ``memory``  peak resident memory of a training step at the tiny dims and at
               scaled-up dims (each in a fresh process: RSS after set-up, peak RSS, and
               their difference = what a step adds: activations, gradients).
3. ``estimate`` FLOPs and memory of one training step of Video-LLaVA-7B with LoRA,
               bf16 and gradient checkpointing, and what fits on a 40 GB / 80 GB GPU.

    .venv/bin/python benchmarks/training.py [speed|memory|estimate ...] [--work DIR]

Prints the figures (benchmarks/README.md keeps the measured ones).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("UPRM_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# ---------------------------------------------------------------------- helpers
def _cli(*args: str) -> None:
    from click.testing import CliRunner

    from uprm.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if result.exit_code:
        raise SystemExit(result.output)


def _world(work: Path, videos: int = 16) -> Path:
    from uprm.synthetic import generate_world

    world = work / "world"
    if not (world / "instructions" / "synthetic_train.json").is_file():
        generate_world(world, videos, seed=5, progress=False, min_duration=8.0, max_duration=8.0)
    return world / "instructions" / "synthetic_train.json"


def _steps_per_second(run: Path) -> float:
    times = [json.loads(line)["time"] for line in (run / "log.jsonl").read_text().splitlines()]
    return (len(times) - 1) / (times[-1] - times[0])  # the first step (warm-up) left out


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------------- 1. speed
#: the configurations timed: experts and expert options of a tiny model (``--tiny``'s
#: training settings)
SPEED_CONFIGS = {
    "coarse only": (["coarse"], {}),
    "all experts (pose and relations from the sidecar files, a small random SAM)":
        (["background", "coarse", "pose", "relation"], {}),
    "coarse + pose running YOLO11n-pose (random, 320 px) on every frame":
        (["coarse", "pose"], {"pose": {"source": "yolo", "model_config": "yolo11n-pose.yaml", "imgsz": 320}}),
}


def _tiny_checkpoint(folder: Path, experts: list[str], options: dict) -> Path:
    """An untrained tiny model with ``--tiny``'s settings and these experts, saved."""
    from uprm import UPRMConfig, build_model
    from uprm.modeling.config import LoRASettings
    from uprm.training import TINY_TRAIN_MODULES

    config = UPRMConfig.tiny(experts=experts, expert_options=options, lora=LoRASettings(enabled=False),
                             train_modules=list(TINY_TRAIN_MODULES))
    build_model(config).save_pretrained(folder)
    return folder


def speed(work: Path, steps: int) -> dict[str, dict[str, float]]:
    import uprm

    data = _world(work)
    rows = {}
    for i, (name, (experts, options)) in enumerate(SPEED_CONFIGS.items()):
        init = _tiny_checkpoint(work / "speed" / f"model{i}", experts, options)
        cache = work / "speed" / f"cache{i}"
        _cli("extract", "--data", str(data), "--model", str(init), "--out", str(cache), "--quiet")
        rates = {}
        for how, folder in (("cache", str(cache)), ("online", None)):
            out = work / "speed" / f"run{i}-{how}"
            uprm.train(init=str(init), out=str(out), cache=folder, data=[str(data)], batch_size=8,
                       max_steps=steps, save_every=steps, progress=False)
            rates[how] = _steps_per_second(out)
        rates["speed-up"] = rates["cache"] / rates["online"]
        rows[name] = rates
        print(f"speed, {name} (8 frames, batch 8, {steps} steps): from the cache {rates['cache']:.2f} steps/s, "
              f"extracting online {rates['online']:.3f} steps/s -> {rates['speed-up']:.1f}x")
    return rows


# ---------------------------------------------------------------------- 2. memory
SCALES = {
    "tiny": {},
    "scaled": {"text_overrides": {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 4,
                                  "num_attention_heads": 8, "num_key_value_heads": 8},
               "vision_overrides": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4}},
}


def _memory_worker(work: Path, scale: str, steps: int) -> None:
    """In a fresh process: build the model of ``scale``, cache its features, train."""
    import torch

    import uprm
    from uprm import UPRMConfig, build_model
    from uprm.modeling.config import LoRASettings
    from uprm.training import TINY_TRAIN_MODULES

    data = _world(work)
    init = work / "memory" / f"{scale}-init"
    config = UPRMConfig.tiny(experts=["coarse"], lora=LoRASettings(enabled=False),
                             train_modules=list(TINY_TRAIN_MODULES), **SCALES[scale])
    build_model(config).save_pretrained(init)
    _cli("extract", "--data", str(data), "--model", str(init), "--out", str(work / "memory" / f"{scale}-cache"),
         "--quiet")
    marks = {}

    def watch(trainer, record):
        if record["step"] == 1:
            marks["after step 1"] = _rss_mib()
        marks["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if torch.cuda.is_available():
            marks["cuda peak"] = torch.cuda.max_memory_allocated() / 2**20

    out = work / "memory" / scale
    uprm.train(out=str(out), init=str(init), data=[str(data)], cache=str(work / "memory" / f"{scale}-cache"),
               batch_size=8, max_steps=steps, save_every=steps, progress=False, callbacks=[watch])
    summary = json.loads((out / "summary.json").read_text())
    print(json.dumps({"scale": scale, "parameters": summary["total_parameters"],
                      "trainable": summary["trainable_parameters"], **{k: round(v) for k, v in marks.items()}}))


def memory(work: Path, steps: int) -> list[dict]:
    rows = []
    for scale in SCALES:
        out = subprocess.run([sys.executable, __file__, "_memory", scale, "--work", str(work), "--steps", str(steps)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["step adds"] = row["peak"] - row["after step 1"]
        rows.append(row)
        cuda = f", CUDA peak {row['cuda peak']} MiB" if "cuda peak" in row else ""
        print(f"memory {scale}: {row['parameters']:,} parameters ({row['trainable']:,} trained), RSS after the "
              f"first step {row['after step 1']} MiB, peak {row['peak']} MiB (a step adds up to "
              f"{row['step adds']} MiB; CPU RSS, batch 8, 8 frames){cuda}")
    return rows


# ---------------------------------------------------------------------- 3. the 7B estimate
#: Video-LLaVA-7B: Vicuna-7B (32 layers, d 4096, MLP 11008, vocab 32000, 6.74 B parameters)
#: and two LanguageBind ViT-L/14 towers (image, video; 0.30 B each) at 224 px: 257 tokens
#: a frame with CLS, 8 frames -> 2056 video tokens, + about 64 prompt and answer tokens
LLM = {"layers": 32, "d": 4096, "mlp": 11008, "vocab": 32000, "params": 6.74e9}
FROZEN_EXTRA = {"two ViT-L/14 towers": 0.60e9, "SAM ViT-H image encoder": 0.632e9, "YOLO-pose + detector": 0.01e9}
TOKENS = 2056 + 64
GIB = 2**30


def _trained_parameters() -> dict[str, float]:
    d, mlp, r = LLM["d"], LLM["mlp"], 16
    per_layer = 4 * r * (d + d) + 2 * r * (d + mlp) + r * (mlp + d)  # all-linear LoRA: q k v o, gate up, down
    return {"LoRA r 16 (all linear layers)": LLM["layers"] * per_layer,
            "projector": 1024 * 4096 + 4096 * 4096, "pose adapter (model_dim 1024)": 26e6,
            "relation adapter": 5.8e6, "background adapter": 256 * 1024 + 1024 * 4096, "router": 4096 * 1024}


def estimate() -> dict[str, float]:
    """FLOPs and memory of one training step of the 7B model (arithmetic, printed)."""
    t, d, layers, mlp = TOKENS, LLM["d"], LLM["layers"], LLM["mlp"]
    trained = sum(_trained_parameters().values())
    forward = 2 * LLM["params"] * t + 4 * layers * t * t * d + 181e9  # matmuls + attention + adapters/router
    # backward: input gradients through the frozen weights ~ 1x forward (weight gradients
    # only for the few trained ones); gradient checkpointing recomputes the forward once
    flops = {"forward": forward, "step, checkpointing": 3 * forward, "step, no checkpointing": 2 * forward}
    fixed = {
        "frozen weights (bf16)": (LLM["params"] + sum(FROZEN_EXTRA.values())) * 2 / GIB,
        "trained: fp32 weights + grads + AdamW moments": trained * 16 / GIB,
        "CUDA context, workspaces": 1.5,
    }
    per_layer = t * (10 * d + 4 * mlp) * 2 / GIB  # one decoder layer's saved activations, bf16
    lora = t * (6 * d + mlp) * 3 / GIB  # LoRA dropout outputs (bf16) and masks, per layer
    logits = t * LLM["vocab"] * (2 + 4 + 4) / GIB  # bf16 logits, fp32 copy for the loss, its gradient
    per_sample = {
        "checkpointing": layers * t * d * 2 / GIB + per_layer + lora + logits,  # layer inputs + one layer redone
        "no checkpointing": layers * (per_layer + lora) + logits,
    }
    rows: dict[str, float] = {f"trained parameters, {k} (M)": v / 1e6 for k, v in _trained_parameters().items()}
    rows["trained parameters, total (M)"] = trained / 1e6
    rows.update({f"TFLOPs per sample, {k}": v / 1e12 for k, v in flops.items()})
    rows.update({f"GiB fixed, {k}": v for k, v in fixed.items()})
    rows.update({f"GiB per sample of the micro-batch, {k}": v for k, v in per_sample.items()})
    for gpu in (40, 80):
        usable = gpu * 1e9 / GIB * 0.9 - sum(fixed.values())  # 10 % allocator fragmentation
        for k, v in per_sample.items():
            rows[f"largest micro-batch on a {gpu} GB GPU, {k}"] = max(0, int(usable // v))
    for name, peak in (("A100", 312e12), ("H100 SXM", 989e12)):
        rows[f"seconds per sample on an {name} (bf16, 40 % of peak, checkpointing)"] = (
            flops["step, checkpointing"] / (0.4 * peak))
    for key, value in rows.items():
        print(f"7B estimate: {key:<72} {value:>10,.2f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["speed", "memory", "estimate"])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from uprm.offline import configure_offline

    configure_offline()
    work = args.work or Path(tempfile.mkdtemp(prefix="uprm-bench-training-"))
    if args.parts[:1] == ["_memory"]:
        return _memory_worker(work, args.parts[1], args.steps)
    started = time.perf_counter()
    for part in args.parts:
        {"speed": lambda: speed(work, args.steps), "memory": lambda: memory(work, args.steps),
         "estimate": estimate}[part]()
    print(f"({time.perf_counter() - started:.0f} s; work folder {work})")


if __name__ == "__main__":
    main()
