"""Running the grid: each run's stage 1 (shared), training and evaluation, resumable.

A run's folder is ``OUT/<variant>/seed<k>/``:

- ``run.json``: what the run is (its training and evaluation settings); a rerun with
  other training settings is refused for that run (its folder would mix two
  experiments); other evaluation settings only redo the evaluation;
- ``start/`` (only with expert options): the untrained model built with them —
  ``uprm train`` has no expert-options setting, so such runs start from this checkpoint
  with ``init`` (the same weights a fresh run would draw, since every initialisation
  comes from the model seed);
- ``pretune/``: the stage-1 run (when this run owns it; others use the owner's);
- ``train/``: the ``uprm train`` run directory; ``eval/``: the ``uprm eval`` folder,
  with ``videos.json`` (the per-video units the ablation's intervals and paired
  comparisons are computed from, :mod:`uprm.ablation.effects`);
- ``log.txt``: everything the run printed (training's announcements, warnings, the
  traceback of a failure).

A finished step is never redone: a training run with ``summary.json`` and its model, an
evaluation with ``report.json`` and ``videos.json`` (an evaluation made before
evaluations wrote their units is scored again from its ``clips.jsonl``: the model
answers nothing again and nothing is retrained). A training run killed half-way resumes
from its last checkpoint; an evaluation from its ``clips.jsonl``. A failure is caught, written to the
run's log and reported; the other runs go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.ablation.config import AblationConfig
from uprm.ablation.plan import Plan, RunPlan
from uprm.errors import AblationRunError

__all__ = ["RunResult", "build_start", "eval_settings", "execute", "final_loss", "pretune_settings", "run_all",
           "run_spec", "train_settings"]

SPEC_FILE = "run.json"
LOG_FILE = "log.txt"


@dataclass
class RunResult:
    """What happened to a run: ``status`` is ``done`` (finished before, nothing run),
    ``ran`` or ``failed`` (``stage`` and ``error`` say where and why)."""

    run: RunPlan
    status: str
    seconds: float = 0.0
    stage: str | None = None
    error: str | None = None
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.run.variant, "seed": self.run.seed, "dir": str(self.run.dir), "status": self.status,
                "seconds": round(self.seconds, 3), "stage": self.stage, "error": self.error,
                "log": str(self.run.dir / LOG_FILE)}


# ---------------------------------------------------------------------- settings
def _absolute(files: list[str]) -> list[str]:
    return [str(Path(f).resolve()) for f in files]


def train_settings(run: RunPlan, config: AblationConfig) -> dict[str, Any]:
    """The ``uprm.train`` settings of the run's stage 2 (DeepSVU instruction tuning)."""
    init = run.pretune_dir or run.start_dir
    return {**config.training, "stage": "deepsvu", "data": _absolute(config.train), "val": _absolute(config.val),
            "cache": run.cache, "out": str(run.train_dir), "experts": list(run.model.experts),
            "router": run.model.router, "init": str(init) if init else None, "seed": run.seed, "progress": False}


def pretune_settings(run: RunPlan, config: AblationConfig) -> dict[str, Any] | None:
    """The ``uprm.train`` settings of the run's stage-1 run (``None``: no stage 1)."""
    if run.pretune_dir is None or config.stage1 is None:
        return None
    return {**config.training, **config.stage1.settings, "stage": "pretune", "data": _absolute(config.stage1.data),
            "val": [], "cache": run.cache, "out": str(run.pretune_dir), "experts": list(run.model.experts),
            "router": run.model.router, "init": str(run.start_dir) if run.start_dir else None, "seed": run.seed,
            "progress": False}


def eval_settings(run: RunPlan, config: AblationConfig) -> dict[str, Any]:
    """The ``uprm.evaluate`` keyword arguments of the run (without ``overwrite``). A run's
    own report gets no intervals unless the grid's ``evaluation`` asks (``bootstrap``):
    the ablation's intervals pool the seeds (:mod:`uprm.ablation.effects`), and a report's
    own would cost 1,000 recomputations of its metrics per run."""
    return {"bootstrap": 0, **config.evaluation, "system": run.name, "progress": False}


def run_spec(run: RunPlan, config: AblationConfig) -> dict[str, Any]:
    """What defines the run's results: its model, training and evaluation settings
    (paths as absolute files; the cache and the output folders are left out)."""
    def drop(s: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if s is None else {k: v for k, v in s.items() if k not in ("cache", "out", "init", "progress")}

    return {"variant": run.variant, "seed": run.seed, "expert_options": run.model.expert_options,
            "train": drop(train_settings(run, config)), "pretune": drop(pretune_settings(run, config)),
            "evaluation": {**config.evaluation, "test": _absolute(config.test)}}


# ---------------------------------------------------------------------- steps
def _finished_training(folder: Path) -> bool:
    """``uprm train`` writes the final model into its run directory last (its
    checkpoints live in ``checkpoints/``)."""
    return (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()


def _has_work(run: RunPlan) -> bool:
    """Has the run made anything that its settings determine (a model, a training run)?"""
    made = [run.train_dir / "train_config.json", run.dir / "pretune" / "train_config.json"]
    return any(p.is_file() for p in made) or (run.start_dir is not None and run.start_dir.is_dir())


def _check_spec(run: RunPlan, config: AblationConfig) -> bool:
    """Write (or compare with) ``run.json``: a run that has made something with other
    training settings is refused; one that has made nothing (it failed before) takes the
    new settings. ``True`` when only the evaluation settings changed."""
    from uprm.utils import atomic_write_json, jsonable

    spec = jsonable(run_spec(run, config))
    path = run.dir / SPEC_FILE
    redo_eval = False
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in ("variant", "seed", "expert_options", "train", "pretune") if saved.get(k) != spec[k]]
        if changed and _has_work(run):
            raise AblationRunError(f"{run.dir} was made with other settings ({', '.join(changed)} differ); delete that "
                           "folder to run it again with these, or choose another --out")
        if not changed and saved.get("evaluation") == spec["evaluation"]:
            return False
        redo_eval = not changed
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, spec)
    return redo_eval


def build_start(run: RunPlan, config: AblationConfig) -> bool:
    """The untrained model with the run's expert options, saved as ``start/``."""
    if run.start_dir is None or (run.start_dir / "config.json").is_file():
        return False
    from uprm.modeling.model import build_model
    from uprm.training import make_config
    from uprm.training.build import model_config, resolve_config

    settings = {**train_settings(run, config), "init": None}
    cfg = resolve_config(make_config(**settings))
    model = build_model(model_config(cfg).replace(expert_options=run.model.expert_options))
    model.save_pretrained(run.start_dir)
    return True


def _train(settings: dict[str, Any]) -> bool:
    """Train unless finished; resume a run that was cut short. ``True`` if it trained."""
    from uprm.training import train

    out = Path(settings["out"])
    if _finished_training(out):
        return False
    if (out / "train_config.json").is_file():
        train(out=str(out), resume=True, progress=False)
    else:
        train(**settings)
    return True


def _evaluate(run: RunPlan, config: AblationConfig, overwrite: bool) -> tuple[dict[str, Any], bool]:
    from uprm.evaluation import evaluate
    from uprm.evaluation.intervals import UNITS_FILE

    report_path = run.eval_dir / "report.json"
    if report_path.is_file() and not overwrite:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        if not report.get("failed") and (run.eval_dir / UNITS_FILE).is_file():
            return report, False
        # an evaluation that left clips out is not finished: their clips are tried again; one without its
        # per-video units is scored again from its answers (clips.jsonl), to write them
    report = evaluate(str(run.train_dir), list(config.test), cache=run.cache, out=str(run.eval_dir),
                      overwrite=overwrite, **eval_settings(run, config))
    failed = report.get("failed") or []
    if failed:  # scores over part of the test data would not compare with the other runs'
        raise AblationRunError(f"{len(failed)} clip(s) of the test data failed, the first {failed[0]['clip']} "
                               f"({failed[0]['video']}): {failed[0]['error']}")
    return report, True


def _seed_cache(run: RunPlan, config: AblationConfig) -> None:
    """A variant cache starts with hard links to the grid cache's entries of the experts
    whose options the variant does not change (their features are the same)."""
    if run.cache is None or config.cache is None or run.cache == config.cache or not Path(config.cache).is_dir():
        return
    same = [e for e in run.model.experts if run.model.expert_options.get(e) == config.expert_options.get(e)]
    src, dst = Path(config.cache), Path(run.cache)
    for expert in same:
        for entry in src.glob(f"*/*/{expert}.safetensors"):
            target = dst / entry.relative_to(src)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(entry, target)
            except OSError:
                import shutil

                shutil.copy2(entry, target)


@contextlib.contextmanager
def _logged(path: Path) -> Iterator[Any]:
    """Everything printed inside goes to ``path`` (appended), not to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
        yield log


# ---------------------------------------------------------------------- one run
class _Stages:
    """The steps of one run, remembering which one is going on (for the failure report)."""

    def __init__(self, run: RunPlan, plan: Plan, failed_stage1: set[Path]) -> None:
        self.run, self.plan, self.config, self.failed_stage1 = run, plan, plan.config, failed_stage1
        self.stage = "settings"
        self.worked = False

    def go(self) -> dict[str, Any]:
        run, config = self.run, self.config
        new_eval = _check_spec(run, config)
        self.stage = "cache"
        _seed_cache(run, config)
        self.stage = "start"
        self.worked |= build_start(run, config)
        self._pretune()
        self.stage = "train"
        trained = _train(train_settings(run, config))
        self.stage = "eval"
        report, evaluated = _evaluate(run, config, overwrite=trained or new_eval)
        self.worked |= trained or evaluated
        return report

    def _pretune(self) -> None:
        settings = pretune_settings(self.run, self.config)
        if settings is None:
            return
        self.stage = "pretune"
        folder = Path(settings["out"])
        if folder in self.failed_stage1:
            raise AblationRunError(f"its stage-1 run {folder} failed (see the log of the run that owns it)")
        try:
            self.worked |= _train(settings)
        except Exception:
            self.failed_stage1.add(folder)
            raise


def execute(run: RunPlan, plan: Plan, failed_stage1: set[Path]) -> RunResult:
    """Run (or finish, or skip) one run of the grid; never raises for a failed run."""
    started = time.perf_counter()
    steps = _Stages(run, plan, failed_stage1)
    with _logged(run.dir / LOG_FILE):
        try:
            report = steps.go()
        except Exception as exc:
            traceback.print_exc()
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return RunResult(run, "failed", time.perf_counter() - started, steps.stage,
                             f"{type(exc).__name__}: {message}")
    status = "ran" if steps.worked else "done"
    return RunResult(run, status, time.perf_counter() - started, report=report)


def run_all(plan: Plan, echo: Callable[..., None]) -> list[RunResult]:
    """Every run of ``plan`` in order, a progress line each."""
    results, failed_stage1 = [], set()
    total = len(plan.runs)
    for i, run in enumerate(plan.runs, start=1):
        echo(f"[{i}/{total}] {run.name} ...", end="")
        result = execute(run, plan, failed_stage1)
        echo(" " + progress_text(result))
        results.append(result)
    return results


def progress_text(result: RunResult) -> str:
    """The end of a run's progress line."""
    if result.status == "failed":
        return f"FAILED at {result.stage} after {result.seconds:.0f} s: {result.error} (log: {result.to_dict()['log']})"
    rep = result.report or {}
    mean_ap = (rep.get("map") or {}).get("average")
    numbers = ", ".join(f"{name} {_num(value)}" for name, value in
                        (("FNR", rep.get("fnr")), ("F2", rep.get("f2")), ("mAP avg", mean_ap)))
    loss = final_loss(result.run.train_dir)
    what = "finished before" if result.status == "done" else f"done in {result.seconds:.0f} s"
    return f"{what}: final loss {_num(loss)}; {numbers}"


def _num(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f}"


def final_loss(folder: Path) -> float | None:
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("final_loss")
    except (OSError, ValueError):
        return None
