"""The lazily loaded packages (``uprm``, ``uprm.data``, ``uprm.evaluation``, ``uprm.serve``,
``uprm.moe``, ``uprm.testing``, ``uprm.synthetic``, ``uprm.watch``): each lists its names
once, in ``__init__.pyi``, which lazy-loader reads at run time and type checkers read as
the package's interface.

Checked in fresh interpreters: what a name resolves to, and what importing a package
drags in, depend on what ``sys.modules`` already holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

FACADES = ["uprm", "uprm.data", "uprm.evaluation", "uprm.serve", "uprm.moe", "uprm.testing", "uprm.synthetic",
           "uprm.watch"]

CORE = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "av", "numpy", "PIL", "fastapi", "transformers", "pytest"}


def _run(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; its last line of output, as JSON."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", FACADES)
def test_every_name_of_the_stub_resolves_to_what_the_stub_says_and_dir_lists_it(package):
    report = _run(f"""
        import ast, importlib, json, pathlib

        package = importlib.import_module({package!r})
        stub = pathlib.Path(package.__file__).with_suffix(".pyi")
        declared, not_reexported = {{}}, []
        for node in ast.walk(ast.parse(stub.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    declared[alias.name] = {package!r} + "." + (node.module or alias.name)
                    if alias.asname != alias.name:  # `name as name`: type checkers re-export only these
                        not_reexported.append(alias.name)
        listed = dir(package)
        wrong = []
        for name, where in sorted(declared.items()):
            value = getattr(package, name)
            if where == {package!r} + "." + name:  # a submodule
                expected = importlib.import_module(where)
            else:
                expected = getattr(importlib.import_module(where), name)
            if value is not expected:
                wrong.append(name)
        print(json.dumps({{"all": sorted(package.__all__), "declared": sorted(declared), "wrong": wrong,
                           "not_listed": [n for n in package.__all__ if n not in listed],
                           "not_reexported": not_reexported}}))
    """)
    assert report["declared"], f"{package}: no names in its stub"
    assert report["all"] == report["declared"], f"{package}.__all__ is not its stub's list"
    assert report["wrong"] == [], f"{package}: names resolving to something else than their stub line says"
    assert report["not_listed"] == [], f"{package}: names missing from dir()"
    assert report["not_reexported"] == [], f"{package}: stub lines without `as name` (invisible to mypy)"


@pytest.mark.parametrize("package", FACADES)
def test_importing_a_facade_and_probing_it_loads_none_of_its_modules(package):
    loaded = _run(f"""
        import importlib, json, sys

        package = importlib.import_module({package!r})
        for name in ("no_such_name", "__wrapped__", "_pytestfixturefunction"):
            assert not hasattr(package, name), name
        assert package.__all__ and set(package.__all__) <= set(dir(package))
        print(json.dumps(sorted(sys.modules)))
    """)
    assert not HEAVY & {m.split(".")[0] for m in loaded}
    own = {m for m in loaded if m.startswith(f"{package}.")}
    assert own <= ({"uprm._version", "uprm.offline", "uprm._lazy"} if package == "uprm" else set())


def test_import_uprm_keeps_its_eager_part_and_reaches_any_submodule():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["UPRM_OFFLINE"] = "1"
    report = _run("""
        import json, os, sys
        import uprm

        eager = {"version": "__version__" in vars(uprm), "offline": os.environ.get("HF_HUB_OFFLINE")}
        metrics = uprm.metrics  # a submodule outside __all__, reached as an attribute
        print(json.dumps({**eager, "metrics": metrics.__name__, "watch_callable": callable(uprm.watch),
                          "torch": "torch" in sys.modules, "data": uprm.data.annotations.__name__}))
    """, env=env)
    assert report == {"version": True, "offline": "1", "metrics": "uprm.metrics", "watch_callable": True,
                      "torch": False, "data": "uprm.data.annotations"}


def test_uprm_data_submodules_are_the_modules_not_a_future_feature():
    # ``from __future__ import annotations`` in the old hand-written facade bound
    # ``uprm.data.annotations`` to the __future__ feature until the submodule was imported
    report = _run("""
        import json, types
        import uprm.data

        print(json.dumps([isinstance(uprm.data.annotations, types.ModuleType), uprm.data.annotations.__name__]))
    """)
    assert report == [True, "uprm.data.annotations"]


@pytest.mark.parametrize("package", FACADES)
def test_an_unknown_name_is_pythons_attribute_error_naming_the_module_and_the_name(package):
    report = _run(f"""
        import importlib, json

        package = importlib.import_module({package!r})
        try:
            package.no_such_name
        except AttributeError as err:
            print(json.dumps([str(err), err.name, err.obj is package]))
    """)
    assert report == [f"module {package!r} has no attribute 'no_such_name'", "no_such_name", True]


@pytest.mark.slow
def test_the_wheel_ships_every_stub(tmp_path):
    """The stubs are the names: a wheel without them is a package without a public API."""
    pytest.importorskip("build", reason="the release tools: pip install --group release")
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                             str(CORE)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    stubs = {p.relative_to(CORE / "src").as_posix() for p in (CORE / "src" / "uprm").rglob("*.pyi")}
    assert {f"{facade.replace('.', '/')}/__init__.pyi" for facade in FACADES} <= stubs
    assert stubs <= files
