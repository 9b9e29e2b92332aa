"""The keyed ablation benchmark's whole path, small (benchmarks/keyed_ablation.py --quick):
world, features, `uprm ablate`, the per-group analysis and the report."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    with load_benchmark("keyed_ablation") as module:
        yield module


@pytest.mark.slow
def test_the_quick_keyed_ablation_runs_end_to_end_and_reports_the_signature(bench, tmp_path):
    out = bench.main(["--quick", "--parallel", "1", "--work", str(tmp_path / "work"),
                      "--report", str(tmp_path / "keyed.md")])
    text = (tmp_path / "keyed.md").read_text()
    for heading in ("## The signature, line by line", "## Overall", "## Per keyed group", "## Pair AUC",
                    "## The router's mean weight"):
        assert heading in text
    # the coarse-only model sees identical videos for a pose- or relation-keyed threat and its
    # twin, so its P(yes) ties within every such pair: pair AUC exactly 0.5, on any training
    aucs = out["aucs"]["wo_upe"]
    assert aucs["Fighting"].value == 0.5 and aucs["Stealing"].value == 0.5
    lines = {what: ok for what, ok, _ in out["signature"]}
    assert lines["coarse only is at chance on Fighting (pose-keyed pairs): pair AUC interval includes 0.5"] is True
    assert any(w.startswith("full beats w/o UPE overall") for w in lines)
    # every test video is in a keyed group, threats and twins alike
    assert set(out["weights"]) == {"Arson", "Fighting", "RoadAccidents", "Stealing"}
    assert out["effects"].videos and len(out["effects"].videos) == 16


@pytest.mark.parametrize("router_norm", [False, True])
def test_the_grid_trains_with_the_router_norm_only_when_asked(bench, tmp_path, router_norm):
    import json

    files = {s: tmp_path / f"{s}.json" for s in ("train", "test")}
    grid = bench.write_grid(tmp_path, files, {**bench.QUICK, "router_norm": router_norm})
    training = json.loads(grid.read_text())["training"]
    assert training.get("router_norm", False) is router_norm
    assert training["block_lr"] == 3.0e-4 and training["lr"] == 1.0e-3
