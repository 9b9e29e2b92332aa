"""What the physical-world experts cost on top of Video-LLaVA.

1. Measured, tiny model, equal dims: forward + backward time of a training step of a
   coarse-only model (w/o UPE, plain Video-LLaVA) against the model with every installed
   expert, on features of a synthetic-world clip (perception cached, as in training).
2. Counted, the paper's real dims (Video-LLaVA-7B: D = 4096, 8 frames × 257 tokens =
   2056 video tokens): FLOPs of one forward of each fine expert's adapter and the
   router, against the FLOPs of the language model (Vicuna-7B, counted on the meta
   device, no weights needed) and of the video tower (CLIP ViT-L/14, 8 frames). The
   goal is an overhead of at most 15 %.

    python benchmarks/model_overhead.py [--steps 20] [--batch 4] [--skip-real]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from torch.utils.flop_counter import FlopCounterMode

import uprm
from uprm.data import clip_keys_from_records, load_clip_for
from uprm.modeling import UPRMConfig, build_model
from uprm.synthetic import generate_world

REAL = {"hidden": 4096, "frames": 8, "tokens_per_frame": 257, "text_tokens": 64}


def world_clip(tmp: Path, num_frames: int):
    """A clip of the synthetic world, with its keypoint and scene-graph files."""
    generate_world(tmp / "world", num_videos=4, seed=0, progress=False)
    files = sorted((tmp / "world" / "instructions").glob("*.json"))
    keys = clip_keys_from_records(files, num_frames)
    return load_clip_for(keys[0])


def step_time(model, clips, batch: int, steps: int) -> float:
    features = model.collate([model.extract(clips[i % len(clips)]) for i in range(batch)])
    inputs = model.tokenize(["locate"] * batch, ["The threat occurs between 2 and 5 seconds."] * batch,
                            model.config.num_frames)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    model.train()
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad()
        model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).loss.backward()
        opt.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measured(args, clip) -> None:
    installed = list(uprm.available_experts())
    print(f"\n== 1. training step, tiny model (D=64, {args.frames} frames x 17 tokens), batch {args.batch}")
    rows = []
    for experts in (["coarse"], installed):
        model = build_model(UPRMConfig.tiny(experts=experts, num_frames=args.frames))
        t = step_time(model, [clip], args.batch, args.steps)
        rows.append((",".join(model.expert_names), t, model.num_parameters(trainable_only=True)))
        print(f"  {rows[-1][0]:<40} {t * 1000:8.1f} ms/step   trainable {rows[-1][2]:>9,}")
    print(f"  ratio all experts / coarse only: {rows[1][1] / rows[0][1]:.2f}x")


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def llm_flops(seq: int) -> int:
    """One forward of Vicuna-7B (Video-LLaVA's language model) over ``seq`` tokens: one
    decoder layer counted on the meta device (no weights), times 32, plus the LM head."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096)
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        layer = LlamaDecoderLayer(cfg, 0)
        hidden = torch.zeros(1, seq, cfg.hidden_size)
        rotary = LlamaRotaryEmbedding(cfg)(hidden, torch.arange(seq)[None])
    with torch.no_grad():
        per_layer = count_flops(lambda: layer(hidden, attention_mask=None, position_embeddings=rotary))
    return per_layer * cfg.num_hidden_layers + 2 * seq * cfg.hidden_size * cfg.vocab_size


def real_dims(args, clip) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    d, f, tpf = REAL["hidden"], REAL["frames"], REAL["tokens_per_frame"]
    t = f * tpf
    print(f"\n== 2. FLOPs of one forward at the real dims (D={d}, {f} frames x {tpf} = {t} video tokens)")
    ctx = uprm.ExpertContext(hidden_size=d, num_frames=f, tokens_per_frame=tpf, image_size=224)
    tokens = torch.randn(1, t, d)
    fine = [n for n, cls in uprm.available_experts().items() if cls.granularity == "fine"]
    adapters = 0
    for name in fine:
        torch.manual_seed(0)
        # adapters are measured; the background expert's SAM is a random stand-in, asked for explicitly
        options = {"random_encoder": True} if name == "background" else {}
        expert = uprm.get_expert_class(name)(ctx, **options).eval()
        features = expert.collate([expert.extract(clip)])
        t0 = time.perf_counter()
        with torch.no_grad():
            flops = count_flops(lambda e=expert, x=features: e(x, tokens))
        adapters += flops
        params = sum(p.numel() for n, p in expert.named_parameters()
                     if not any(n.startswith(q + ".") for q in expert.perception_names))
        print(f"  {name:<12} adapter {flops / 1e9:9.1f} GFLOPs   {params / 1e6:7.1f} M params"
              f"   ({time.perf_counter() - t0:.1f} s on this CPU)")
        del expert
    router = uprm.TradeoffRouter(d, len(fine))
    with torch.no_grad():
        r = count_flops(lambda: router(tokens, [tokens] * len(fine), tokens))
    print(f"  {'router':<12}         {r / 1e9:9.1f} GFLOPs")
    overhead = adapters + r

    seq = t + REAL["text_tokens"]
    lm = llm_flops(seq)
    with torch.device("meta"):
        tower = CLIPVisionModel(CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                                 num_attention_heads=16, image_size=224, patch_size=14))
        pixels = torch.zeros(f, 3, 224, 224)
    with torch.no_grad():
        vt = count_flops(lambda: tower(pixel_values=pixels))
    print(f"  {'LLM 7B':<12}         {lm / 1e9:9.1f} GFLOPs   ({seq} tokens)")
    print(f"  {'video tower':<12}         {vt / 1e9:9.1f} GFLOPs   (ViT-L/14, {f} frames)")
    print(f"  overhead (adapters + router) / LLM               = {100 * overhead / lm:5.1f} %   (goal <= 15 %)")
    print(f"  overhead (adapters + router) / (LLM + tower)     = {100 * overhead / (lm + vt):5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--skip-real", action="store_true", help="skip the FLOP count at the 7B dims")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; experts: {', '.join(uprm.available_experts())}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = world_clip(Path(tmp), args.frames)
        print(f"clip: {clip}")
        measured(args, clip)
        if not args.skip_real:
            real_dims(args, clip)


if __name__ == "__main__":
    main()
