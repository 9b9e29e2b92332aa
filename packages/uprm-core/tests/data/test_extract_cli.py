"""``uprm extract``: the command line over the feature cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from uprm.cli import cli
from uprm.synthetic import generate_world


@pytest.fixture(scope="module")
def instructions(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-world")
    summary = generate_world(out, 2, seed=9, progress=False, min_duration=6.0, max_duration=6.0,
                             normal_fraction=0.5, splits=(1.0, 0.0, 0.0))
    return out / summary["instructions"]["train"]


def run(*args: str):
    return CliRunner().invoke(cli, ["extract", *args])


def test_help_explains_the_cache():
    result = run("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in ("--data", "--experts", "--num-frames", "NAME.KEY=VALUE", "safetensors", "kill -9", "torchrun"):
        assert phrase in text


def test_extracts_then_resumes(instructions, tmp_path):
    cache = tmp_path / "cache"
    args = ("--data", str(instructions), "--experts", "coarse", "--out", str(cache), "--num-frames", "2", "--quiet")
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "2 clips: 2 entries written (0 were stale), 0 already cached, 0 clips failed" in first.output
    files = sorted(cache.rglob("*.safetensors"))
    assert len(files) == 2 and all(p.parent.name.endswith("_f2") for p in files)
    with safe_open(str(files[0]), framework="pt") as f:
        assert f.get_tensor("vision_features").shape == (2, 17, 64)
    second = run(*args, "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output) == {**json.loads(second.output), "written": 0, "cached": 2, "failed": 0}
    reseeded = run(*args, "--seed", "3")
    assert "2 entries written (2 were stale)" in reseeded.output


def test_expert_options_reach_the_expert(instructions, tmp_path):
    config = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    result = run("--data", str(instructions), "--out", str(tmp_path / "c"), "--num-frames", "2", "--quiet",
                 "--expert-option", f"coarse.vision_config={json.dumps(config)}")
    assert result.exit_code == 0, result.output
    path = next((tmp_path / "c").rglob("coarse.safetensors"))
    with safe_open(str(path), framework="pt") as f:
        assert f.get_tensor("vision_features").shape == (2, 17, 16)
        assert json.loads(f.metadata()["uprm.key"])["extraction"]["options"]["vision_config"] == config


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--expert-option", "max_people=4"), 2, "is not NAME.KEY=VALUE"),
        (("--expert-option", "pose.k=1"), 2, "not among the experts ['coarse']"),
        (("--experts", "coarse,teleport"), 1, "no expert named 'teleport'"),
        (("--experts", " , "), 2, "give at least one expert"),
    ],
)
def test_bad_arguments_are_explained(instructions, tmp_path, args, code, message):
    result = run("--data", str(instructions), "--out", str(tmp_path / "c"), "--quiet", *args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_bad_files_are_named(instructions, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    result = run("--data", str(broken), "--out", str(tmp_path / "c"), "--quiet")
    assert result.exit_code == 1 and f"{broken}: not a readable JSON file" in result.output
    records = json.loads(instructions.read_text())
    (tmp_path / "empty.mp4").write_bytes(b"")
    records.append(dict(records[0], id="empty/identify", video="empty.mp4", video_id="empty"))
    data = tmp_path / "with_bad_video.json"
    data.write_text(json.dumps([dict(r, video=str((instructions.parent / r["video"]).resolve())) if r["video_id"] != "empty" else r
                                for r in records]))
    result = run("--data", str(data), "--out", str(tmp_path / "c2"), "--num-frames", "2", "--quiet")
    assert result.exit_code == 1
    assert "2 entries written" in result.output and "1 clips failed" in result.output
    assert "failed: empty" in result.output and "empty.mp4" in result.output
