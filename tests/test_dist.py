"""``make dist``: releasable distributions, and the versions that move together.

- The four versions, the plugins' ``uprm-core`` ranges and the plugins' ``__version__``
  agree with ``VERSION``, and ``scripts/version.py set`` moves them all at once.
- ``scripts/dist.py`` (what ``make dist`` runs) builds an sdist and a wheel of each
  distribution — the wheel from the sdist, so each sdist is self-contained — and
  ``twine check --strict`` passes.
- Each wheel carries its license, its README as the long description, its entry points
  and ``py.typed``; each sdist its sources, tests, README, license and pyproject.
- The built wheels, not the source tree, installed into a fresh virtual environment:
  ``uprm experts`` lists every expert from its wheel, each plugin passes the standard
  expert tests shipped in its sdist, and ``uprm detect`` runs a tiny checkpoint on a
  video end to end.

The fresh environment borrows the heavy third-party packages (torch, transformers,
ultralytics, ...) from this one through a filtered view of its site-packages that leaves
out every UPRM distribution (the trick of tests/test_plugin_install.py): the only UPRM
code it can import is what the wheels installed.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
VERSION = (ROOT / "VERSION").read_text().strip()
CORE = "uprm-core"
PLUGINS = {  # distribution -> (import package, plugin name, the standard test suite in its sdist)
    "uprm-expert-pose": ("uprm_expert_pose", "pose", "tests/test_standard.py::TestPoseExpert"),
    "uprm-expert-relation": ("uprm_expert_relation", "relation", "tests/test_standard.py::TestRelationExpert"),
    "uprm-expert-background": (
        "uprm_expert_background", "background", "tests/test_background_expert.py::TestBackgroundExpert"),
}
DISTRIBUTIONS = [CORE, *PLUGINS]


def normalized(name: str) -> str:
    return name.replace("-", "_")


def pyproject(dist: str) -> dict:
    return tomllib.loads((ROOT / "packages" / dist / "pyproject.toml").read_text())


def core_requirement(requirements: list[str]) -> str:
    (found,) = [r for r in requirements if r.replace(" ", "").startswith("uprm-core")]
    return found.replace(" ", "").removeprefix("uprm-core")


# ------------------------------------------------------------------------------- versions
def test_the_versions_move_together():
    from packaging.specifiers import SpecifierSet

    assert subprocess.run([sys.executable, ROOT / "scripts/version.py", "check"], capture_output=True).returncode == 0
    major, minor, _ = (int(n) for n in VERSION.split(".")[:3])
    assert sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file()) == sorted(
        DISTRIBUTIONS)
    for dist in DISTRIBUTIONS:
        assert pyproject(dist)["project"]["version"] == VERSION, dist
    for dist, (package, _, _) in PLUGINS.items():
        spec = core_requirement(pyproject(dist)["project"]["dependencies"])
        assert spec == f">={VERSION},<{major}.{minor + 1}", dist
        assert VERSION in SpecifierSet(spec) and f"{major}.{minor + 1}.0" not in SpecifierSet(spec)
        init = (ROOT / "packages" / dist / "src" / package / "__init__.py").read_text()
        assert f'__version__ = "{VERSION}"' in init, dist
    # the example third-party plugin still installs against this core
    example = tomllib.loads((ROOT / "examples/custom_expert/pyproject.toml").read_text())
    assert VERSION in SpecifierSet(core_requirement(example["project"]["dependencies"]))
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in changelog or f"## {VERSION}" in changelog


def test_setting_a_version_moves_every_place(tmp_path):
    """``scripts/version.py set`` on a copy of the tree: every place moves; a place left
    behind (the example's range) is named by ``check``."""
    for rel in ["VERSION", "scripts/version.py", "examples/custom_expert/pyproject.toml",
                *[str(p.relative_to(ROOT)) for p in ROOT.glob("packages/*/pyproject.toml")],
                *[str(p.relative_to(ROOT)) for p in ROOT.glob("packages/*/src/*/__init__.py")]]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    result = subprocess.run([sys.executable, tmp_path / "scripts/version.py", "set", "0.2.0"],
                            capture_output=True, text=True)
    assert (tmp_path / "VERSION").read_text().strip() == "0.2.0"
    for dist in DISTRIBUTIONS:
        data = tomllib.loads((tmp_path / "packages" / dist / "pyproject.toml").read_text())
        assert data["project"]["version"] == "0.2.0"
        if dist in PLUGINS:
            assert core_requirement(data["project"]["dependencies"]) == ">=0.2.0,<0.3"
            package = PLUGINS[dist][0]
            assert '__version__ = "0.2.0"' in (tmp_path / "packages" / dist / "src" / package / "__init__.py").read_text()
    # the example plugin pins uprm-core<0.2: 0.2.0 is outside its range, and check says so
    assert result.returncode == 1 and "examples/custom_expert/pyproject.toml" in result.stderr
    bad = subprocess.run([sys.executable, tmp_path / "scripts/version.py", "set", "0.2"], capture_output=True, text=True)
    assert bad.returncode != 0 and "X.Y.Z" in bad.stderr + bad.stdout


# ------------------------------------------------------------------------------- make dist
@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``make dist`` into a temporary folder: scripts/dist.py on the four packages."""
    pytest.importorskip("build", reason="the release tools: pip install --group release")
    pytest.importorskip("twine", reason="the release tools: pip install --group release")
    out = tmp_path_factory.mktemp("dist")
    packages = [str(ROOT / "packages" / d) for d in DISTRIBUTIONS]
    result = subprocess.run([sys.executable, ROOT / "scripts/dist.py", "--out", out, *packages],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "twine check passed" in result.stdout
    return out


def wheel_of(dist_dir: Path, dist: str) -> Path:
    return dist_dir / f"{normalized(dist)}-{VERSION}-py3-none-any.whl"


def sdist_of(dist_dir: Path, dist: str) -> Path:
    return dist_dir / f"{normalized(dist)}-{VERSION}.tar.gz"


@pytest.mark.slow
def test_make_dist_builds_an_sdist_and_a_wheel_of_each_that_twine_accepts(dist):
    expected = {p.name for d in DISTRIBUTIONS for p in (wheel_of(dist, d), sdist_of(dist, d))}
    assert {p.name for p in dist.iterdir()} == expected
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *sorted(map(str, dist.iterdir()))],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 8


@pytest.mark.slow
@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_each_wheel_carries_license_readme_entry_points_and_py_typed(dist, name):
    info = f"{normalized(name)}-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel_of(dist, name)) as zf:
        files = set(zf.namelist())
        meta = email.parser.Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        license_text = zf.read(f"{info}/licenses/LICENSE").decode()
    assert meta["Name"] == name and meta["Version"] == VERSION
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert license_text == (ROOT / "LICENSE").read_text() and "Apache License" in license_text
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "packages" / name / "README.md").read_text().strip()
    assert "Typing :: Typed" in meta.get_all("Classifier")
    if name == CORE:
        assert "[console_scripts]\nuprm = uprm.cli:main" in entry_points
        package = "uprm"
    else:
        package, plugin, _ = PLUGINS[name]
        assert f"[uprm]\n{plugin} = {package}.plugin" in entry_points
        from packaging.specifiers import SpecifierSet

        declared = core_requirement(pyproject(name)["project"]["dependencies"])
        assert SpecifierSet(core_requirement(meta.get_all("Requires-Dist"))) == SpecifierSet(declared)
    assert f"{package}/py.typed" in files and f"{package}/__init__.py" in files
    assert not any(f.startswith(("tests/", "docs/")) for f in files)  # the wheel is the library only


@pytest.mark.slow
@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_each_sdist_is_self_contained(dist, name):
    package = "uprm" if name == CORE else PLUGINS[name][0]
    top = f"{normalized(name)}-{VERSION}"
    with tarfile.open(sdist_of(dist, name)) as tf:
        files = set(tf.getnames())
        pkg_info = email.parser.Parser().parsestr(tf.extractfile(f"{top}/PKG-INFO").read().decode())
    for rel in ("pyproject.toml", "README.md", "LICENSE", f"src/{package}/__init__.py", f"src/{package}/py.typed"):
        assert f"{top}/{rel}" in files, rel
    assert any(f.startswith(f"{top}/tests/") for f in files)
    assert pkg_info["Version"] == VERSION


# ------------------------------------------------------------------------------- the wheels at work
def _is_uprm_entry(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered.startswith(("uprm", "__editable__.uprm", "_uprm", "__editable___uprm"))


@pytest.fixture(scope="module")
def wheel_env(dist, tmp_path_factory):
    """A fresh venv with the four wheels (and nothing else of UPRM) installed."""
    tmp = tmp_path_factory.mktemp("wheels")
    view = tmp / "third-party"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not _is_uprm_entry(entry.name):
            (view / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "third_party_view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPRM_LOAD", "UPRM_DISABLE", "PYTHONPATH"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", UPRM_OFFLINE="1")
    wheels = [wheel_of(dist, d) for d in DISTRIBUTIONS]
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", *map(str, wheels)], check=True, env=env, capture_output=True, text=True)
    return python, env, tmp, site


@pytest.mark.slow
def test_the_wheels_installed_alone_list_their_experts(wheel_env):
    python, env, tmp, site = wheel_env
    where = subprocess.run([str(python), "-c", "import uprm, uprm_expert_pose; print(uprm.__file__); "
                            "print(uprm_expert_pose.__file__); print(uprm.__version__)"],
                           env=env, cwd=tmp, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where[:2]), where  # the wheels' copies, not the source tree
    assert where[2] == VERSION
    assert (site / "uprm" / "py.typed").is_file()
    listing = json.loads(subprocess.run([str(python.parent / "uprm"), "experts", "--json"], env=env, cwd=tmp,
                                        capture_output=True, text=True, check=True).stdout)
    assert listing["broken"] == []
    experts = {e["name"]: e for e in listing["experts"]}
    assert sorted(experts) == ["background", "coarse", "pose", "relation"]
    assert experts["coarse"]["distribution"] == CORE
    for dist, (_, plugin, _) in PLUGINS.items():
        assert experts[plugin]["distribution"] == dist and experts[plugin]["version"] == VERSION


@pytest.mark.slow
def test_each_plugin_wheel_passes_the_standard_expert_tests_of_its_sdist(dist, wheel_env):
    python, env, tmp, _ = wheel_env
    suites = []
    for name, (_, _, suite) in PLUGINS.items():
        with tarfile.open(sdist_of(dist, name)) as tf:
            tf.extractall(tmp / "sdists", filter="data")
        top = tmp / "sdists" / f"{normalized(name)}-{VERSION}"
        shutil.rmtree(top / "src")  # the tests must import the installed wheel, nothing else
        suites.append(str(top / suite))
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib", *suites],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


TINY_DETECT = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import numpy as np

    import uprm
    from uprm.data import write_mp4

    root = Path(sys.argv[1])
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=8))
    assert sorted(model.config.experts) == ["background", "coarse", "pose", "relation"], model.config.experts
    model.save_pretrained(root / "checkpoint")
    frames = [np.full((64, 64, 3), 230 if 8 <= i < 12 else 20, np.uint8) for i in range(16)]  # 8 s at 2 fps
    write_mp4(root / "videos" / "cam.mp4", frames, fps=2)
    person = [v for x, y in [(32, 12)] * 17 for v in (x, y, 1)]
    (root / "keypoints").mkdir()
    (root / "keypoints" / "cam.json").write_text(json.dumps(
        [{"image_id": i, "category_id": 1, "score": 0.9, "keypoints": person, "bbox": [24, 10, 16, 44]}
         for i in range(8, 12)]))
    (root / "scene_graphs").mkdir()
    (root / "scene_graphs" / "cam.json").write_text(json.dumps(
        {"video_id": "cam", "width": 64, "height": 64,
         "frames": [{"frame_index": i, "timestamp": i / 2, "objects": [], "triplets": []} for i in range(16)]}))
""")


@pytest.mark.slow
def test_a_tiny_detect_runs_from_the_wheels(wheel_env):
    python, env, tmp, _ = wheel_env
    work = tmp / "detect"
    work.mkdir()
    subprocess.run([str(python), "-c", TINY_DETECT, str(work)], env=env, cwd=work, check=True, capture_output=True)
    result = subprocess.run(
        [str(python.parent / "uprm"), "detect", str(work / "videos" / "cam.mp4"), "--checkpoint",
         str(work / "checkpoint"), "--out", str(work / "out"), "--sidecar-dir", str(work), "--window", "4",
         "--stride", "4", "--batch-size", "2"],
        env=env, cwd=work, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((work / "out" / "results.json").read_text())
    assert "cam" in results["results"]
    detection = json.loads((work / "out" / "cam.json").read_text())
    assert detection["uprm_version"] == VERSION
    assert (work / "out" / "cam.png").stat().st_size > 1000  # the timeline
