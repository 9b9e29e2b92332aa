"""The design card's install, ``pip install uprm-core uprm-expert-pose``, from the built
wheels and without any extra: the main job works, and a command that needs an extra
stops at once with the one ``pip install "uprm-core[...]"`` line, no traceback.

The wheels come from ``scripts/dist.py`` (what ``make dist`` runs). The fresh virtual
environment holds them (installed with ``--no-deps``) and, of the third-party packages,
exactly what a plain ``pip install`` of them would bring: the closure of the wheels'
``Requires-Dist`` without extras, each requirement's own dependencies (markers and
requested extras evaluated), borrowed from this environment through a folder of
symlinks — offline and fast, torch is never downloaded. ``pip check`` in the fresh
environment proves the closure complete, and ``scikit-learn``, ``fastapi``, ``uvicorn``
and the other extras' packages are asserted absent from it.

accelerate is not an extra's package only: peft (a core dependency) requires it, so a
plain install has it. ``uprm train`` without accelerate is tried in a second fresh
environment whose closure leaves accelerate out (as after ``pip uninstall accelerate``).
"""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections import defaultdict
from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ("uprm-core", "uprm-expert-pose")
#: packages only the extras bring (none may be in the plain install)
EXTRAS_ONLY = ("scikit-learn", "rouge-score", "sacrebleu", "sentence-transformers", "openpyxl", "krippendorff",
               "fastapi", "uvicorn", "python-multipart", "openai")
pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- the environment
def requires_dist(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel that apply without extras."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = email.parser.Parser().parsestr(zf.read(name).decode()).get_all("Requires-Dist") or []
    return [line for line in lines if (m := Requirement(line).marker) is None or m.evaluate({"extra": ""})]


def closure(requirements: list[str], leave_out: frozenset[str] = frozenset()) -> list[str]:
    """Every distribution (canonical name) a plain ``pip install`` of ``requirements``
    brings, found in this environment's metadata; UPRM's own and ``leave_out`` skipped."""
    extras: dict[str, set[str]] = {}
    queue = [Requirement(r) for r in requirements]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name.startswith("uprm") or name in leave_out or (name in extras and set(req.extras) <= extras[name]):
            continue
        extras.setdefault(name, set()).update(req.extras)
        for line in distribution(name).requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras[name])):
                sub.marker = None
                queue.append(sub)
    return sorted(extras)


def _owners(site: Path) -> dict[str, dict[str, set[str]]]:
    """``top-level entry of site-packages -> {distribution -> its second-level entries}``."""
    owners: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for dist in distributions(path=[str(site)]):
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or []:
            if file.parts[0] not in ("..", "__pycache__"):
                owners[file.parts[0]][name].add(file.parts[1] if len(file.parts) > 1 else "")
    return owners


def make_view(view: Path, names: list[str]) -> None:
    """Symlinks in ``view`` to what ``names`` installed in this site-packages. A folder
    shared with a distribution left out (the ``nvidia`` namespace) is a real folder
    holding links to the entries of the distributions kept."""
    site = Path(sysconfig.get_paths()["purelib"])
    keep = set(names)
    view.mkdir()
    for entry, by_dist in _owners(site).items():
        kept = {d: subs for d, subs in by_dist.items() if d in keep}
        if not kept or not (site / entry).exists():
            continue
        if len(kept) == len(by_dist) or "" in set().union(*kept.values()):
            (view / entry).symlink_to(site / entry)
            continue
        (view / entry).mkdir()
        for sub in set().union(*kept.values()):
            (view / entry / sub).symlink_to(site / entry / sub)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> list[Path]:
    """The core and pose wheels, built as ``make dist`` builds them."""
    pytest.importorskip("build", reason="the release tools: pip install --group release")
    pytest.importorskip("twine", reason="the release tools: pip install --group release")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, ROOT / "scripts/dist.py", "--out", out,
                             *(ROOT / "packages" / w for w in WHEELS)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(out.glob("*.whl"))


def fresh_env(root: Path, wheels: list[Path], leave_out: frozenset[str] = frozenset()):
    """A venv with the wheels and the closure of their dependencies (minus ``leave_out``)."""
    names = closure([r for w in wheels for r in requires_dist(w)], leave_out)
    make_view(root / "third-party", names)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "third_party_view.pth").write_text(f"import site; site.addsitedir({str(root / 'third-party')!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPRM_LOAD", "UPRM_DISABLE", "PYTHONPATH"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", UPRM_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", *map(str, wheels)], check=True, env=env, capture_output=True, text=True)
    return python, env, names


@pytest.fixture(scope="module")
def plain(wheels, tmp_path_factory):
    """``pip install uprm-core uprm-expert-pose``: the wheels and their closure."""
    root = tmp_path_factory.mktemp("plain")
    python, env, names = fresh_env(root, wheels)
    return python, env, names, root


def uprm(python: Path, env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python.parent / "uprm"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_plain_install_is_complete_and_has_no_extra(plain):
    python, env, names, root = plain
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"], env=env, cwd=root,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert {"torch", "av", "pillow", "matplotlib", "ultralytics"} <= set(names)
    assert not set(EXTRAS_ONLY) & set(names)
    probe = "import importlib.util as u; print([m for m in ('sklearn', 'fastapi', 'uvicorn') if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the main job
CHECKPOINT = textwrap.dedent("""
    # A tiny coarse + pose model taught to say "yes" on both windows of an 8-s video, so
    # detect finds a segment and draws its evidence sheet (one torch thread: on a busy
    # 2-core machine more threads mostly spin).
    import json, sys
    from pathlib import Path

    import numpy as np
    import torch

    import uprm
    from uprm.data import load_clip, write_mp4
    from uprm.detection import sidecar_meta
    from uprm.testing import overfit

    root = Path(sys.argv[1])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    frames = [np.full((64, 64, 3), 230 if 4 <= i < 12 else 20, np.uint8) for i in range(16)]  # 8 s at 2 fps
    video = write_mp4(root / "videos" / "cam.mp4", frames, fps=2)
    person = [v for x, y in [(32, 12)] * 17 for v in (x, y, 1)]
    (root / "keypoints").mkdir()
    (root / "keypoints" / "cam.json").write_text(json.dumps(
        [{"image_id": i, "category_id": 1, "score": 0.9, "keypoints": person, "bbox": [24, 10, 16, 44]}
         for i in range(16)]))
    small = {"pose": {"joint_dim": 16, "pose_dim": 32, "num_heads": 2}}
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=12, expert_options=small))
    assert sorted(model.config.experts) == ["coarse", "pose"], model.config.experts
    items = []
    for start in (0.0, 4.0):
        clip = load_clip(video, 2, start, start + 4.0)
        clip.meta.update(sidecar_meta(root, "cam"))
        feats = model.extract(clip)
        items.append((feats, "identify", "Yes, there exists a threat."))
    overfit(model, items, lr=6e-3, max_steps=100).save_pretrained(root / "checkpoint")
    # live video has no keypoint files: uprm watch runs a coarse-only model
    uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, experts=["coarse"])).save_pretrained(root / "coarse")
""")


@pytest.fixture(scope="module")
def work(plain) -> Path:
    """The video, its keypoints and the two checkpoints, made in the fresh environment."""
    python, env, _, root = plain
    work = root / "work"
    work.mkdir()
    made = subprocess.run([str(python), "-c", CHECKPOINT, str(work)], env=env, cwd=work, capture_output=True,
                          text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    return work


def test_detect_runs_from_the_plain_install_and_draws_its_pictures(plain, work):
    python, env, _, _ = plain
    result = uprm(python, env, "detect", str(work / "videos" / "cam.mp4"), "--checkpoint", str(work / "checkpoint"),
                  "--out", str(work / "out"), "--sidecar-dir", str(work), "--window", "4", "--stride", "4",
                  "--batch-size", "2", "--threads", "1", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ModuleNotFoundError" not in result.stderr and "Traceback" not in result.stderr
    detection = json.loads((work / "out" / "cam.json").read_text())
    assert "cam" in json.loads((work / "out" / "results.json").read_text())["results"]
    assert (work / "out" / "cam.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the timeline
    assert detection["segments"], detection
    sheet = work / "out" / detection["segments"][0]["evidence"]
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the evidence sheet


def test_watch_runs_from_the_plain_install(plain, work):
    python, env, _, _ = plain
    result = uprm(python, env, "watch", str(work / "videos" / "cam.mp4"), "--checkpoint", str(work / "coarse"),
                  "--window", "4", "--stride", "2", "--threads", "1", "--alerts", str(work / "alerts.jsonl"),
                  "--report", str(work / "watch.json"), "--quiet", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((work / "watch.json").read_text())
    assert report["stopped_by"] == "end of streams" and report["cameras"]["cam1"]["windows"] == 3


# --------------------------------------------------------------------------- commands that need an extra
def _one_error_line(result: subprocess.CompletedProcess, install: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert install in lines[0], lines[0]
    return lines[0]


def test_serve_stops_at_once_with_the_serve_line(plain):
    python, env, _, root = plain
    (root / "not-loaded").mkdir(exist_ok=True)  # an empty folder: the error comes before any load
    result = uprm(python, env, "serve", "--checkpoint", str(root / "not-loaded"), "--port", "0", cwd=root)
    line = _one_error_line(result, 'pip install "uprm-core[serve]"')
    assert line == ("Error: uprm serve needs uprm-core's serve extra (fastapi, uvicorn, python-multipart are not "
                    'installed): pip install "uprm-core[serve]"')


def test_eval_stops_at_once_with_the_metrics_line(plain):
    python, env, _, root = plain
    (root / "predictions.json").write_text("{}")
    result = uprm(python, env, "eval", "--predictions", str(root / "predictions.json"), "--ground-truth",
                  str(root / "predictions.json"), cwd=root)
    line = _one_error_line(result, 'pip install "uprm-core[metrics]"')
    assert "scikit-learn is not installed" in line


def test_train_without_accelerate_stops_at_once_with_the_train_line(wheels, tmp_path):
    python, env, names = fresh_env(tmp_path, wheels, leave_out=frozenset({"accelerate"}))
    assert "accelerate" not in names and "peft" in names
    result = uprm(python, env, "train", "--tiny", "--data", str(tmp_path / "train.json"), "--out",
                  str(tmp_path / "run"), cwd=tmp_path)
    line = _one_error_line(result, 'pip install "uprm-core[train]"')
    assert line == ("Error: uprm train needs uprm-core's train extra (accelerate is not installed): "
                    'pip install "uprm-core[train]"')
    assert not (tmp_path / "run").exists()
