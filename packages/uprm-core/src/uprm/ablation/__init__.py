"""The paper's ablation grid (Tables 1-2, Fig. 9) through training and evaluation:
``uprm ablate --config grid.yaml`` and :func:`ablate`.

>>> import uprm
>>> result = uprm.ablate("examples/ablation.yaml", out="runs/ablation")   # doctest: +SKIP
>>> print(result["table"])                                                 # doctest: +SKIP

Variants (:mod:`uprm.ablation.plan`): ``full``, ``wo_pose``, ``wo_relation``,
``wo_background``, ``wo_upe`` (coarse only), ``wo_ptr`` (basic router), ``wo_pretune``
(no stage 1) and ``residual`` (the residual form of the pose and relation experts),
each at every seed of the grid. Runs live in ``OUT/<variant>/seed<k>/{pretune,train,
eval}`` (:mod:`uprm.ablation.runner`); a finished run is kept, a cut one resumes, a
failed one is reported while the others go on. The result: ``OUT/ablation.md``,
``ablation.csv``, ``ablation.json`` (each metric's mean over seeds with its 95 % interval
over videos and seeds, and each variant's paired difference from full with Holm-corrected
p-values and the probability of improvement: :mod:`uprm.ablation.table`,
:mod:`uprm.ablation.effects`), ``OUT/ablation_effects.png`` (those differences, a forest
plot) and ``OUT/convergence.png`` (the training losses overlaid). See docs/ablation.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from uprm.ablation.config import VARIANTS, AblationConfig, load_config
from uprm.ablation.errors import AblationError
from uprm.ablation.plan import LABELS, Plan, make_plan

__all__ = ["LABELS", "VARIANTS", "AblationConfig", "AblationError", "ablate", "describe_plan", "load_config",
           "make_plan"]


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def describe_plan(plan: Plan) -> list[dict[str, Any]]:
    """Every run of the plan with the settings it trains and evaluates with."""
    from uprm.ablation.runner import eval_settings, pretune_settings, train_settings

    out = []
    for run in plan.runs:
        item = run.describe()
        item.update(train=train_settings(run, plan.config), pretune=pretune_settings(run, plan.config),
                    evaluation=eval_settings(run, plan.config))
        out.append(item)
    return out


def _plan_lines(plan: Plan) -> list[str]:
    cfg = plan.config
    lines = [f"uprm ablate: {len(plan.runs)} run(s) of {len(plan.variants)} variant(s) x {len(cfg.seeds)} seed(s) "
             f"into {cfg.out}; experts {', '.join(plan.experts)}"
             + (f"; stage 1 on {len(cfg.stage1.data)} file(s)" if cfg.stage1 else "; no stage-1 data")]
    for run in plan.runs:
        stage1 = "-" if run.pretune_dir is None else ("trains " if run.pretune_owner else "uses ") + str(run.pretune_dir)
        options = f", options {run.model.expert_options}" if run.model.expert_options else ""
        lines.append(f"  {run.name}: experts {','.join(run.model.experts)}, router {run.model.router}{options}; "
                     f"stage 1: {stage1}")
    lines += [f"  skipped {s.variant}: {s.reason}" for s in plan.skipped]
    if plan.missing:
        lines.append(f"  warning: {', '.join(plan.missing)} not installed (see `uprm experts`): runs with them will fail")
    return lines


def _finished(results: list[Any]) -> list[tuple[str, int, Mapping[str, Any], float | None]]:
    from uprm.ablation.runner import final_loss

    return [(r.run.variant, r.run.seed, r.report, final_loss(r.run.train_dir)) for r in results
            if r.status != "failed" and r.report is not None]


def _notes(plan: Plan, failures: list[dict[str, Any]]) -> list[str]:
    notes = [f"{s.variant} skipped: {s.reason}" for s in plan.skipped]
    notes += [f"{f['variant']}/seed{f['seed']} failed at {f['stage']}: {f['error']}" for f in failures]
    return notes


def _effects(plan: Plan, results: list[Any], echo: Callable[..., None]) -> tuple[Any, list[str]]:
    """The intervals and differences from full of the finished runs
    (:func:`uprm.ablation.effects.measure`), or ``None`` and a note saying why not."""
    from uprm.ablation.effects import measure, read_units
    from uprm.metrics.uncertainty import Bootstrap

    cfg = plan.config
    finished = [(r.run.variant, r.run.seed, r.run.eval_dir) for r in results
                if r.status != "failed" and r.report is not None]
    if not finished:
        return None, []
    units, missing = read_units(finished)
    if missing:
        return None, ["no intervals or differences from full: these evaluations have no per-video units "
                      f"(videos.json): {', '.join(missing)}"]
    spec = Bootstrap(samples=cfg.bootstrap, seed=cfg.bootstrap_seed)
    effects = measure(units, spec, permutations=cfg.permutations, order=plan.variants)
    if spec.enabled:
        echo(f"intervals: {spec.samples} resamples of {len(effects.videos)} videos and the seeds, "
             f"{effects.permutations} permutations per difference from full: {effects.seconds:.1f} s")
    return effects, []


def _effects_figure(out: Path, effects: Any, columns: list[Any]) -> Path | None:
    """``ablation_effects.png`` (an old one goes when there is nothing to draw: it would
    not be this table's)."""
    from uprm.ablation.forest import plot_effects

    path = out / "ablation_effects.png"
    drawn = None if effects is None else plot_effects(effects, [(c.key, c.header) for c in columns], LABELS, path)
    if drawn is None:
        path.unlink(missing_ok=True)
    return drawn


def _finish(plan: Plan, results: list[Any], echo: Callable[..., None]) -> dict[str, Any]:
    from uprm.ablation.convergence import plot_convergence
    from uprm.ablation.table import aggregate, markdown, write_tables

    out = Path(plan.config.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [r.to_dict() for r in results]
    failures = [r for r in runs if r["status"] == "failed"]
    columns, rows = aggregate(_finished(results), plan.variants)
    effects, why_not = _effects(plan, results, echo)
    notes = _notes(plan, failures) + why_not
    extra = {"runs": runs, "failures": failures, "skipped": [vars(s) for s in plan.skipped],
             "experts": plan.experts, "config": plan.config.to_dict()}
    files = write_tables(out, columns, rows, notes, extra, effects)
    effects_png = _effects_figure(out, effects, columns)
    if effects_png is not None:
        files["effects"] = effects_png
    curves = [(row.label, [out / row.variant / f"seed{s}" / "train" for s in row.seeds]) for row in rows]
    figure = plot_convergence(curves, out / "convergence.png")
    if figure is not None:
        files["figure"] = figure
    table = markdown(columns, rows, notes, effects)
    echo("\n" + table, end="")
    echo("wrote " + ", ".join(str(p) for p in files.values()))
    return {"out": str(out), "table": table, "columns": [vars(c) for c in columns],
            "rows": [r.to_dict(columns, effects) for r in rows], "files": {k: str(v) for k, v in files.items()},
            **({"bootstrap": effects.settings()} if effects is not None else {}), **extra}


def ablate(config: str | os.PathLike | Mapping[str, Any] | AblationConfig, *, dry_run: bool = False,
           quiet: bool = False, **overrides: Any) -> dict[str, Any]:
    """Run the ablation grid of ``config`` (a YAML/JSON file, a mapping or an
    :class:`AblationConfig`; ``overrides`` such as ``out``, ``variants``, ``seeds`` on
    top) through training and evaluation, and write its table and figure.

    Returns ``{"out", "table" (Markdown), "columns", "rows" (per variant: seeds, each
    metric's mean, std, n, values and 95 % ``ci``; ``intervals``, ``vs_full`` (``delta`` =
    variant − full, ``ci``, ``p``, ``p_holm``) and ``p_improvement``), "bootstrap",
    "runs" (per run: status ``ran``/``done``/``failed``, seconds, stage, error, log),
    "failures", "skipped", "files", ...}``. ``overrides`` include ``bootstrap``
    (resamples, 1000; 0: no intervals), ``bootstrap_seed`` and ``permutations``.
    With ``dry_run``: ``{"plan": [...], "skipped": [...], "experts": [...]}`` and nothing
    is run. Prints a progress line per run and the table unless ``quiet``.
    """
    from uprm.ablation.runner import run_all

    def echo(*args: Any, **kwargs: Any) -> None:
        if not quiet:
            print(*args, **kwargs, flush=True)

    cfg = load_config(config, **overrides)
    plan = make_plan(cfg)
    echo("\n".join(_plan_lines(plan)))
    if dry_run:
        return {"out": cfg.out, "plan": describe_plan(plan), "skipped": [vars(s) for s in plan.skipped],
                "experts": plan.experts, "missing": plan.missing}
    with _threads(cfg.threads):
        results = run_all(plan, echo)
    return _finish(plan, results, echo)
