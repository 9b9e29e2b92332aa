"""Shared set-up of the evaluation tests: a small synthetic world whose 6-second videos
are cut into two 3-second windows each (so predictions must be shifted by the window
start and a video's truth is a union over windows), a tiny checkpoint, and one finished
`uprm eval` run (built once per session, as a user would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

#: the tiny model of these tests: the coarse expert and one fine expert (two router columns)
EXPERTS = ["coarse", "background"]
WINDOWS = ((0.0, 3.0), (3.0, 6.0))


def invoke(*args: object, ok: bool = True, env: dict | None = None):
    """Run `uprm ARGS` in-process; with ``ok`` assert it succeeded."""
    from uprm.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _clip(segments, lo: float, hi: float) -> list[list[float]]:
    """Segments (seconds of the video) inside the window, relative to its start."""
    out = []
    for s, e in segments:
        a, b = max(s, lo), min(e, hi)
        if b > a:
            out.append([round(a - lo, 3), round(b - lo, 3)])
    return out


def windowed_records(world: Path) -> list[dict]:
    """Every video of the world as identify/locate(/attribute) records of two windows."""
    from uprm.data import attribute_answer, identify_answer, locate_answer, make_record
    from uprm.prompts import QUESTIONS

    summary = json.loads((world / "world.json").read_text())
    records = []
    for video in summary["videos"]:
        vid = video["video_id"]
        for lo, hi in WINDOWS:
            segs = _clip(video["segments"], lo, hi)
            common = {"video": f"../videos/{vid}.mp4", "video_id": vid, "duration": video["duration"],
                      "split": "test", "category": video["category"], "segments": segs,
                      "causes": video["causes"] or None, "window": [lo, hi]}
            answers = {"identify": identify_answer(bool(segs)), "locate": locate_answer(segs)}
            if segs:
                answers["attribute"] = attribute_answer(video["causes"])
            for task, answer in answers.items():
                records.append(make_record(f"{vid}/{lo:g}-{hi:g}/{task}", task, QUESTIONS[task], answer, **common))
    return records


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from uprm.synthetic import generate_world

    out = tmp_path_factory.mktemp("evaluation") / "world"
    generate_world(out, 3, seed=1, progress=False, min_duration=6.0, max_duration=6.0, size=64)
    return out


@pytest.fixture(scope="session")
def test_json(world: Path) -> Path:
    path = world / "instructions" / "windowed_test.json"
    path.write_text(json.dumps(windowed_records(world), indent=1))
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import uprm

    out = tmp_path_factory.mktemp("evaluation") / "tiny"
    uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=8, experts=EXPERTS)).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def cache(checkpoint: Path, test_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint's features of every clip (`uprm extract --model`)."""
    out = tmp_path_factory.mktemp("evaluation") / "cache"
    invoke("extract", "--data", test_json, "--model", checkpoint, "--out", out, "--quiet")
    return out


@pytest.fixture(scope="session")
def eval_run(checkpoint: Path, test_json: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `uprm eval` of the tiny checkpoint (every metric, SB included)."""
    out = tmp_path_factory.mktemp("evaluation") / "tiny-eval"
    invoke("eval", "--checkpoint", checkpoint, "--data", test_json, "--cache", cache, "--out", out, "--quiet",
           "--format", "none")
    return out
