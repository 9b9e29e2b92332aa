"""``uprm train``: both training stages, from flags and/or a YAML run file."""

from __future__ import annotations

from typing import Any

import click

from uprm.moe.names import ROUTER_NAMES
from uprm.training.config import PAPER_LR, TINY_LR, TrainConfig

_D = TrainConfig()


def _default(name: str) -> str:
    return f"  [default: {getattr(_D, name)}]"


# (flags, field, click keyword arguments); defaults are TrainConfig's (the paper's)
_OPTIONS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("--stage",), "stage", {"type": click.Choice(["pretune", "deepsvu"]),
                             "help": "pretune = stage 1 (physical-world instructions: RefCOCO, HumanML3D, RSI-CB); "
                                     "deepsvu = stage 2 (identify / locate / attribute)." + _default("stage")}),
    (("--data",), "data", {"multiple": True, "type": click.Path(dir_okay=False),
                           "help": "Instruction JSON to train on (`uprm data ...`); repeat for several."}),
    (("--val",), "val", {"multiple": True, "type": click.Path(dir_okay=False),
                         "help": "Instruction JSON whose loss is evaluated every --eval-every steps and at the end."}),
    (("--cache",), "cache", {"type": click.Path(file_okay=False),
                             "help": "Feature cache from `uprm extract`; clips missing from it are extracted online "
                                     "once and written back. Without it every clip is extracted at every visit."}),
    (("--experts",), "experts", {"help": "Comma list of experts (see `uprm experts`); coarse is always added. "
                                         "[default: every installed expert, or --init's]"}),
    (("--expert-option",), "expert_option", {"multiple": True, "metavar": "NAME.KEY=VALUE",
                                             "help": "An expert's option, as `uprm extract` takes it (e.g. "
                                                     "pose.weights=yolo11n-pose.pt); repeatable. With --init, "
                                                     "merged onto the checkpoint's."}),
    (("--router",), "router", {"type": click.Choice(list(ROUTER_NAMES)),
                               "help": "tradeoff = UPRM (eq.6 + z-loss); basic = w/o PTR. "
                                       "[default: tradeoff, or --init's]"}),
    (("--router-norm/--no-router-norm",), "router_norm",
     {"help": "A LayerNorm without parameters on the router's input (the coarse tokens), so that it routes by "
              "their direction, not their scale: a departure from eq.6 (docs/design.md). [default: off, or "
              "--init's]"}),
    (("--backbone",), "backbone", {"metavar": "PATH|HUB_ID",
                                   "help": "Video-LLaVA in the transformers layout: a local directory, or a hub id "
                                           "(LanguageBind/Video-LLaVA-7B-hf) that transformers resolves: from its "
                                           "cache, or downloaded when online; with UPRM_OFFLINE=1 the cache "
                                           "only."}),
    (("--tiny",), "tiny", {"is_flag": True,
                           "help": "The tiny random backbone with the tiny settings: its whole language model is "
                                   f"trained (LoRA off) at lr {TINY_LR:g} (measured; docs/training.md)."}),
    (("--init",), "init", {"type": click.Path(file_okay=False), "metavar": "DIR",
                           "help": "Start from this checkpoint (e.g. the pre-tuning run) with its experts and "
                                   "router. Leave it out for 'w/o pre-tuning'."}),
    (("--train-projector/--freeze-projector",), "train_projector",
     {"help": "Train the projector (the coarse expert's adapter) in this stage, as Video-LLaVA's recipe does, or "
              "keep it as it starts (e.g. as stage 1 left it; docs/training.md)." + _default("train_projector")}),
    (("--out",), "out", {"type": click.Path(file_okay=False), "help": "The run directory (required)."}),
    (("--max-steps",), "max_steps", {"type": click.IntRange(min=1),
                                     "help": "Optimizer steps (overrides --epochs). [default: from --epochs]"}),
    (("--epochs",), "epochs", {"type": click.FloatRange(min=0, min_open=True),
                               "help": "Passes over the training data." + _default("epochs")}),
    (("--lr",), "lr", {"type": click.FloatRange(min=0, min_open=True),
                       "help": f"Peak learning rate (AdamW). [default: {PAPER_LR:g}; {TINY_LR:g} with --tiny]"}),
    (("--block-lr",), "block_lr", {"type": click.FloatRange(min=0, min_open=True),
                                   "help": "Peak learning rate of the UPE block (the experts' adapters, the "
                                           "coarse projector, the router). [default: --lr]"}),
    (("--batch-size",), "batch_size", {"type": click.IntRange(min=1),
                                       "help": "Effective batch per optimizer step, over all processes and "
                                               "accumulation steps." + _default("batch_size")}),
    (("--grad-accum",), "grad_accum", {"type": click.IntRange(min=1),
                                       "help": "Accumulation steps; micro-batch = batch-size / (grad-accum x "
                                               "processes)." + _default("grad_accum")}),
    (("--warmup-ratio",), "warmup_ratio", {"type": click.FloatRange(0, 1, max_open=True),
                                           "help": "Share of the steps with linear warm-up." + _default(
                                               "warmup_ratio")}),
    (("--scheduler",), "scheduler", {"type": click.Choice(["cosine", "linear", "constant"]),
                                     "help": "Decay after warm-up." + _default("scheduler")}),
    (("--weight-decay",), "weight_decay", {"type": click.FloatRange(min=0),
                                           "help": "AdamW weight decay (not on biases and norms)." + _default(
                                               "weight_decay")}),
    (("--max-grad-norm",), "max_grad_norm", {"type": click.FloatRange(min=0),
                                             "help": "Gradient clipping (0 = off)." + _default("max_grad_norm")}),
    (("--lora-r",), "lora_r", {"type": click.IntRange(min=1), "help": "LoRA rank." + _default("lora_r")}),
    (("--lora-alpha",), "lora_alpha", {"type": click.IntRange(min=1), "help": "LoRA alpha." + _default("lora_alpha")}),
    (("--lora-dropout",), "lora_dropout", {"type": click.FloatRange(0, 1, max_open=True),
                                           "help": "LoRA dropout." + _default("lora_dropout")}),
    (("--lora-targets",), "lora_targets", {"metavar": "PRESET|REGEX",
                                           "help": "Layers given LoRA: all-linear, q_proj,v_proj, or a regex over "
                                                   "module names. [default: the model's, all-linear]"}),
    (("--z-loss-alpha",), "z_loss_alpha", {"type": click.FloatRange(min=0),
                                           "help": "alpha_z of L = L_ce + alpha_z L_z." + _default("z_loss_alpha")}),
    (("--num-frames",), "num_frames", {"type": click.IntRange(min=1),
                                       "help": "Frames per video clip (images are one)." + _default("num_frames")}),
    (("--save-every",), "save_every", {"type": click.IntRange(min=1),
                                       "help": "Checkpoint every N steps (and at the end)." + _default("save_every")}),
    (("--keep-last",), "keep_last", {"type": click.IntRange(min=1),
                                     "help": "Checkpoints kept." + _default("keep_last")}),
    (("--eval-every",), "eval_every", {"type": click.IntRange(min=0),
                                       "help": "Validation loss every N steps (0 = at the end only)." + _default(
                                           "eval_every")}),
    (("--resume",), "resume", {"is_flag": True,
                               "help": "Continue the run in --out from its last checkpoint (same data order); "
                                       "other flags may be left out and must not differ."}),
    (("--seed",), "seed", {"type": int, "help": "Data order and dropout." + _default("seed")}),
    (("--model-seed",), "model_seed", {"type": int,
                                       "help": "Random initialisation of the model (tiny backbone, new adapters); "
                                               "keep it equal to `uprm extract --seed`." + _default("model_seed")}),
    (("--mixed-precision",), "mixed_precision", {"type": click.Choice(["auto", "no", "bf16", "fp16"]),
                                                 "help": "auto = bf16 on a GPU that supports it, else off."
                                                         + _default("mixed_precision")}),
    (("--gradient-checkpointing/--no-gradient-checkpointing",), "gradient_checkpointing",
     {"help": "Recompute the language model's activations in the backward pass (less memory)."
              + _default("gradient_checkpointing")}),
    (("--cpu",), "cpu", {"is_flag": True, "help": "Train on the CPU even when a GPU is there."}),
    (("--num-workers",), "num_workers", {"type": click.IntRange(min=0),
                                         "help": "DataLoader worker processes." + _default("num_workers")}),
]


def _options(func):
    for flags, name, kwargs in reversed(_OPTIONS):
        func = click.option(*flags, name, default=None, **kwargs)(func)
    return func


@click.command("train")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A YAML (or JSON) run file of the same settings (keys as the flags, e.g. max-steps: 300); "
                   "flags override it.")
@_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, quiet: bool, **params: Any) -> None:
    """Train a UPRM model (stage 1 `--stage pretune` or stage 2 `--stage deepsvu`).

    Defaults are the paper's (§4.2): AdamW, lr 2e-5, warm-up ratio 0.03 then cosine,
    LoRA r 16 / alpha 32 / dropout 0.05 on the language model, effective batch 8,
    1 epoch, alpha_z 0.05. OUT receives the final model (loadable with
    UPRMModel.from_pretrained), log.jsonl (a record per optimizer step: step, loss,
    ce_loss, z_loss, lr, grad_norm, expert_weights), eval.jsonl, train_config.json,
    summary.json, checkpoints/ and tensorboard/.

    \b
    One process:   uprm train --tiny --data train.json --cache CACHE --out runs/a
    Several:       torchrun --nproc_per_node 2 -m uprm train ...   (CPU or GPUs)
                   accelerate launch --config_file docs/accelerate/ddp.yaml -m uprm train ...
    Resume:        uprm train --out runs/a --resume
    """
    from uprm.extras import require

    require("train", "accelerate", *(["yaml"] if config_file and not config_file.lower().endswith(".json") else []))
    from click.core import ParameterSource

    from uprm.errors import UPRMError
    from uprm.training import make_config
    from uprm.training.trainer import Trainer

    explicit = {name: value for name, value in params.items()
                if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    if quiet:
        explicit["progress"] = False
    try:
        config = make_config(config_file, **explicit)
        Trainer(config).fit()
    except (UPRMError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
