"""The training loop, on accelerate: one code path for a CPU, one GPU, several GPUs and
several nodes (DDP), and FSDP / DeepSpeed through an accelerate config file.

Per optimizer step, each process runs ``grad_accum`` micro-batches of its share of the
step's global batch (:mod:`uprm.training.sampler`), backpropagates ``loss / grad_accum``
(gradients synchronised on the last micro-batch only), clips the global gradient norm,
steps AdamW and the warm-up + cosine schedule, and the main process appends the step's
record to ``log.jsonl``. Checkpoints every ``save_every`` steps and at the end; the
final weights go to the run directory itself, loadable with
``UPRMModel.from_pretrained(run_dir)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from uprm.training.build import (
    build_training_model,
    keep_frozen_in_eval,
    parameter_report,
    resolve_config,
    trainable_parameters,
)
from uprm.training.checkpoint import (
    CheckpointError,
    capture_rng,
    latest_checkpoint,
    read_checkpoint,
    remove_partial,
    restore_rng,
    write_checkpoint,
)
from uprm.training.config import ConfigError, TrainConfig
from uprm.training.data import STAGE_TASKS, collator, load_run_data, model_inputs, train_loader
from uprm.training.runlog import RunLog
from uprm.training.sampler import BatchPlan, eval_batches, micro_batch_size
from uprm.utils import atomic_write_json

__all__ = ["CONFIG_FILE", "Trainer", "lr_factor"]

#: the resolved training configuration in the run directory
CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "summary.json"

Callback = Callable[["Trainer", dict[str, Any]], None]


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """The learning-rate multiplier of 0-based optimizer step ``step``: linear warm-up
    over ``warmup`` steps to the peak, then ``cosine`` / ``linear`` decay towards 0 at
    ``total``, or ``constant``."""
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress


class Trainer:
    """Train a UPRM model as ``config`` says. ``Trainer(config).fit()`` returns the run
    directory. ``callbacks`` are called on every process after each optimizer step with
    the trainer and the step's record (``trainer.model``, ``trainer.optimizer`` are
    live then)."""

    def __init__(self, config: TrainConfig, callbacks: Sequence[Callback] = ()) -> None:
        self.requested = config
        self.callbacks = list(callbacks)

    # ------------------------------------------------------------------ set-up
    def _accelerator(self):
        try:
            from accelerate import Accelerator
            from accelerate.utils import DistributedDataParallelKwargs
        except ImportError as exc:
            raise ConfigError("training needs accelerate: pip install 'uprm-core[train]'") from exc

        cfg = self.requested
        cpu = cfg.cpu or not torch.cuda.is_available()
        precision = cfg.mixed_precision
        if precision == "auto":
            precision = os.environ.get("ACCELERATE_MIXED_PRECISION") or (
                "bf16" if not cpu and torch.cuda.is_bf16_supported() else "no")
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        _reset_accelerator_settings()
        return Accelerator(cpu=cpu, mixed_precision=precision, kwargs_handlers=[ddp])

    def _check_run_dir(self) -> dict[str, Any] | None:
        """Refuse to overwrite a run; on resume refuse a changed config. Returns the
        checkpoint's content to resume from (``None`` = start at step 0)."""
        cfg, run = self.config, self.run_dir
        saved_path = run / CONFIG_FILE
        if not cfg.resume:
            if saved_path.exists() or latest_checkpoint(run) is not None:
                raise ConfigError(f"{run} already holds a training run ({CONFIG_FILE}); pass --resume to continue "
                                  "it, or choose another --out")
            return None
        if not saved_path.is_file():
            raise ConfigError(f"--resume: {run} holds no training run to continue ({CONFIG_FILE} is missing); "
                              "start it without --resume")
        saved = TrainConfig.load(_read_json(saved_path)["config"], saved_path)
        changed = cfg.differences(saved)
        if changed:
            detail = "; ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in changed)
            raise ConfigError(f"--resume: the configuration differs from the run's {saved_path} ({detail}); "
                              "resume with the same settings, or start a new run with another --out")
        ckpt = latest_checkpoint(run)
        return None if ckpt is None else read_checkpoint(ckpt, self.acc.process_index)

    def _setup(self) -> None:
        from accelerate.utils import set_seed

        self.acc = acc = self._accelerator()
        self.config = cfg = resolve_config(self.requested)
        self.run_dir = Path(cfg.out)
        resume_from = self._check_run_dir()
        acc.wait_for_everyone()  # every process has looked at the run directory before it changes
        set_seed(cfg.seed)
        self.model = build_training_model(cfg, dtype="bfloat16" if acc.mixed_precision == "bf16" else "float32")
        self.expert_names = list(self.model.expert_names)
        self.train_data = load_run_data(cfg.data, self.model, cfg.cache, cfg.num_frames)
        self.val_data = load_run_data(cfg.val, self.model, cfg.cache, cfg.num_frames) if cfg.val else None
        self.plan = BatchPlan(tuple(self.train_data.frame_counts), cfg.batch_size, seed=cfg.seed)
        self.micro = micro_batch_size(cfg.batch_size, cfg.grad_accum, acc.num_processes)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.plan.steps_per_epoch))
        self.warmup_steps = math.ceil(cfg.warmup_ratio * self.total_steps)
        if cfg.gradient_checkpointing:
            _checkpoint_activations(self.model.vlm)
        self._make_optimizer()
        self._keymap = _trainable_keymap(self.model)
        if self._sharded and cfg.grad_accum > 1 and "DEEPSPEED" in str(acc.distributed_type):
            raise ConfigError("with DeepSpeed use --grad-accum 1 (the micro-batch is then batch-size / processes)")
        self.start_step = self._resume(resume_from) if resume_from else 0
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_partial(self.run_dir)
            atomic_write_json(self.run_dir / CONFIG_FILE, self._run_record())
        acc.wait_for_everyone()
        self.model, self.optimizer = acc.prepare(self.model, self.optimizer)

    def _make_optimizer(self) -> None:
        cfg = self.config
        # (the UPE block or the rest) x (decayed or not): the block may have its own rate
        block_lr = cfg.block_lr if cfg.block_lr is not None else cfg.lr
        params: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
        for name, param in trainable_parameters(self.model):
            key = (name.startswith("block."), not (param.ndim < 2 or name.endswith(".bias")))
            params.setdefault(key, []).append(param)
        groups = [{"params": params.get((in_block, decayed), []), "lr": block_lr if in_block else cfg.lr,
                   "weight_decay": cfg.weight_decay if decayed else 0.0}
                  for in_block in (False, True) for decayed in (True, False)]
        self.param_names = [n for n, _ in trainable_parameters(self.model)]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, 0.999),
                                           eps=1e-8)
        total, warmup, kind = self.total_steps, self.warmup_steps, cfg.scheduler
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, total, warmup, kind))

    def _run_record(self) -> dict[str, Any]:
        acc = self.acc
        return {
            "config": self.config.to_dict(),
            "derived": {
                "world_size": acc.num_processes,
                "micro_batch_size": self.micro,
                "steps_per_epoch": self.plan.steps_per_epoch,
                "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps,
                "buckets": {str(k): v for k, v in self.plan.buckets.items()},
                "experts": self.expert_names,
                "mixed_precision": str(acc.mixed_precision),
                "device": str(acc.device),
                "distributed_type": str(acc.distributed_type),
            },
        }

    def _state(self, step: int) -> dict[str, Any]:
        spe = self.plan.steps_per_epoch
        return {"step": step, "epoch": step // spe, "step_in_epoch": step % spe, "steps_per_epoch": spe,
                "total_steps": self.total_steps, "plan": self.plan.fingerprint(), "data": self.train_data.fingerprint,
                "world_size": self.acc.num_processes, "param_names": self.param_names}

    def _resume(self, ckpt: dict[str, Any]) -> int:
        from safetensors.torch import load_file

        state = ckpt["trainer_state"]
        where = ckpt["weights"].parent
        if state.get("data") != self.train_data.fingerprint:
            raise CheckpointError(f"{where}: the training data changed since this checkpoint (its records differ); "
                                  "resume with the same instruction files")
        if state.get("plan") != self.plan.fingerprint() or state.get("param_names") != self.param_names:
            raise CheckpointError(f"{where}: the batch plan or the trained parameters differ from this run's")
        self.model.load_trainable_state_dict(load_file(str(ckpt["weights"])), source=str(ckpt["weights"]))
        if ckpt["optimizer"] is None:
            raise CheckpointError(f"{where}: no optimizer state (optimizer.pt; runs under FSDP / DeepSpeed do not "
                                  f"save it yet); continue with --init {where} in a new --out instead")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self._rng = ckpt["rng"]
        if self._rng is None:
            self.acc.print(f"warning: {where} holds no RNG state for process {self.acc.process_index} "
                           f"(it was written by {state.get('world_size')} processes); dropout will differ")
        if state.get("world_size") != self.acc.num_processes:
            self.acc.print(f"note: resuming a {state.get('world_size')}-process run on {self.acc.num_processes}")
        return int(state["step"])

    # ------------------------------------------------------------------ reporting
    def _announce(self) -> None:
        acc, cfg = self.acc, self.config
        if not acc.is_main_process:
            return
        unwrapped = acc.unwrap_model(self.model)
        report = parameter_report(unwrapped)
        lines = [
            f"uprm train: stage {cfg.stage}, model {_describe(unwrapped.config)}"
            + (f", init {cfg.init}" if cfg.init else ""),
            f"  experts {self.expert_names}, router {cfg.router}, z-loss alpha {cfg.z_loss_alpha}",
            f"  {len(self.train_data.dataset)} training items {dict(self.train_data.tasks)}, buckets (frames: items) "
            f"{self.plan.buckets}",
            f"  {acc.num_processes} process(es) on {acc.device}, mixed precision {acc.mixed_precision}; effective "
            f"batch {cfg.batch_size} = micro-batch {self.micro} x {cfg.grad_accum} accumulation x "
            f"{acc.num_processes} process(es)",
            f"  {self.total_steps} steps ({self.plan.steps_per_epoch} per epoch), warm-up {self.warmup_steps}, "
            f"lr {cfg.lr:g}" + (f" (UPE block {cfg.block_lr:g})" if cfg.block_lr is not None else "")
            + f" ({cfg.scheduler}), AdamW weight decay {cfg.weight_decay:g}",
            *report.lines(),
        ]
        if self.start_step:
            lines.append(f"  resuming at step {self.start_step} from {self.run_dir}")
        unexpected = set(self.train_data.tasks) - STAGE_TASKS[cfg.stage]
        if unexpected:
            lines.append(f"  note: tasks {sorted(unexpected)} are not the {cfg.stage} stage's "
                         f"({sorted(STAGE_TASKS[cfg.stage])})")
        print("\n".join(lines), flush=True)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> Path:
        """Train; return the run directory (the same on every process)."""
        self._setup()
        acc, cfg = self.acc, self.config
        if self.start_step >= self.total_steps:
            if acc.is_main_process and not (self.run_dir / "model.safetensors").is_file():
                acc.unwrap_model(self.model).save_pretrained(self.run_dir)  # killed between checkpoint and save
            acc.print(f"{self.run_dir}: the run is complete ({self.total_steps} steps); nothing to resume")
            return self.run_dir
        self._announce()
        loader = train_loader(self.train_data, acc.unwrap_model(self.model), self.plan, grad_accum=cfg.grad_accum,
                              world_size=acc.num_processes, rank=acc.process_index, start_step=self.start_step,
                              total_steps=self.total_steps, num_workers=cfg.num_workers)
        batches = iter(loader)  # before restoring the RNG: creating the iterator draws from it
        if getattr(self, "_rng", None) is not None:
            restore_rng(self._rng)
        self.log = RunLog(self.run_dir, enabled=acc.is_main_process, start_step=self.start_step,
                          total_steps=self.total_steps, progress=cfg.progress)
        self.model.train()
        keep_frozen_in_eval(self.model)
        self._started = time.perf_counter()
        last_saved = self.start_step
        try:
            for step in range(self.start_step, self.total_steps):
                record = self._step(step, batches)
                self.log.step(record)
                for callback in self.callbacks:
                    callback(self, record)
                done = step + 1
                if cfg.eval_every and done % cfg.eval_every == 0 and done < self.total_steps:
                    self._evaluate(done)
                if done % cfg.save_every == 0:
                    self._save(done)
                    last_saved = done
            if self.val_data is not None:
                self._evaluate(self.total_steps)
            if last_saved != self.total_steps:
                self._save(self.total_steps)
            self._finish()
        finally:
            self.log.close()
        return self.run_dir

    def _step(self, step: int, batches) -> dict[str, Any]:
        acc, cfg = self.acc, self.config
        parts = []
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            sync = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else acc.no_sync(self.model):
                out = self.model(**model_inputs(batch, acc.device))
                acc.backward(out.loss / cfg.grad_accum)
            parts.append(self._stats(out))
        norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm or float("inf"))  # None: DeepSpeed
        lr = cfg.lr * lr_factor(self.scheduler.last_epoch, self.total_steps, self.warmup_steps, cfg.scheduler)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats = acc.reduce(torch.stack(parts).mean(dim=0), reduction="mean").tolist()
        return {
            "step": step + 1,
            "loss": stats[0],
            "ce_loss": stats[1],
            "z_loss": stats[2],
            "lr": lr,
            "grad_norm": None if norm is None else float(norm),
            "expert_weights": dict(zip(self.expert_names, stats[3:])),
            "epoch": round((step + 1) / self.plan.steps_per_epoch, 4),
            "time": round(time.perf_counter() - self._started, 3),
        }

    @staticmethod
    def _stats(out) -> torch.Tensor:
        """``[loss, ce_loss, z_loss, weight of each expert]`` of one micro-batch."""
        loss = out.loss.detach().float().reshape(1)
        z = out.z_loss.detach().float().reshape(1) if out.z_loss is not None else torch.zeros_like(loss)
        weights = out.expert_weights.detach().float().mean(dim=(0, 1))
        return torch.cat([loss, out.ce_loss.detach().float().reshape(1), z, weights])

    @torch.no_grad()
    def _evaluate(self, step: int) -> dict[str, Any]:
        """Loss over the validation files (each item once over all processes)."""
        acc, data = self.acc, self.val_data
        model = acc.unwrap_model(self.model)
        collate = collator(model)
        model.eval()
        sums = torch.zeros(4, device=acc.device)
        for indices in eval_batches(data.frame_counts, self.micro, acc.num_processes, acc.process_index):
            batch = collate([data.dataset[i] for i in indices])
            with acc.autocast():
                out = model(**model_inputs(batch, acc.device))
            z = float(out.z_loss) if out.z_loss is not None else 0.0
            n = len(indices)
            sums += torch.tensor([float(out.loss) * n, float(out.ce_loss) * n, z * n, n], device=acc.device)
        self.model.train()
        keep_frozen_in_eval(self.model)
        total = acc.reduce(sums, reduction="sum").tolist()
        items = max(1.0, total[3])
        record = {"step": step, "eval_loss": total[0] / items, "eval_ce_loss": total[1] / items,
                  "eval_z_loss": total[2] / items, "items": int(total[3])}
        self.log.evaluation(record)
        return record

    @property
    def _sharded(self) -> bool:
        """FSDP / DeepSpeed: parameters or optimizer state live in shards across processes."""
        return str(self.acc.distributed_type).rsplit(".", 1)[-1] in ("FSDP", "DEEPSPEED")

    def _model_saver(self) -> Callable[[Path], Any]:
        """``save(folder)`` writing the trained weights and config (a collective call
        under FSDP / DeepSpeed: every process must call this method)."""
        model = self.acc.unwrap_model(self.model)
        if not self._sharded:
            return model.save_pretrained
        full = self.acc.get_state_dict(self.model)  # gathered onto the main process
        state = {key: full[name].detach().cpu().contiguous() for name, key in self._keymap.items() if name in full}

        def save(folder: Path) -> None:
            from safetensors.torch import save_file

            save_file(state, str(Path(folder) / "model.safetensors"), metadata={"format": "pt"})
            model.config.save_pretrained(folder)

        return save

    def _save(self, step: int) -> None:
        from accelerate.utils import gather_object

        acc = self.acc
        rngs = gather_object([capture_rng()])
        save_model = self._model_saver()
        if acc.is_main_process:
            optimizer = None if self._sharded else self.optimizer.state_dict()  # sharded: not resumable yet
            path = write_checkpoint(
                self.run_dir, step, save_model=save_model, optimizer_state=optimizer,
                scheduler_state=self.scheduler.state_dict(), rng_states=dict(enumerate(rngs)),
                trainer_state=self._state(step), keep_last=self.config.keep_last)
            self.log.message(f"step {step}: checkpoint {path}")
        acc.wait_for_everyone()

    def _finish(self) -> None:
        acc = self.acc
        save_model = self._model_saver()
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            save_model(self.run_dir)
            seconds = time.perf_counter() - self._started
            done = self.total_steps - self.start_step
            from uprm.training.runlog import read_jsonl

            log = read_jsonl(self.run_dir / "log.jsonl")
            report = parameter_report(model)
            atomic_write_json(self.run_dir / SUMMARY_FILE, {
                "steps": self.total_steps, "steps_this_session": done, "seconds_this_session": round(seconds, 3),
                "steps_per_second": round(done / seconds, 4) if seconds > 0 and done else None,
                "final_loss": log[-1]["loss"] if log else None,
                "trainable_parameters": report.trainable, "total_parameters": report.total,
                "world_size": acc.num_processes, "experts": self.expert_names,
            })
            self.log.message(f"done: {self.total_steps} steps; model saved to {self.run_dir}")
        acc.wait_for_everyone()


def _trainable_keymap(model: torch.nn.Module) -> dict[str, str]:
    """``{parameter name: key in trainable_state_dict()}`` (to pick the trained weights
    out of a full state dict gathered by FSDP / DeepSpeed)."""
    names = {p.data_ptr(): n for n, p in model.named_parameters()}
    return {names[t.data_ptr()]: k for k, t in model.trainable_state_dict().items() if t.data_ptr() in names}


def _describe(config: Any) -> str:
    """One line on what of the language model is trained."""
    name = "tiny" if config.backbone is None else config.backbone
    lora = config.lora
    how = f"LoRA r {lora.r} / alpha {lora.alpha} / dropout {lora.dropout:g}" if lora.enabled else "LoRA off"
    full = " + modules trained in full" if config.train_modules else ""
    if config.backbone is None and not lora.enabled:
        full = ", whole language model trained"
    return f"{name} ({how}{full})"


def _checkpoint_activations(vlm: torch.nn.Module) -> None:
    """Gradient checkpointing of the language model (non-reentrant: the inputs are
    embeddings that already carry gradients from the experts)."""
    kwargs = {"use_reentrant": False}
    if hasattr(vlm, "activation_checkpointing_enable"):  # transformers >= 5.x
        vlm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _reset_accelerator_settings() -> None:
    """Forget the precision etc. of an earlier run in this process (accelerate keeps
    them in a process-wide singleton and refuses a second ``Accelerator`` that differs),
    keeping the process group of a distributed launch."""
    from accelerate.state import AcceleratorState, GradientState

    for state in (AcceleratorState, GradientState):
        reset = getattr(state, "_reset_state", None)
        if reset is not None:
            reset()


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc


def settings_for_resume(settings: dict[str, Any], out: str | os.PathLike | None) -> TrainConfig | None:
    """On ``resume``, the run's saved configuration with ``settings`` applied on top
    (so ``uprm train --out RUN --resume`` needs no other flag); ``None`` otherwise."""
    if not settings.get("resume") or not out:
        return None
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        return None
    saved = TrainConfig.load(_read_json(path)["config"], path)
    return saved.replace(**{**settings, "resume": True})
