"""From a grid to runs: what each variant trains (experts, router, expert options,
stage 1 or not), which stage-1 runs are shared, where each run lives.

==================  ==========================================================  =========
variant             model                                                       stage 1
==================  ==========================================================  =========
``full``            every expert of the grid, trade-off router                  yes*
``wo_pose``         without the pose expert (HPE)                               yes*
``wo_relation``     without the relation expert (ORE)                           yes*
``wo_background``   without the background expert (VBE)                         yes*
``wo_upe``          the coarse expert only (plain Video-LLaVA)                  yes*
``wo_ptr``          every expert, basic router (soft MoE, no z-loss)            yes*
``wo_pretune``      as ``full``                                                 no
``residual``        as ``full``, ``pose.residual`` / ``relation.residual`` True  yes*
==================  ==========================================================  =========

\\* when the grid has stage-1 data. A variant that would drop an expert the grid does not
have (a plugin not installed), ``residual`` without a pose or relation expert, and
``wo_pretune`` without stage-1 data (it would be ``full`` again) are skipped with a note.
Stage 1 runs once per distinct (experts, router, expert options, seed): its folder is
``OUT/<first variant that needs it>/seed<k>/pretune`` and the others use it from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.ablation.config import AblationConfig

__all__ = ["LABELS", "RESIDUAL_EXPERTS", "Plan", "RunPlan", "Skipped", "make_plan", "variant_model"]

#: the table's name of each variant (the paper's row names, Tables 1-2)
LABELS = {
    "full": "UPRM (full)", "wo_pose": "w/o HPE (pose)", "wo_relation": "w/o ORE (relation)",
    "wo_background": "w/o VBE (background)", "wo_upe": "w/o UPE (coarse only)", "wo_ptr": "w/o PTR (basic router)",
    "wo_pretune": "w/o Pre-tuning", "residual": "residual fine experts",
}
#: the fine expert each ``wo_*`` variant drops
DROPS = {"wo_pose": "pose", "wo_relation": "relation", "wo_background": "background"}
#: the fine experts with a residual form (``residual=True``)
RESIDUAL_EXPERTS = ("pose", "relation")
COARSE = "coarse"


@dataclass(frozen=True)
class VariantModel:
    """What a variant trains: its experts, router, expert options, and stage 1 or not."""

    experts: tuple[str, ...]
    router: str
    expert_options: dict[str, dict[str, Any]]
    pretune: bool

    def key(self, seed: int) -> str:
        """What makes two stage-1 runs the same run."""
        return json.dumps([list(self.experts), self.router, self.expert_options, seed], sort_keys=True)


@dataclass
class RunPlan:
    """One run of the grid: a variant at a seed."""

    variant: str
    seed: int
    dir: Path
    model: VariantModel
    cache: str | None
    pretune_dir: Path | None = None  # the stage-1 run to start from (maybe another variant's)
    pretune_owner: bool = False  # this run trains that stage-1 run
    start_dir: Path | None = None  # an untrained model with the expert options (see runner)

    @property
    def name(self) -> str:
        return f"{self.variant}/seed{self.seed}"

    @property
    def train_dir(self) -> Path:
        return self.dir / "train"

    @property
    def eval_dir(self) -> Path:
        return self.dir / "eval"

    def describe(self) -> dict[str, Any]:
        return {"variant": self.variant, "seed": self.seed, "dir": str(self.dir),
                "experts": list(self.model.experts), "router": self.model.router,
                "expert_options": self.model.expert_options,
                "init": str(self.pretune_dir or self.start_dir) if (self.pretune_dir or self.start_dir) else None,
                "pretune": str(self.pretune_dir) if self.pretune_dir else None,
                "pretune_owner": self.pretune_owner, "start": str(self.start_dir) if self.start_dir else None,
                "cache": self.cache}


@dataclass
class Skipped:
    variant: str
    reason: str


@dataclass
class Plan:
    config: AblationConfig
    experts: list[str]
    runs: list[RunPlan] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # experts of the grid that are not installed

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.runs))


# ---------------------------------------------------------------------- the variants
def base_experts(config: AblationConfig, installed: dict[str, Any]) -> list[str]:
    """The full model's experts: the grid's ``experts`` or every installed one, with a
    coarse expert (as ``uprm train`` adds it)."""
    names = list(config.experts) if config.experts is not None else sorted(installed)
    if not any(getattr(installed.get(n), "granularity", None) == "coarse" for n in names):
        names.append(COARSE)
    return sorted(dict.fromkeys(names))


def _options(shared: dict[str, dict[str, Any]], experts: list[str],
             extra: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    merged = {name: {**shared.get(name, {}), **(extra or {}).get(name, {})} for name in experts}
    return {name: opts for name, opts in sorted(merged.items()) if opts}


def variant_model(variant: str, experts: list[str], config: AblationConfig) -> VariantModel | str:
    """The model of ``variant`` over the full model's ``experts``, or why it is skipped."""
    stage1 = config.stage1 is not None
    shared = config.expert_options
    if variant in DROPS:
        drop = DROPS[variant]
        if drop not in experts:
            return f"the {drop} expert is not among the experts ({', '.join(experts)}): is its plugin installed?"
        kept = [e for e in experts if e != drop]
        return VariantModel(tuple(kept), "tradeoff", _options(shared, kept), stage1)
    if variant == "wo_upe":
        return VariantModel((COARSE,), "tradeoff", _options(shared, [COARSE]), stage1)
    if variant == "wo_pretune" and not stage1:
        return "no stage-1 data in the grid: every variant is already trained without pre-tuning (= full)"
    if variant == "residual":
        forms = [e for e in RESIDUAL_EXPERTS if e in experts]
        if not forms:
            return f"neither of {', '.join(RESIDUAL_EXPERTS)} is among the experts ({', '.join(experts)})"
        extra = {e: {"residual": True} for e in forms}
        return VariantModel(tuple(experts), "tradeoff", _options(shared, experts, extra), stage1)
    router = "basic" if variant == "wo_ptr" else "tradeoff"
    return VariantModel(tuple(experts), router, _options(shared, experts), stage1 and variant != "wo_pretune")


# ---------------------------------------------------------------------- the plan
def _cache_for(model: VariantModel, variant: str, config: AblationConfig, out: Path,
               caches: dict[str, str]) -> str | None:
    """The grid's cache, unless the variant's expert options differ from the grid's
    (a cache entry's key holds its expert's options): then a cache of its own."""
    if config.cache is None:
        return None
    shared = _options(config.expert_options, list(model.experts))
    if model.expert_options == shared:
        return config.cache
    key = json.dumps(model.expert_options, sort_keys=True)
    return caches.setdefault(key, str(out / "caches" / variant))


def make_plan(config: AblationConfig, installed: dict[str, Any] | None = None) -> Plan:
    """Every run of ``config``: variants (in the table's order) × seeds."""
    if installed is None:
        from uprm.plugins.manager import available_experts

        installed = available_experts()
    experts = base_experts(config, installed)
    out = Path(config.out)
    plan = Plan(config, experts)
    stage1_owners: dict[str, Path] = {}
    caches: dict[str, str] = {}
    for variant in config.variants:
        model = variant_model(variant, experts, config)
        if isinstance(model, str):
            plan.skipped.append(Skipped(variant, model))
            continue
        cache = _cache_for(model, variant, config, out, caches)
        for seed in config.seeds:
            run = RunPlan(variant, seed, out / variant / f"seed{seed}", model, cache)
            if model.pretune:
                key = model.key(seed)
                run.pretune_owner = key not in stage1_owners
                run.pretune_dir = stage1_owners.setdefault(key, run.dir / "pretune")
            if model.expert_options and (run.pretune_owner or not model.pretune):
                run.start_dir = run.dir / "start"
            plan.runs.append(run)
    plan.missing = [e for e in experts if e not in installed]
    return plan
