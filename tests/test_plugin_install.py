"""A real ``pip install`` into a fresh virtual environment that holds only uprm-core
and a plugin package copied outside the repository: the plugin appears in ``uprm
experts`` with no change to the core; a broken plugin is listed, not fatal.

The fresh environment borrows the heavy third-party packages (torch, transformers, ...)
from this one through a filtered view of its site-packages that leaves out every
``uprm`` distribution, so the only UPRM distributions it sees are the ones this test
installs.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _is_uprm_entry(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered.startswith(("uprm", "__editable__.uprm", "_uprm", "__editable___uprm"))


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fresh")
    view = tmp / "third-party"
    view.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not _is_uprm_entry(entry.name):
            (view / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    fresh_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )
    (fresh_site / "third_party_view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPRM_LOAD", "UPRM_DISABLE", "PYTHONPATH"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return python, env, tmp


def pip_install(python, env, *paths):
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", *map(str, paths)],
        check=True, env=env, capture_output=True, text=True,
    )


def uprm_experts(python, env):
    uprm = Path(python).parent / "uprm"
    result = subprocess.run([str(uprm), "experts", "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_core_then_an_outside_plugin_then_a_broken_one(fresh_env):
    python, env, tmp = fresh_env

    pip_install(python, env, ROOT / "packages" / "uprm-core")
    listing = uprm_experts(python, env)
    assert [e["name"] for e in listing["experts"]] == ["coarse"]
    assert listing["experts"][0]["distribution"] == "uprm-core"
    assert listing["broken"] == []

    # the example plugin, copied outside the repository, installed like any package
    outside = tmp / "elsewhere" / "uprm-expert-motion"
    shutil.copytree(ROOT / "examples" / "custom_expert", outside, ignore=shutil.ignore_patterns("__pycache__"))
    pip_install(python, env, outside)
    listing = uprm_experts(python, env)
    experts = {e["name"]: e for e in listing["experts"]}
    assert sorted(experts) == ["coarse", "motion"]  # no pose/relation/background here
    assert experts["motion"]["distribution"] == "uprm-expert-motion"
    assert experts["motion"]["version"] == "0.1.0"
    assert experts["motion"]["granularity"] == "fine"

    # a plugin whose import fails is listed with its error; the others still load
    broken = tmp / "elsewhere" / "uprm-expert-broken"
    (broken / "src" / "uprm_expert_broken").mkdir(parents=True)
    (broken / "src" / "uprm_expert_broken" / "__init__.py").write_text("")
    (broken / "src" / "uprm_expert_broken" / "plugin.py").write_text("import a_module_that_is_not_installed\n")
    (broken / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "uprm-expert-broken"
        version = "0.0.1"
        [project.entry-points.uprm]
        broken = "uprm_expert_broken.plugin"
        [tool.hatch.build.targets.wheel]
        packages = ["src/uprm_expert_broken"]
    """))
    pip_install(python, env, broken)
    listing = uprm_experts(python, env)
    assert sorted(e["name"] for e in listing["experts"]) == ["coarse", "motion"]
    assert len(listing["broken"]) == 1
    entry = listing["broken"][0]
    assert entry["plugin"] == "broken" and entry["distribution"] == "uprm-expert-broken"
    assert "ModuleNotFoundError" in entry["error"] and "a_module_that_is_not_installed" in entry["error"]

    # switching plugins without uninstalling
    off = dict(env, UPRM_DISABLE_PLUGINS="motion,broken")
    assert [e["name"] for e in uprm_experts(python, off)["experts"]] == ["coarse"]
    only = dict(env, UPRM_LOAD_PLUGINS="motion")
    listing = uprm_experts(python, only)
    assert sorted(e["name"] for e in listing["experts"]) == ["coarse", "motion"] and listing["broken"] == []

    # the installed plugin passes the standard expert tests in that environment
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(outside / "tests")],
        env=env, capture_output=True, text=True, cwd=tmp,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
