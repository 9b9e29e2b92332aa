"""Make the pictures of the documentation site (``docs/img/``) — run by hand, committed.

    .venv/bin/python docs/scripts/make_images.py            # every picture (a few minutes on 2 CPU cores)
    .venv/bin/python docs/scripts/make_images.py dataflow   # only the data-flow diagram (a second)
    .venv/bin/python docs/scripts/make_images.py detection  # or: demo, training (several: any order)

- ``dataflow.png``: the data flow of UPRM, drawn with matplotlib;
- ``demo.txt``: what ``uprm demo`` prints (included as text on the getting-started page);
- ``router-weights.png``, ``loss.png``: ``uprm plot`` of a tiny run that the script makes
  with the real commands (``uprm data synthetic`` → ``uprm extract`` → ``uprm train``);
- ``timeline.png``, ``evidence.png``: ``uprm detect`` with the detection tests' tiny
  detector on a 40-second toy video (a threat is a bright stretch in which a person grabs
  a bag): the timeline, and the evidence sheet of the first segment.

Everything runs offline with every installed expert; the commands are printed as they run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
UPRM = [sys.executable, "-m", "uprm"]


# ---------------------------------------------------------------------------- data flow
STAGES = [  # (column title, boxes, colour)
    ("decode", ["video file\n(PyAV)", "sampled frames\n[F, 3, H, W]"], "#e3eaf4"),
    ("perceive (frozen)", ["video tower\n(CLIP ViT)", "pose: YOLO-pose /\nkeypoint JSON",
                           "relation: detector /\nscene-graph JSON", "background:\nSAM encoder"], "#e8f1e4"),
    ("adapt (trained)", ["projector\n(coarse, CVE)", "HPE: joint graph +\ncross-attention",
                         "ORE: GCN over\nthe scene graph", "VBE: FFN"], "#fbeedd"),
    ("route", ["trade-off router\neq.6  + z-loss eq.7"], "#f6e0e0"),
    ("language model", ["Video-LLaVA LLM\n(LoRA r16/α32)"], "#ece4f3"),
    ("parse", ["answers, segments,\ncauses, P(yes)"], "#eeeeee"),
]


def draw_dataflow(path: Path) -> None:
    """Boxes for the layers (decode → perceive → adapt → route → LLM → parse) and arrows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(13, 4.6), dpi=120)
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.3, 4.6)
    ax.axis("off")
    width, height, left = 1.75, 0.72, 0.25
    centres: list[list[tuple[float, float]]] = []
    for col, (title, boxes, colour) in enumerate(STAGES):
        x = left + col * 2.15
        ax.text(x + width / 2, 4.35, title, ha="center", va="center", fontsize=10.5, weight="bold")
        ys = [3.55 - i * 0.95 for i in range(len(boxes))] if len(boxes) > 2 else [2.6 - i * 1.2 for i in range(len(boxes))]
        if len(boxes) == 1:
            ys = [2.1]
        column = []
        for y, label in zip(ys, boxes):
            ax.add_patch(FancyBboxPatch((x, y - height / 2), width, height, boxstyle="round,pad=0.03,rounding_size=0.08",
                                        facecolor=colour, edgecolor="#555555", linewidth=0.9))
            ax.text(x + width / 2, y, label, ha="center", va="center", fontsize=8.3)
            column.append((x, y))
        centres.append(column)

    def arrow(a: tuple[float, float], b: tuple[float, float], **kw: object) -> None:
        ax.add_patch(FancyArrowPatch((a[0] + width, a[1]), (b[0], b[1]), arrowstyle="-|>", mutation_scale=10,
                                     color="#555555", linewidth=0.8, shrinkA=2, shrinkB=2, **kw))

    for target in centres[1]:
        arrow(centres[0][1], target)
    for source, target in zip(centres[1], centres[2]):
        arrow(source, target)
    for source in centres[2]:
        arrow(source, centres[3][0])
    arrow(centres[3][0], centres[4][0])
    arrow(centres[4][0], centres[5][0])
    ax.add_patch(FancyArrowPatch((centres[0][0][0] + width / 2, centres[0][0][1] - height / 2),
                                 (centres[0][1][0] + width / 2, centres[0][1][1] + height / 2), arrowstyle="-|>",
                                 mutation_scale=10, color="#555555", linewidth=0.8))
    ax.text(left + 2 * 2.15 + width / 2, -0.02, "each expert's tokens\non the coarse grid [B, T, D]",
            ha="center", va="top", fontsize=8, style="italic", color="#444444")
    ax.text(left + 3 * 2.15 + width / 2, 1.35, "z = G·Σ p_i f_i + (1 − G)·f_c", ha="center", fontsize=8,
            color="#444444")
    ax.text(left + 1 * 2.15 + width / 2, -0.02, "run once per clip,\ncached by uprm extract", ha="center", va="top",
            fontsize=8, style="italic", color="#444444")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------------------- a tiny run
def run(*args: str | Path, capture: bool = False) -> str:
    command = [*UPRM, *map(str, args)]
    print("$ uprm", " ".join(map(str, args)), flush=True)
    result = subprocess.run(command, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def training_run(work: Path) -> None:
    """``uprm data synthetic`` → ``uprm extract`` → ``uprm train`` → ``uprm plot``."""
    world, cache, runs = work / "world", work / "cache", work / "run"
    run("data", "synthetic", "--videos", "16", "--duration", "8,8", "--size", "64", "--seed", "0", "--quiet",
        "--out", world)
    train, val = world / "instructions" / "synthetic_train.json", world / "instructions" / "synthetic_val.json"
    run("extract", "--model", "tiny", "--data", train, "--data", val, "--out", cache)
    run("train", "--tiny", "--data", train, "--val", val, "--cache", cache, "--max-steps", "240", "--lr", "3e-3",
        "--eval-every", "60", "--save-every", "240", "--quiet", "--out", runs)
    run("plot", runs, "--smooth", "0.8")
    shutil.copy(runs / "plots" / "expert_weights.png", IMG / "router-weights.png")
    shutil.copy(runs / "plots" / "loss.png", IMG / "loss.png")


def _detection_fixtures() -> Any:
    """The detection tests' toy-video helpers (``write_threat_video``, ``train_detector``),
    loaded from their file: the pictures use exactly what those tests check."""
    path = ROOT / "packages" / "uprm-core" / "tests" / "detection" / "conftest.py"
    spec = importlib.util.spec_from_file_location("uprm_detection_fixtures", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def detection_pictures(work: Path) -> None:
    """``uprm detect`` with the detection tests' tiny detector (every installed expert,
    trained for a few dozen steps on a toy video: a threat is a bright stretch in which a
    person grabs a bag) on a 40-s video whose threat is at 16-28 s: its timeline and the
    evidence sheet of its first segment."""
    fixtures = _detection_fixtures()
    checkpoint = fixtures.train_detector(work / "train", work / "detector")
    data = work / "videos"
    video = fixtures.write_threat_video(data, "shop", 40.0, (16.0, 28.0))
    det = work / "detections"
    run("detect", video, "--checkpoint", checkpoint, "--out", det, "--sidecar-dir", data)
    shutil.copy(det / "shop.png", IMG / "timeline.png")
    sheets = sorted((det / "shop").glob("*.png")) if (det / "shop").is_dir() else []
    if not sheets:
        raise SystemExit("the detector found no segment: no evidence sheet to show")
    shutil.copy(sheets[0], IMG / "evidence.png")


def main(argv: list[str]) -> int:
    os.environ.setdefault("UPRM_OFFLINE", "1")
    IMG.mkdir(parents=True, exist_ok=True)
    draw_dataflow(IMG / "dataflow.png")
    if argv == ["dataflow"]:
        return 0
    parts = set(argv) or {"demo", "training", "detection"}
    if "demo" in parts:
        (IMG / "demo.txt").write_text(run("demo", capture=True))
    with tempfile.TemporaryDirectory(prefix="uprm-docs-") as tmp:
        if "training" in parts:
            training_run(Path(tmp))
        if "detection" in parts:
            detection_pictures(Path(tmp))
    print(f"pictures in {IMG}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
