"""One small synthetic world and its feature cache for every training test, built once
per session as a user would: `uprm data synthetic`, then `uprm extract`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

#: frames per clip in these tests (fewer tokens: the tiny model trains in milliseconds)
FRAMES = 4
#: the experts the tests train: the coarse expert and one fine expert with a frozen
#: perception model (a small random SAM encoder), so the router has two columns
EXPERTS = "coarse,background"


def invoke(*args: object, ok: bool = True):
    """Run `uprm ARGS` in-process; with ``ok`` assert it succeeded."""
    from uprm.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("training") / "world"
    invoke("data", "synthetic", "--videos", 6, "--seed", 3, "--duration", "6,6", "--size", 64, "--out", out, "--quiet")
    return out


@pytest.fixture(scope="session")
def split_files(world: Path) -> dict[str, Path]:
    return {s: world / "instructions" / f"synthetic_{s}.json" for s in ("train", "val", "test")}


@pytest.fixture(scope="session")
def cache(split_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("training") / "cache"
    invoke("extract", "--data", split_files["train"], "--data", split_files["val"], "--model", "tiny",
           "--num-frames", FRAMES, "--experts", EXPERTS, "--out", out, "--quiet")
    return out


@pytest.fixture
def tiny_args(split_files: dict[str, Path], cache: Path) -> list[str]:
    """`uprm train` flags of a small tiny run on the cached world."""
    return ["--tiny", "--data", str(split_files["train"]), "--cache", str(cache), "--experts", EXPERTS,
            "--num-frames", str(FRAMES), "--batch-size", "4", "--quiet"]


@pytest.fixture
def tiny_settings(split_files: dict[str, Path], cache: Path) -> dict:
    """The same as ``uprm.train`` keyword arguments."""
    return {"tiny": True, "data": [str(split_files["train"])], "cache": str(cache), "experts": EXPERTS.split(","),
            "num_frames": FRAMES, "batch_size": 4, "progress": False}
