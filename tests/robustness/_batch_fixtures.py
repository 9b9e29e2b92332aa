"""Helpers shared by the batch, crash and plugin-fault tests of tests/robustness
(``test_batch.py``, ``test_crash.py``, ``test_plugin_faults.py``): small videos, a tiny
checkpoint that calls every window a threat (so detection draws segments and evidence
sheets), ``uprm`` in-process and in a fresh interpreter, and the comparison of two
runs' outputs that allows last-bit float differences.

Not a conftest: the test modules import what they need (``from ._batch_fixtures import ...``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: frames per clip of the tiny models here (few tokens: fast)
FRAMES = 2
FPS = 2
SIZE = 64
CAUSE = "a person grabbing a bag"
YES_ANSWERS = {
    "identify": "Yes, there exists a threat.",
    "locate": "The threat occurs between 0 and 8 seconds.",
    "attribute": f"The threat is attributed to {CAUSE}.",
}

#: the environment of `uprm` subprocesses: one thread each (the machine has 2 cores)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_video(path: Path, seconds: float, seed: int) -> Path:
    """A small mp4 (``SIZE``², ``FPS`` frames/s) of flat frames whose grey level follows ``seed``."""
    from uprm.data import write_mp4

    rng = np.random.default_rng(seed)
    levels = rng.integers(10, 245, size=round(seconds * FPS))
    frames = (np.full((SIZE, SIZE, 3), int(v), np.uint8) for v in levels)
    return write_mp4(path, frames, fps=FPS)


def write_videos(folder: Path, count: int, seconds: float = 40.0) -> list[Path]:
    return [write_video(folder / f"v{k}.mp4", seconds, k) for k in range(count)]


def yes_checkpoint(out: Path, experts: tuple[str, ...] = ("coarse",), steps: int = 150) -> Path:
    """A tiny checkpoint trained (a few dozen steps, ~2 s) to answer every clip with
    :data:`YES_ANSWERS`: a threat between 0 and 8 s caused by :data:`CAUSE`."""
    import torch

    import uprm
    from uprm.testing import overfit, synthetic_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=FRAMES, max_new_tokens=12, experts=list(experts)))
        items = []
        for seed in range(3):
            feats = model.extract(synthetic_clip(FRAMES, SIZE, seed=seed))
            items += [(feats, q, a) for q, a in YES_ANSWERS.items()]
        overfit(model, items, lr=6e-3, max_steps=steps)
    model.save_pretrained(out)
    return out


def plain_checkpoint(out: Path, experts: tuple[str, ...] = ("coarse",)) -> Path:
    """An untrained tiny checkpoint (built in about a second)."""
    import uprm

    uprm.build_model(uprm.UPRMConfig.tiny(num_frames=FRAMES, max_new_tokens=8, experts=list(experts))).save_pretrained(out)
    return out


def invoke(*args: object):
    """`uprm ARGS` in-process (click's runner); exceptions become the result's exit code."""
    from click.testing import CliRunner

    from uprm.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def uprm_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "uprm", *map(str, args)]


def run_uprm(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """`uprm ARGS` in a fresh interpreter."""
    return subprocess.run(uprm_argv(*args), capture_output=True, text=True, timeout=timeout, env=ENV)


# --------------------------------------------------------------------------- comparing runs
def close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-6 relative: two processes may sum in another order and differ
    in the last bits (as the other kill tests allow)."""
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


#: what differs between two runs of the same detection: wall-clock measurements
_CLOCK = ("seconds", "windows_per_s")


def detection_content(path: Path) -> dict[str, Any]:
    """A video's ``<id>.json`` without its timings (seconds differ from run to run)."""
    data = json.loads(path.read_text())
    data.pop("timings", None)
    data["stats"] = {k: v for k, v in data.get("stats", {}).items() if k not in _CLOCK}
    return data


def final_files(out: Path) -> list[Path]:
    """Every file under ``out`` with a final name (temporary files start with a dot)."""
    return sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def leftovers(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*") if p.is_file())


def assert_complete(path: Path) -> None:
    """A JSON parses, a PNG decodes to its last row: nothing half-written."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as img:
            img.load()


def stamps(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    """(inode, mtime) per file: a file written again gets a new inode (atomic rename)."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


# --------------------------------------------------------------------------- instruction records
WINDOWS = ((0.0, 4.0), (4.0, 8.0))


def write_bad_videos(folder: Path) -> dict[str, Path]:
    """Two files that are not videos: ``bad.mp4`` (an mp4 header and zeros) and
    ``empty.mp4`` (zero bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    bad, empty = folder / "bad.mp4", folder / "empty.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    empty.write_bytes(b"")
    return {"bad": bad, "empty": empty}


def write_records(path: Path, videos: list[Path], split: str = "test") -> Path:
    """Identify and locate records (attribute too for a threat) of two 4-s windows of
    each video; even-numbered videos hold a threat at 1-3 s of the first window."""
    from uprm.data import attribute_answer, identify_answer, locate_answer, make_record
    from uprm.prompts import QUESTIONS

    records = []
    for n, video in enumerate(videos):
        vid = video.stem
        threat = n % 2 == 0
        for lo, hi in WINDOWS:
            segs = [[1.0, 3.0]] if threat and lo == 0.0 else []
            common = {"video": str(video), "video_id": vid, "duration": 8.0, "split": split,
                      "category": "Fighting" if threat else "Normal", "segments": segs,
                      "causes": [CAUSE] if threat else None, "window": [lo, hi]}
            answers = {"identify": identify_answer(bool(segs)), "locate": locate_answer(segs)}
            if segs:
                answers["attribute"] = attribute_answer([CAUSE])
            for task, answer in answers.items():
                records.append(make_record(f"{vid}/{lo:g}-{hi:g}/{task}", task, QUESTIONS[task], answer, **common))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1))
    return path
