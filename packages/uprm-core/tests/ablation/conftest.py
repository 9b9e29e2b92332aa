"""Shared set-up of the ablation tests: a plugin host with cheap experts (so the tests
run in an environment with only uprm-core), a small synthetic world with its stage-1
instructions and feature cache, and grids of tiny, very short runs.

The experts: the built-in coarse expert, ``colour`` (uprm.testing's small real fine
expert) and a stand-in ``pose`` expert — the colour expert under the pose expert's name
with the pose expert's ``residual`` switch — so the grid's ``wo_pose`` and ``residual``
variants have something to drop and to switch, while ``wo_relation`` and
``wo_background`` are skipped (no such expert), as on a machine without those plugins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import uprm
from uprm.testing import ColourExpert, isolated_plugins

#: frames per clip (few tokens: each step takes milliseconds)
FRAMES = 2


class ToyPose(ColourExpert):
    """The colour expert named ``pose``, with the pose expert's ``residual`` option:
    ``True`` adds the video tokens to its output (the residual form)."""

    name = "pose"

    def __init__(self, ctx: uprm.ExpertContext, width: int = 8, residual: bool = False) -> None:
        super().__init__(ctx, width=width)
        self.residual = bool(residual)

    def forward(self, features: Any, video_tokens: torch.Tensor) -> torch.Tensor:
        out = super().forward(features, video_tokens)
        return out + video_tokens if self.residual else out


class _ToyPlugin:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [ColourExpert, ToyPose]


@contextlib.contextmanager
def toy_host() -> Iterator[Any]:
    """Only the coarse, colour and (stand-in) pose experts, whatever else is installed."""
    with isolated_plugins(plugins={"toy": _ToyPlugin}, load_entry_points=False) as host:
        yield host


@pytest.fixture
def toy():
    with toy_host() as host:
        yield host


def invoke(*args: object, ok: bool = True):
    """Run `uprm ARGS` in-process; with ``ok`` assert it succeeded."""
    from uprm.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 6-second videos: three to train on, three to test on."""
    from uprm.synthetic import generate_world

    out = tmp_path_factory.mktemp("ablation") / "world"
    generate_world(out, 6, seed=3, progress=False, min_duration=6.0, max_duration=6.0, size=64,
                   splits=(0.5, 0.0, 0.5))
    return out


@pytest.fixture(scope="session")
def files(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The train / test instruction files, the stage-1 file and a feature cache."""
    from uprm.ablation.stage1 import synthetic_stage1

    folder = tmp_path_factory.mktemp("ablation-data")
    paths = {"train": world / "instructions" / "synthetic_train.json",
             "test": world / "instructions" / "synthetic_test.json",
             "stage1": synthetic_stage1(world, folder / "stage1.json"), "cache": folder / "cache"}
    with toy_host():
        invoke("extract", "--model", "tiny", "--num-frames", FRAMES, "--data", paths["train"], "--data",
               paths["test"], "--data", paths["stage1"], "--out", paths["cache"], "--quiet")
    return paths


def grid(files: dict[str, Path], out: Path, **changes: Any) -> dict[str, Any]:
    """A grid of tiny runs of a few steps; ``changes`` replace its keys."""
    base: dict[str, Any] = {
        "train": str(files["train"]), "test": str(files["test"]), "cache": str(files["cache"]), "out": str(out),
        "stage1": {"data": str(files["stage1"]), "max_steps": 2},
        "training": {"tiny": True, "num_frames": FRAMES, "max_steps": 3, "batch_size": 4, "save_every": 1,
                     "lr": 1e-3},
        "evaluation": {"sbert": False, "batch_size": 8},
        "seeds": [0], "variants": ["full"], "threads": 1,
    }
    base.update(changes)
    return base
