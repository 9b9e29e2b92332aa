"""The demo's models: the untrained UPRM, a coarse-only Video-LLaVA and the full UPRM,
all tiny, trained on one feature cache."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from uprm.demo.settings import DemoSettings

__all__ = ["MODELS", "TrainingProcess", "extract_cache", "fresh_run_dir", "train_config", "train_model",
           "untrained_model"]

#: the rows of the demo's table, in order
MODELS = ("untrained", "always", "coarse", "uprm")


def train_config(name: str, settings: DemoSettings, data: Path, cache: Path, out: Path, seed: int) -> Any:
    """The :class:`~uprm.training.TrainConfig` of the ``coarse`` (w/o UPE) or ``uprm``
    (every installed expert, trade-off router) run."""
    from uprm.plugins.manager import available_experts
    from uprm.training import make_config

    experts = ["coarse"] if name == "coarse" else sorted(available_experts())
    return make_config(
        data=[str(data)], cache=str(cache), out=str(out), tiny=True, experts=experts, router="tradeoff",
        expert_option=settings.options_for(experts), num_frames=settings.num_frames, max_steps=settings.steps,
        lr=settings.lr, batch_size=settings.batch_size, warmup_ratio=settings.warmup_ratio,
        save_every=settings.steps, keep_last=1, seed=seed, model_seed=seed, progress=False, cpu=True,
        mixed_precision="no")


def untrained_model(settings: DemoSettings, data: Path, cache: Path, out: Path, seed: int) -> Any:
    """The full UPRM as training starts it (random adapters, router and language
    model); its experts also fill the feature cache."""
    from uprm.training.build import build_training_model, resolve_config

    model = build_training_model(resolve_config(train_config("uprm", settings, data, cache, out, seed)))
    return model.eval()


def extract_cache(model: Any, files: list[Path], cache: Path, num_frames: int) -> Any:
    """Every expert's features of every clip of ``files`` into ``cache`` (valid entries
    are kept); the coarse-only model reads the same coarse entries."""
    from uprm.data import FeatureCache, clip_keys_from_records, extract_features

    keys = clip_keys_from_records(files, num_frames)
    report = extract_features(keys, dict(model.block.experts), FeatureCache(cache), fail_fast=True, progress=False)
    return report


def fresh_run_dir(path: Path) -> None:
    """Remove an earlier demo's training run at ``path`` (the demo retrains every time);
    anything else there is an error rather than deleted."""
    if not path.exists():
        return
    if not (path / "train_config.json").is_file() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not a training run of an earlier demo; move it away")
    shutil.rmtree(path)


def train_model(config: Any, log: Callable[[str], None], every: int,
                on_step: Callable[[], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Train ``config``; ``log`` gets a line every ``every`` steps, ``on_step`` is called
    after every step (the demo relays the other process's lines there). Returns the run
    directory and ``{"final_loss", "steps"}``. The trainer's own report goes to
    ``RUN/announce.txt``."""
    import contextlib
    import io

    from uprm.training import Trainer

    fresh_run_dir(Path(config.out))
    start = time.perf_counter()
    last: dict[str, Any] = {}

    def report(_trainer: Any, record: dict[str, Any]) -> None:
        last.update(record)
        if on_step is not None:
            on_step()
        if record["step"] % every == 0 or record["step"] == config.max_steps:
            log(f"step {record['step']:>5}/{config.max_steps}  loss {record['loss']:.3f}  "
                f"({time.perf_counter() - start:.0f} s)")

    announce = io.StringIO()
    with contextlib.redirect_stdout(announce):
        run = Trainer(config, callbacks=[report]).fit()
    (run / "announce.txt").write_text(announce.getvalue(), encoding="utf-8")
    return run, {"final_loss": last.get("loss"), "steps": last.get("step"),
                 "expert_weights": last.get("expert_weights")}


def _train_in_process(name: str, settings: DemoSettings, data: Path, cache: Path, out: Path, seed: int, every: int,
                      messages: Any) -> None:
    """A second process's work (:class:`TrainingProcess`): train ``name`` and post its log
    lines, then ``("done", run, info, seconds)`` or ``("error", traceback)``, to ``messages``."""
    import traceback

    try:
        import torch

        if settings.threads:
            torch.set_num_threads(settings.threads)
        wall, cpu = time.perf_counter(), time.process_time()
        config = train_config(name, settings, data, cache, out, seed)
        run, info = train_model(config, lambda text: messages.put(("line", text)), every)
        took = {"seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}
        messages.put(("done", str(run), {"experts": config.experts, **info}, took))
    except BaseException:  # everything goes back to the parent, which raises it
        messages.put(("error", traceback.format_exc()))


class TrainingProcess:
    """One model trained in a second process (spawned: a fresh interpreter, one torch
    thread) while this one trains another. :meth:`lines` hands over its progress lines as
    they come; :meth:`result` waits for it and returns ``(run, info, seconds)``.
    """

    def __init__(self, name: str, settings: DemoSettings, data: Path, cache: Path, out: Path, seed: int,
                 every: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.name = name
        self._messages = context.Queue()
        self._process = context.Process(target=_train_in_process, name=f"uprm demo: train {name}", daemon=True,
                                        args=(name, settings, data, cache, out, seed, every, self._messages))
        self._process.start()
        self._pending: list[str] = []
        self._outcome: tuple | None = None

    def _take(self, block: bool) -> bool:
        """Read one message (waiting up to a second when ``block``); False when none came."""
        import queue

        try:
            message = self._messages.get(timeout=1.0) if block else self._messages.get_nowait()
        except queue.Empty:
            return False
        if message[0] == "line":
            self._pending.append(message[1])
        else:
            self._outcome = message
        return True

    def lines(self) -> list[str]:
        """The progress lines that arrived since the last call."""
        while self._outcome is None and self._take(block=False):
            pass
        out, self._pending = self._pending, []
        return out

    def result(self) -> tuple[Path, dict[str, Any], dict[str, float]]:
        """Wait for the process; its run directory, ``{"experts", "final_loss", "steps",
        ...}`` and its wall and CPU seconds. Raises :class:`RuntimeError` with the
        process's traceback when training failed there, or when it died without a word."""
        while self._outcome is None:
            if not self._take(block=True) and not self._process.is_alive():
                while self._take(block=False):  # what it posted just before it ended
                    pass
                if self._outcome is None:
                    raise RuntimeError(f"training {self.name} in a second process: it ended with exit code "
                                       f"{self._process.exitcode} and no result")
        self._process.join()
        if self._outcome[0] == "error":
            raise RuntimeError(f"training {self.name} in a second process failed:\n{self._outcome[1]}")
        _, run, info, took = self._outcome
        return Path(run), info, took
