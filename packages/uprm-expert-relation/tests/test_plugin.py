"""The distribution registers the expert through the uprm entry point, lazily."""

import os
import subprocess
import sys

import uprm
import uprm_expert_relation
from uprm.testing import isolated_plugins
from uprm_expert_relation import RelationExpert


def test_the_entry_point_registers_the_relation_expert():
    with isolated_plugins() as host:
        info = host.experts()["relation"]
    assert info.cls is RelationExpert and info.granularity == "fine"
    assert info.plugin == "relation" and info.distribution == "uprm-expert-relation" and info.version == uprm_expert_relation.__version__
    assert uprm.available_experts()["relation"] is RelationExpert


def test_listing_experts_imports_neither_torch_geometric_nor_ultralytics():
    code = (
        "import sys, uprm; experts = uprm.available_experts(); "
        "assert 'relation' in experts; "
        "print(sorted(m for m in ('torch_geometric', 'ultralytics') if m in sys.modules))"
    )
    env = {**os.environ, "UPRM_LOAD_PLUGINS": "relation"}  # this plugin alone: others are not under test
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
