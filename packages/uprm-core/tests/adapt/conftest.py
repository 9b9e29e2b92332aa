"""Shared set-up of the adaptation tests, built once for these tests as an operator would: a
small synthetic world (`uprm data synthetic`: eight 6-second videos of two threats and
Normal, 32 px), a tiny checkpoint (coarse expert only, 2 frames) with the hashes of its
files, and the `uprm adapt` flags of a seconds-long run (one 6-second window per video,
two training steps)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

#: the `uprm adapt` settings of every run of these tests (as keyword arguments of uprm.adapt)
SETTINGS = {"window": 6.0, "stride": 6.0, "steps": 4, "save_every": 2, "batch_size": 2, "bootstrap": 200,
            "sbert": False, "eval_batch_size": 4}


def invoke(*args: object, ok: bool = True):
    """Run `uprm ARGS` in-process; with ``ok`` assert it succeeded."""
    from uprm.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def cli_flags(settings: dict) -> list[str]:
    """``SETTINGS`` as `uprm adapt` flags."""
    flags = []
    for key, value in settings.items():
        name = "--" + key.replace("_", "-")
        flags += [("--sbert" if value else "--no-sbert")] if isinstance(value, bool) else [name, str(value)]
    return flags


def hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative paths)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread while these tests run (restored after): the tiny model's matrices are
    too small for two to pay, and on a busy machine a second thread spins (uprm.demo)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("adapt") / "world"
    invoke("data", "synthetic", "--videos", 8, "--seed", 2, "--duration", "6,6", "--size", 32, "--categories",
           "Fighting,Stealing", "--normal-fraction", 0.25, "--out", out, "--quiet")
    return out


@pytest.fixture(scope="module")
def labels(world: Path) -> Path:
    return world / "annotations" / "activitynet.json"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import uprm

    out = tmp_path_factory.mktemp("adapt") / "ck"
    uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=8, experts=["coarse"])).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def checkpoint_hashes(checkpoint: Path) -> dict[str, str]:
    """The checkpoint's files as they were before any adaptation read it."""
    return hashes(checkpoint)


@pytest.fixture(scope="module")
def run(world: Path, labels: Path, checkpoint: Path, checkpoint_hashes: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished `uprm adapt` run, through the command line."""
    out = tmp_path_factory.mktemp("adapt") / "run"
    invoke("adapt", "--checkpoint", checkpoint, "--labels", labels, "--videos", world / "videos", "--keypoints",
           world / "keypoints", "--scene-graphs", world / "scene_graphs", "--out", out, *cli_flags(SETTINGS),
           "--quiet")
    return out
