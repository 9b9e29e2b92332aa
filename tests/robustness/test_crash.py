"""Crash safety: a command killed with SIGKILL and run again reads no half-written file,
does not redo finished work, and ends with the results of an uninterrupted run.

Where each command's SIGKILL test lives:

==============  ==========================================================================
command         test
==============  ==========================================================================
uprm extract    packages/uprm-core/tests/data/test_cache.py
                ``test_killed_with_sigkill_mid_run_then_resumed`` (entries written before
                the kill keep their mtime; every entry equals an uninterrupted extraction's)
uprm train      packages/uprm-core/tests/training/test_kill_resume.py
                ``test_sigkill_then_resume_equals_an_uninterrupted_run`` (same weights and
                losses; checkpoints saved before the kill are not written again)
uprm eval       packages/uprm-core/tests/evaluation/test_kill_resume.py
                ``test_sigkill_then_rerun_equals_an_uninterrupted_run`` (the same output
                files; clips answered before the kill are kept as they were)
uprm serve      packages/uprm-core/tests/serve/test_load.py
                ``test_sigkill_mid_job_then_restart_loses_nothing`` (every accepted job
                finishes once; a finished result is unchanged; the requeued job's result
                equals the result of the same video in an uninterrupted job)
uprm detect     this file: ``test_detect_sigkilled_mid_run_then_rerun`` (a real kill at a
                random point after the first video) and
                ``test_detect_killed_between_writing_and_renaming`` (a kill at a chosen
                point: a video's timeline and evidence written, its JSON written to its
                temporary file but not renamed)
==============  ==========================================================================

``uprm detect`` over several files: each video's outputs are written atomically (a
temporary ``.<name>.*`` file, then one rename) with its JSON last, so a killed run leaves
either a finished video or one without a JSON (redone on the rerun, its temporary files
removed) — never a partial file under a final name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ._batch_fixtures import (
    ENV,
    assert_complete,
    close,
    detection_content,
    final_files,
    leftovers,
    run_uprm,
    stamps,
    uprm_argv,
    write_videos,
    yes_checkpoint,
)

pytestmark = pytest.mark.slow  # fresh interpreters: about 60 s in all on 2 cores

VIDEOS = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    checkpoint = yes_checkpoint(root / "checkpoint")
    videos = write_videos(root / "videos", VIDEOS, seconds=32.0)
    return root, checkpoint, videos


def _detect_args(world, out: Path) -> list[object]:
    _, checkpoint, videos = world
    return ["detect", *videos, "--checkpoint", checkpoint, "--out", out, "--quiet", "--format", "json"]


@pytest.fixture(scope="module")
def reference(world):
    """An uninterrupted run (in this process: what ``uprm detect`` runs, without a
    second interpreter's start-up)."""
    from uprm.detection import detect_files

    out = world[0] / "whole"
    report = detect_files(world[2], world[1], out, progress=False)
    assert sorted(report.done) == [f"v{k}" for k in range(VIDEOS)] and not report.failed
    return out


def _video_files(out: Path, vid: str) -> list[Path]:
    return [out / f"{vid}.json", out / f"{vid}.png", *sorted((out / vid).glob("*.png"))]


def _assert_equals_reference(out: Path, whole: Path) -> None:
    names = [p.relative_to(out) for p in final_files(out)]
    assert names == [p.relative_to(whole) for p in final_files(whole)]
    for k in range(VIDEOS):
        got, expected = detection_content(out / f"v{k}.json"), detection_content(whole / f"v{k}.json")
        assert close(got, expected), f"v{k}.json"
        assert got["segments"] and got["segments"][0]["evidence"] == f"v{k}/1.png"  # something was drawn
    got, expected = (json.loads((d / "results.json").read_text()) for d in (out, whole))
    assert close(got, expected)


def _rerun_and_check(world, out: Path, finished: list[str], reference: Path, in_process: bool = False) -> None:
    """Run the same detection again (``uprm detect`` in a fresh interpreter, or
    :func:`uprm.detection.detect_files` here): finished videos are skipped and left as
    they were, the rest are done, and the outputs equal the uninterrupted run's."""
    before = stamps([f for vid in finished for f in _video_files(out, vid)])
    if in_process:
        from uprm.detection import detect_files

        report = detect_files(world[2], world[1], out, progress=False).as_dict()
    else:
        result = run_uprm(*_detect_args(world, out))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
    assert sorted(report["skipped"]) == finished  # finished videos are not redone...
    assert sorted(report["done"]) == sorted(set(f"v{k}" for k in range(VIDEOS)) - set(finished))
    assert report["failed"] == []
    assert stamps(list(before)) == before  # ...nor rewritten: same inode, same mtime
    assert leftovers(out) == []  # the killed run's temporary files are gone
    for path in final_files(out):
        assert_complete(path)
    _assert_equals_reference(out, reference)


def test_detect_sigkilled_mid_run_then_rerun(world, reference):
    out = world[0] / "killed"
    victim = subprocess.Popen(uprm_argv(*_detect_args(world, out)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    first, last = out / "v0.json", out / f"v{VIDEOS - 1}.json"
    deadline = time.monotonic() + 240
    while not first.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()
    assert first.exists() and not last.exists() and not (out / "results.json").exists()  # killed mid-way

    # what the kill left under a final name is complete, and a video with a JSON is whole
    for path in final_files(out):
        assert_complete(path)
    finished = sorted(p.stem for p in out.glob("v*.json"))
    assert 1 <= len(finished) < VIDEOS
    for vid in finished:
        assert all(p.is_file() for p in _video_files(out, vid)) and (out / vid / "1.png").is_file()
    _rerun_and_check(world, out, finished, reference)


_KILL_BEFORE_RENAME = textwrap.dedent("""
    import os, signal, sys
    import uprm.utils

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(str(dst)) == sys.argv[1]:  # the temporary file is written; die before the rename
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)

    uprm.utils.os.replace = replace
    from uprm.cli import cli
    cli(sys.argv[2:])
""")


def test_detect_killed_between_writing_and_renaming(world, reference, tmp_path):
    """Killed at a chosen point: the second video's timeline and evidence sheet are
    written and its JSON is complete in its temporary file, not yet renamed. The final
    name never holds it; the rerun redoes that video (and the ones after it) and
    removes the temporary file."""
    out = tmp_path / "out"
    args = [str(a) for a in _detect_args(world, out)]
    victim = subprocess.run([sys.executable, "-c", _KILL_BEFORE_RENAME, "v1.json", *args], env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    assert [p.name.split(".")[1:3] for p in leftovers(out)] == [["v1", "json"]]
    assert (out / "v0.json").is_file() and (out / "v1.png").is_file() and (out / "v1" / "1.png").is_file()
    assert not (out / "v1.json").exists()
    for path in final_files(out):
        assert_complete(path)
    _rerun_and_check(world, out, ["v0"], reference, in_process=True)


def test_a_broken_json_under_a_final_name_is_not_trusted(world, reference, tmp_path):
    """A JSON cut short by something else than uprm (a copy, a full disk) marks nothing
    as done: the video is redone rather than read."""
    from uprm.detection import detect_files

    _, checkpoint, videos = world
    out = tmp_path / "out"
    out.mkdir()
    for name in ("v2.json", "v2.png"):
        (out / name).write_bytes((reference / name).read_bytes()[:100])
    report = detect_files([videos[2]], checkpoint, out, progress=False)
    assert (report.done, report.skipped, report.failed) == (["v2"], [], [])
    assert close(detection_content(out / "v2.json"), detection_content(reference / "v2.json"))
