"""Batch commands go on past a bad item: `uprm extract`, `uprm eval --checkpoint`,
`uprm detect` over many files and `uprm ablate` each get bad items among good ones;
the good ones finish, every failure is printed at the end naming its file or item, and
the exit status is not 0.

The commands run in-process (click's runner); what is checked is the exit status and
the content of the messages, not click's formatting.
"""

from __future__ import annotations

import json
import shutil

import pytest

import uprm
from uprm.testing import ColourExpert, isolated_plugins

from ._batch_fixtures import (
    FRAMES,
    WINDOWS,
    invoke,
    plain_checkpoint,
    write_bad_videos,
    write_records,
    write_videos,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two good 8-s videos (v0 with a threat, v1 normal) and two bad files, records of
    all four (two windows each), and an untrained tiny checkpoint."""
    root = tmp_path_factory.mktemp("batch")
    good = write_videos(root / "videos", 2, seconds=8.0)
    bad = write_bad_videos(root / "videos")
    return {
        "root": root, "good": good, "bad": bad,
        "records": write_records(root / "test.json", [good[0], bad["bad"], good[1], bad["empty"]]),
        "checkpoint": plain_checkpoint(root / "checkpoint"),
    }


def _stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def _assert_failures_at_the_end(result, names: list[str]) -> list[str]:
    """Exit status 1; each of ``names`` has its own failure line, and those lines come
    after everything the command printed about the good items."""
    assert result.exit_code == 1, result.output
    out = result.output.splitlines()
    failures = [i for i, line in enumerate(out) if "failed: " in line or line.lstrip().startswith("failed")]
    for name in names:
        assert any(name in out[i] for i in failures), (name, result.output)
    assert failures and failures[-1] >= len(out) - 2, result.output  # at the end (a count line may follow)
    return [out[i] for i in failures]


def test_extract_finishes_the_good_clips_and_lists_every_bad_one(data, tmp_path):
    cache = tmp_path / "cache"
    result = invoke("extract", "--data", data["records"], "--experts", "coarse", "--num-frames", FRAMES, "--out",
                    cache, "--quiet")
    lines = _assert_failures_at_the_end(result, ["bad.mp4", "empty.mp4"])
    assert sum("bad [" in line for line in lines) == len(WINDOWS)  # every window of each bad video
    assert sum("empty [" in line for line in lines) == len(WINDOWS)
    assert "4 clips failed" in result.output
    for video in ("v0", "v1"):  # the good clips are cached
        assert len(list((cache / video).rglob("coarse.safetensors"))) == len(WINDOWS)
    assert not (cache / "bad").exists() and not (cache / "empty").exists()


def test_eval_scores_the_good_clips_and_lists_every_bad_one(data, tmp_path):
    videos = shutil.copytree(data["root"] / "videos", tmp_path / "videos")
    records = write_records(tmp_path / "test.json", [videos / "v0.mp4", videos / "bad.mp4", videos / "v1.mp4",
                                                     videos / "empty.mp4"])
    out = tmp_path / "eval"
    args = ["eval", "--checkpoint", data["checkpoint"], "--data", records, "--out", out, "--no-sbert",
            "--format", "none", "--quiet", "--batch-size", "3"]
    result = invoke(*args)
    lines = _assert_failures_at_the_end(result, ["bad@0.000-4.000", "bad@4.000-8.000", "empty@0.000-4.000",
                                                 "empty@4.000-8.000"])
    assert all("VideoError" in line and ".mp4" in line for line in lines if "@" in line)
    assert "4 clip(s) failed" in result.output
    report = json.loads((out / "report.json").read_text())  # the good clips were scored
    assert report["counts"]["clips"] == 4 and len(report["failed"]) == 4
    assert any("4 clip(s) failed" in note for note in report["notes"])
    assert set(json.loads((out / "predictions.json").read_text())["results"]) == {"v0", "v1"}
    answered = {json.loads(line)["clip"] for line in (out / "clips.jsonl").read_text().splitlines()[1:]}
    assert answered == {f"v{k}@{lo:.3f}-{hi:.3f}" for k in (0, 1) for lo, hi in WINDOWS}

    # the bad files replaced by good ones, the same command again: every clip is answered
    for name in ("bad", "empty"):
        shutil.copy(data["good"][1], videos / f"{name}.mp4")
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["clips"] == 8 and report["failed"] == []


def test_detect_finishes_the_good_files_and_lists_every_bad_one(data, tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "missing.mp4"
    result = invoke("detect", data["good"][0], data["bad"]["bad"], data["good"][1], missing, data["bad"]["empty"],
                    "--checkpoint", data["checkpoint"], "--out", out, "--quiet", "--window", "4", "--stride", "4")
    lines = _assert_failures_at_the_end(result, ["bad.mp4", "missing.mp4", "empty.mp4"])
    assert len([line for line in lines if line.startswith("failed: ")]) == 3
    assert "3 video(s) failed" in result.output
    assert (out / "v0.json").is_file() and (out / "v1.json").is_file()
    assert sorted(json.loads((out / "results.json").read_text())["results"]) == ["v0", "v1"]


class _ColourOnly:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [ColourExpert]


def _grid(tmp_path, train, test, experts, variants):
    grid = {"train": str(train), "test": str(test), "out": str(tmp_path / "ablation"), "experts": experts,
            "training": {"tiny": True, "num_frames": FRAMES, "max_steps": 2, "batch_size": 4, "save_every": 1,
                         "lr": 1e-3},
            "evaluation": {"sbert": False, "batch_size": 8}, "seeds": [0], "variants": variants, "threads": 1}
    config = tmp_path / "grid.json"
    config.write_text(json.dumps(grid))
    return config, tmp_path / "ablation"


def test_ablate_finishes_the_good_variants_and_lists_every_failed_one(data, tmp_path):
    """Two variants of three need the pose expert, which is not installed here: they
    fail at training, the third runs to its evaluation."""
    train = write_records(tmp_path / "train.json", data["good"], split="train")
    test = write_records(tmp_path / "test.json", data["good"])
    config, out = _grid(tmp_path, train, test, ["coarse", "colour", "pose"], ["full", "wo_pose", "wo_ptr"])
    with isolated_plugins(plugins={"colour": _ColourOnly}, load_entry_points=False):
        result = invoke("ablate", "--config", config)
    assert result.exit_code == 1, result.output
    tail = result.output.splitlines()
    start = next(i for i, line in enumerate(tail) if "2 run(s) failed:" in line)
    listed = tail[start + 1:]
    assert any(line.strip().startswith("full/seed0 at train:") and "pose" in line for line in listed), result.output
    assert any(line.strip().startswith("wo_ptr/seed0 at train:") for line in listed), result.output
    assert (out / "wo_pose" / "seed0" / "eval" / "report.json").is_file()  # the good variant finished


def test_ablate_fails_a_run_whose_evaluation_left_clips_out(data, tmp_path):
    """A bad test video: scores over part of the test data would not compare with other
    runs', so each run fails at its evaluation, naming the clip; with the video fixed, the
    same command evaluates again (training is kept) and succeeds."""
    videos = shutil.copytree(data["root"] / "videos", tmp_path / "videos")
    train = write_records(tmp_path / "train.json", data["good"], split="train")
    test = write_records(tmp_path / "test.json", [videos / "v0.mp4", videos / "bad.mp4", videos / "v1.mp4"])
    config, out = _grid(tmp_path, train, test, ["coarse", "colour"], ["full", "wo_ptr"])
    with isolated_plugins(plugins={"colour": _ColourOnly}, load_entry_points=False):
        result = invoke("ablate", "--config", config)
        assert result.exit_code == 1, result.output
        listed = result.output.splitlines()
        listed = listed[next(i for i, line in enumerate(listed) if "2 run(s) failed:" in line) + 1:]
        for variant in ("full", "wo_ptr"):
            assert any(line.strip().startswith(f"{variant}/seed0 at eval: AblationRunError: 2 clip(s) of the test "
                                               "data failed, the first bad@0.000-4.000") for line in listed), listed
        shutil.copy(data["good"][1], videos / "bad.mp4")
        again = invoke("ablate", "--config", config)
    assert again.exit_code == 0, again.output
    for variant in ("full", "wo_ptr"):
        report = json.loads((out / variant / "seed0" / "eval" / "report.json").read_text())
        assert report["failed"] == [] and report["counts"]["clips"] == 6
