"""The variant -> training settings mapping (experts, router, init, expert options,
stage 1 and its sharing, caches), checked without training: the plan and --dry-run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from uprm.ablation import load_config, make_plan
from uprm.ablation.runner import build_start, train_settings

from .conftest import grid, invoke

FINE, COARSE = SimpleNamespace(granularity="fine"), SimpleNamespace(granularity="coarse")
ALL = {"background": FINE, "coarse": COARSE, "pose": FINE, "relation": FINE}


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    for name in ("train.json", "test.json", "stage1.json"):
        (tmp_path / name).write_text("[]")
    return {"train": tmp_path / "train.json", "test": tmp_path / "test.json", "stage1": tmp_path / "stage1.json",
            "cache": tmp_path / "cache"}


def _plan(data, tmp_path, installed=None, **changes):
    cfg = load_config(grid(data, tmp_path / "out", **{"variants": "all", "seeds": [0, 1], **changes}))
    return make_plan(cfg, ALL if installed is None else installed)


def test_each_variant_trains_what_the_paper_takes_away(data, tmp_path):
    plan = _plan(data, tmp_path)
    out = tmp_path / "out"
    every = ("background", "coarse", "pose", "relation")
    expected = {  # variant: (experts, router, expert options, stage 1)
        "full": (every, "tradeoff", {}, True),
        "wo_pose": (("background", "coarse", "relation"), "tradeoff", {}, True),
        "wo_relation": (("background", "coarse", "pose"), "tradeoff", {}, True),
        "wo_background": (("coarse", "pose", "relation"), "tradeoff", {}, True),
        "wo_upe": (("coarse",), "tradeoff", {}, True),
        "wo_ptr": (every, "basic", {}, True),
        "wo_pretune": (every, "tradeoff", {}, False),
        "residual": (every, "tradeoff", {"pose": {"residual": True}, "relation": {"residual": True}}, True),
    }
    assert [(r.variant, r.seed) for r in plan.runs] == [(v, s) for v in expected for s in (0, 1)]
    assert plan.skipped == []
    for run in plan.runs:
        experts, router, options, pretuned = expected[run.variant]
        assert (run.model.experts, run.model.router, run.model.expert_options) == (experts, router, options)
        assert run.dir == out / run.variant / f"seed{run.seed}"
        assert run.pretune_dir == (run.dir / "pretune" if pretuned else None) and run.pretune_owner == pretuned
        assert run.start_dir == (run.dir / "start" if options else None)  # uprm train has no expert options
        assert run.cache == str(out / "caches" / "residual" if options else data["cache"])
        settings = train_settings(run, plan.config)
        init = run.pretune_dir if pretuned else None
        assert settings["init"] == (str(init) if init else None)
        assert (settings["experts"], settings["router"], settings["seed"]) == (list(experts), router, run.seed)
        assert settings["stage"] == "deepsvu" and settings["data"] == [str(data["train"].resolve())]
        assert settings["out"] == str(run.dir / "train") and settings["max_steps"] == 3


def test_the_dry_run_prints_the_plan_and_runs_nothing(toy, files, tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid(files, tmp_path / "out", variants="all", seeds=[0, 1])))
    result = invoke("ablate", "--config", path, "--dry-run", "--json", "--seeds", "5")
    plan = json.loads(result.output)
    assert not (tmp_path / "out").exists()
    runs = {(r["variant"], r["seed"]): r for r in plan["plan"]}
    # the toy host has coarse, colour and a stand-in pose expert: no relation, no background
    assert set(runs) == {(v, 5) for v in ("full", "wo_pose", "wo_upe", "wo_ptr", "wo_pretune", "residual")}
    assert {s["variant"] for s in plan["skipped"]} == {"wo_relation", "wo_background"}
    assert "the relation expert is not among the experts (coarse, colour, pose)" in plan["skipped"][0]["reason"]
    full, res, pre = runs["full", 5], runs["residual", 5], runs["wo_pretune", 5]
    assert full["train"]["experts"] == ["coarse", "colour", "pose"] and full["train"]["router"] == "tradeoff"
    assert full["train"]["init"] == full["pretune"]["out"] == str(tmp_path / "out/full/seed5/pretune")
    assert full["pretune"]["stage"] == "pretune" and full["pretune"]["max_steps"] == 2  # stage1 settings on top
    assert full["pretune"]["data"] == [str(files["stage1"].resolve())] and full["pretune"]["seed"] == 5
    assert runs["wo_ptr", 5]["train"]["router"] == "basic" and runs["wo_upe", 5]["train"]["experts"] == ["coarse"]
    assert runs["wo_pose", 5]["train"]["experts"] == ["coarse", "colour"]
    assert pre["train"]["init"] is None and pre["pretune"] is None
    assert res["expert_options"] == {"pose": {"residual": True}}  # only the installed residual form
    assert res["pretune"]["init"] == str(tmp_path / "out/residual/seed5/start")
    assert res["evaluation"] == {"bootstrap": 0, "sbert": False, "batch_size": 8, "system": "residual/seed5",
                                 "progress": False}  # the ablation's intervals pool seeds; none per run


def test_without_stage1_data_nothing_is_pretuned_and_wo_pretune_is_skipped(data, tmp_path):
    plan = _plan(data, tmp_path, stage1=None)
    assert [s.variant for s in plan.skipped] == ["wo_pretune"]
    assert "no stage-1 data" in plan.skipped[0].reason
    assert all(r.pretune_dir is None for r in plan.runs)
    residual = next(r for r in plan.runs if r.variant == "residual")
    assert train_settings(residual, plan.config)["init"] == str(residual.dir / "start")


def test_variants_of_missing_plugins_are_skipped_with_a_note(data, tmp_path):
    plan = _plan(data, tmp_path, installed={"coarse": COARSE, "pose": FINE})
    assert {s.variant: s.reason for s in plan.skipped} == {
        "wo_relation": "the relation expert is not among the experts (coarse, pose): is its plugin installed?",
        "wo_background": "the background expert is not among the experts (coarse, pose): is its plugin installed?"}
    assert next(r for r in plan.runs if r.variant == "residual").model.expert_options == {"pose": {"residual": True}}
    plan = _plan(data, tmp_path, installed={"coarse": COARSE})
    assert {s.variant for s in plan.skipped} == {"wo_pose", "wo_relation", "wo_background", "residual"}


def test_stage1_runs_once_per_model_and_seed(data, tmp_path):
    plan = _plan(data, tmp_path, experts=["coarse"])  # full and wo_upe are the same model, wo_ptr is not
    runs = {(r.variant, r.seed): r for r in plan.runs}
    for seed in (0, 1):
        full, upe, ptr = runs["full", seed], runs["wo_upe", seed], runs["wo_ptr", seed]
        assert full.pretune_owner and not upe.pretune_owner and upe.pretune_dir == full.pretune_dir
        assert ptr.pretune_owner and ptr.pretune_dir == ptr.dir / "pretune"
    assert runs["full", 0].pretune_dir != runs["full", 1].pretune_dir
    assert train_settings(runs["wo_upe", 1], plan.config)["init"] == str(runs["full", 1].dir / "pretune")


def test_shared_expert_options_reach_every_variant(data, tmp_path):
    plan = _plan(data, tmp_path, expert_options={"pose": {"width": 4}, "unused": {"x": 1}})
    for run in plan.runs:
        want = {"pose": {"width": 4}} if "pose" in run.model.experts else {}
        if run.variant == "residual":
            want = {"pose": {"width": 4, "residual": True}, "relation": {"residual": True}}
        assert run.model.expert_options == want
        assert (run.start_dir is not None) == bool(want)
        # the grid's cache was made with the grid's options; only residual changes them
        assert run.cache == str(tmp_path / "out" / "caches" / "residual" if run.variant == "residual"
                                else data["cache"])


def test_the_start_model_is_a_fresh_model_with_the_options(toy, files, tmp_path):
    from uprm import UPRMModel
    from uprm.training import make_config
    from uprm.training.build import build_training_model, resolve_config

    plan = make_plan(load_config(grid(files, tmp_path / "out", variants=["residual"], stage1=None)))
    run = plan.runs[0]
    assert build_start(run, plan.config) and not build_start(run, plan.config)  # built once
    start = UPRMModel.from_pretrained(run.start_dir)
    assert start.config.expert_options == {"pose": {"residual": True}}
    assert start.block.experts["pose"].residual
    fresh = build_training_model(resolve_config(make_config(**{**train_settings(run, plan.config), "init": None})))
    a, b = start.trainable_state_dict(), fresh.trainable_state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same initial weights
