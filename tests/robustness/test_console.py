"""A quiet console (issue 16, item 6).

Each main command runs as a real ``uprm`` process, offline, on tiny real inputs (a
3-video synthetic world, tiny checkpoints; ``extract`` also with a random YOLO-pose
model, so ultralytics runs for the first time in a fresh config folder): its stderr holds
progress bars and its own messages only — no warning of any kind (deprecations are
shown wherever raised), no ultralytics settings banner, no traceback.
The same runs load ``tests/socket_guard.py`` as ``sitecustomize`` and must open no
network socket (issue 16, item 4: one run of each command checks both).

An expected error (a missing checkpoint folder, an unknown expert) is one line,
``Error: ...``, and a non-zero exit status; ``uprm --debug`` (or ``UPRM_DEBUG=1``) adds
the traceback. The central handler of the ``uprm`` group is also checked in process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
UPRM = Path(sys.executable).with_name("uprm")

#: what must never reach the console
NOISE = re.compile(r"Warning|WARNING|warnings\.warn|Traceback|Ultralytics|yolo settings|Settings v\d|"
                   r"Deprecat|deprecated", re.IGNORECASE)
#: a tqdm progress bar (or one of its redraws)
PROGRESS = re.compile(r"^\s*[^:]*:?\s*\d+%\|.*\|\s*\d+/\d+|^\s*[\w\[\], ]+:\s+\d+%\||\|\s*\d+/\d+ \[")


def console_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not progress bars (tqdm redraws with ``\\r``)."""
    lines = []
    for line in re.split(r"[\r\n]+", stderr):
        if line.strip() and not PROGRESS.search(line):
            lines.append(line)
    return lines


class Workspace:
    """Inputs shared by the file: a synthetic world, its instruction files, and tiny
    checkpoints (every expert; coarse only for live video, which has no sidecar files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.world = root / "world"
        self.train = self.world / "instructions" / "synthetic_train.json"
        self.val = self.world / "instructions" / "synthetic_val.json"
        self.cache = root / "cache"
        self.sockets = root / "sockets.log"  # the default log of a run
        guard = root / "guard"
        guard.mkdir()
        shutil.copyfile(ROOT / "tests" / "socket_guard.py", guard / "sitecustomize.py")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE")}
        self.env.update(UPRM_OFFLINE="1", UPRM_CACHE=str(root / "uprm-cache"), YOLO_CONFIG_DIR=str(root / "yolo"),
                        MPLCONFIGDIR=str(root / "mpl"), PYTHONPATH=str(guard),
                        COLUMNS="120", OMP_NUM_THREADS="1",
                        # stricter than a user's console: deprecations are shown wherever they are
                        # raised (Python hides them outside __main__), so our own calls into torch,
                        # transformers, peft or torch-geometric cannot hide one
                        PYTHONWARNINGS="default")
        self.env.pop("UPRM_DEBUG", None)

    def run(self, *args: str, timeout: float = 300, log: Path | None = None) -> subprocess.CompletedProcess:
        """``uprm ARGS``; the refused network attempts of the run (and of the processes it
        starts) are in ``result.sockets``."""
        log = log or self.sockets
        log.unlink(missing_ok=True)
        env = {**self.env, "UPRM_SOCKET_LOG": str(log)}
        result = subprocess.run([str(UPRM), *args], env=env, capture_output=True, text=True, timeout=timeout,
                                cwd=self.root)
        result.sockets = log.read_text() if log.exists() else ""
        return result

def _checkpoint(folder: Path, experts: list[str] | None) -> Path:
    import torch

    import uprm

    torch.manual_seed(0)
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=experts, num_frames=2, max_new_tokens=8))
    return model.save_pretrained(folder)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    space = Workspace(tmp_path_factory.mktemp("console"))
    space.checkpoint = _checkpoint(space.root / "ckpt-all", None)
    space.coarse = _checkpoint(space.root / "ckpt-coarse", ["coarse"])
    from uprm_expert_pose.testing import random_pose_checkpoint  # a YOLO-pose model: ultralytics really runs

    space.pose_weights = random_pose_checkpoint(space.root / "yolo-pose.pt", calibration_size=64)
    return space


def _commands(ws: Workspace) -> dict[str, list[str]]:
    videos = sorted((ws.world / "videos").glob("*.mp4"))  # made by "data", which runs first
    video = videos[0] if videos else ws.world / "videos" / "none.mp4"
    return {
        "experts": ["experts"],
        "data": ["data", "synthetic", "--videos", "3", "--out", str(ws.world), "--size", "64", "--duration", "6,6",
                 "--seed", "1"],
        "extract": ["extract", "--data", str(ws.train), "--model", "tiny", "--num-frames", "2", "--out", str(ws.cache)],
        # ultralytics imported for the first time with a fresh config dir (its settings banner)
        "extract-yolo": ["extract", "--data", str(ws.train), "--experts", "pose", "--expert-option",
                         f"pose.weights={ws.pose_weights}", "--num-frames", "2", "--out", str(ws.root / "cache-yolo")],
        "train": ["train", "--tiny", "--data", str(ws.train), "--cache", str(ws.cache), "--out", str(ws.root / "run"),
                  "--max-steps", "2", "--num-frames", "2"],
        "eval": ["eval", "--checkpoint", str(ws.checkpoint), "--data", str(ws.val), "--out", str(ws.root / "eval")],
        "detect": ["detect", "--checkpoint", str(ws.checkpoint), "--out", str(ws.root / "detections"),
                   "--sidecar-dir", str(ws.world), str(ws.world / "videos")],
        "demo": ["demo", "--quick", "--out", str(ws.root / "demo")],
        "watch": ["watch", str(video), "--checkpoint", str(ws.coarse), "--alerts", str(ws.root / "alerts.jsonl"),
                  "--window", "4", "--stride", "2", "--max-side", "64"],
    }


ORDER = ["data", "extract", "demo", "train", "eval", "detect", "watch", "extract-yolo", "experts"]


@pytest.fixture(scope="module")
def runs(ws) -> dict[str, subprocess.CompletedProcess]:
    """Every main command once: ``data`` (the world the others read) and ``extract`` (the
    cache ``train`` reads) first, then the others two at a time (one torch thread each:
    the machine has two cores)."""
    commands = _commands(ws)

    def run(name: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = ws.run(*commands[name], log=ws.root / f"sockets-{name}.log")
        print(f"uprm {name}: {time.monotonic() - started:.1f} s")
        return result

    results = {name: run(name) for name in ORDER[:2]}
    commands = _commands(ws)  # the world's videos exist now
    with ThreadPoolExecutor(max_workers=2) as pool:
        results.update(zip(ORDER[2:], pool.map(run, ORDER[2:])))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_a_main_command_prints_what_it_means_and_nothing_else(runs, name):
    result = runs[name]
    assert result.returncode == 0, result.stderr[-3000:]
    # the whole output, progress bars included: a warning printed during a bar shares its line
    noise = [line for line in re.split(r"[\r\n]+", result.stderr + "\n" + result.stdout) if NOISE.search(line)]
    assert not noise, f"uprm {name} printed:\n" + "\n".join(noise)
    assert result.sockets == "", f"uprm {name} tried the network offline:\n{result.sockets}"


@pytest.mark.slow
def test_the_commands_did_their_work(ws, runs):
    """The quiet runs are real runs (not early exits)."""
    assert "background" in runs["experts"].stdout and "coarse" in runs["experts"].stdout
    assert ws.train.is_file() and (ws.root / "run" / "model.safetensors").is_file()
    assert (ws.root / "eval" / "report.json").is_file() and (ws.root / "detections" / "results.json").is_file()
    assert (ws.root / "demo" / "results.json").is_file()
    assert "done: 2 steps" in runs["train"].stdout
    assert (ws.root / "yolo" / "Ultralytics" / "settings.json").is_file()  # ultralytics' first run, unannounced


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["eval", "--checkpoint", "no-such-checkpoint", "--data", "{val}", "--out", "eval-missing"],
     r"no-such-checkpoint: no such checkpoint folder"),
    (["extract", "--data", "{train}", "--experts", "nosuch", "--out", "cache-x"], r"no expert named 'nosuch'"),
])
def test_an_expected_error_is_one_line_and_debug_shows_the_traceback(ws, runs, args, message):
    args = [a.format(val=ws.val, train=ws.train) for a in args]
    plain = ws.run(*args)
    assert plain.returncode == 1, plain.stderr
    lines = console_lines(plain.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(message, lines[0]), plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
    debug = ws.run("--debug", *args)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and re.search(message, debug.stderr), debug.stderr
    assert console_lines(debug.stderr)[-1] == lines[0]  # the same one line closes it


# -- the central handler, in process ---------------------------------------------------------------

@pytest.fixture
def failing_command():
    """A throw-away ``uprm boom`` that raises what the test sets, without catching it."""
    from uprm.cli import cli

    state: dict = {}

    @click.command("boom")
    def boom() -> None:
        raise state["exc"]

    cli.add_command(boom)
    yield state
    cli.commands.pop("boom", None)


def _invoke(*args: str, env: dict | None = None):
    from uprm.cli import cli

    return CliRunner().invoke(cli, list(args), env={"UPRM_DEBUG": None, **(env or {})})


@pytest.mark.parametrize("exc, line", [
    ("checkpoint", "Error: ckpt/model.safetensors: truncated"),
    ("missing", "Error: videos/a.mp4: No such file or directory"),
    ("click", "Error: a command's own message"),
])
def test_the_group_turns_expected_errors_into_one_line(failing_command, exc, line):
    from uprm.errors import CheckpointError

    cause = FileNotFoundError(2, "No such file or directory", "videos/a.mp4")
    failing_command["exc"] = {
        "checkpoint": CheckpointError("ckpt/model.safetensors: truncated"),
        "missing": cause,
        "click": _raised_from(click.ClickException("a command's own message"), cause),
    }[exc]
    result = _invoke("boom")
    assert result.exit_code == 1 and result.output.strip().splitlines() == [line], result.output
    for debug in (_invoke("--debug", "boom"), _invoke("boom", env={"UPRM_DEBUG": "1"})):
        assert debug.exit_code == 1
        assert "Traceback (most recent call last)" in debug.output and debug.output.strip().endswith(line), \
            debug.output


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    """``exc`` as ``raise exc from cause`` leaves it (both with their tracebacks)."""
    try:
        try:
            raise cause
        except type(cause) as caught:
            raise exc from caught
    except type(exc) as final:
        return final


def test_a_bug_keeps_its_traceback(failing_command):
    failing_command["exc"] = ZeroDivisionError("a bug")
    result = _invoke("boom")
    assert isinstance(result.exception, ZeroDivisionError)  # not turned into a one-line "expected" error


def test_debug_is_documented():
    result = _invoke("--help")
    assert "--debug" in result.output and "UPRM_DEBUG" in result.output
