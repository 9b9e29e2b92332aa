"""`uprm demo` (what `make demo` runs) works offline with whatever experts are installed."""

import re

from click.testing import CliRunner

import uprm
from uprm.cli import cli
from uprm.testing import isolated_plugins


def test_demo_runs_the_tiny_model_on_a_synthetic_clip(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--frames", "4", "--out", str(tmp_path / "world")])
    assert result.exit_code == 0, result.output
    out = result.output
    experts = list(uprm.available_experts())
    order = [n for n in sorted(experts) if n != "coarse"] + ["coarse"]
    assert f"router columns {order}" in out
    assert "Video tokens: 68 = 4 frames x 17 tokens" in out
    weights = dict(re.findall(r"mean weight (\w+)\s+([\d.]+)", out))
    assert set(weights) == set(experts)
    z = float(re.search(r"z-loss \(eq\.7\): ([\d.]+)", out).group(1))
    # with fine experts the N + 1 near-equal logits give lse ≈ log(N + 1) > 0; with the
    # coarse expert alone (only uprm-core installed) its one logit starts near 0
    assert z > 0.1 if len(experts) > 1 else z >= 0
    assert (tmp_path / "world" / "world.json").is_file()  # --out keeps the rendered world


def test_demo_with_the_basic_router_has_no_z_loss(tmp_path):
    with isolated_plugins(env={"UPRM_LOAD_PLUGINS": ""}):
        result = CliRunner().invoke(cli, ["demo", "--frames", "2", "--router", "basic"])
    assert result.exit_code == 0, result.output
    assert "z-loss (eq.7): none (basic router)" in result.output
    assert "router columns ['coarse']" in result.output
