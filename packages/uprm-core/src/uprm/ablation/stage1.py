"""Stage-1 (pre-tuning) instructions from a synthetic world, so the ``w/o Pre-tuning``
row can be measured without RefCOCO, HumanML3D and RSI-CB. For each of the world's
**training** videos (never a test video), three physical-world instructions, one per
fine expert's kind of knowledge (the stage-1 tasks of paper §3.3):

- ``pose`` (HumanML3D's task): "Analyze the human pose and the actions depicted in the
  video." → what its people do (the world's scripted activities: "Walking, jogging and
  fight.");
- ``relation`` (RefCOCO's task): "Describe the objects in the video and how they relate
  to each other." → its scene graph's relations ("A person near a car; a person near a
  bag.");
- ``background`` (RSI-CB's task): "Analyze the visual background of the video and name
  the scene." → "The scene is a parking lot."

The records are videos (the real sets are partly images) with the world's keypoint and
scene-graph sidecars, so the pose and relation experts read the true signals, as they do
in stage 2; and with the stage-2 records' window, so the feature cache serves both.

    python -m uprm.ablation.stage1 world stage1.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["QUESTIONS", "motion_caption", "relation_caption", "synthetic_stage1"]

QUESTIONS = {
    "pose": "Analyze the human pose and the actions depicted in the video.",
    "relation": "Describe the objects in the video and how they relate to each other.",
    "background": "Analyze the visual background of the video and name the scene.",
}


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def motion_caption(activities: list[str]) -> str:
    """``["jogging", "walking", "fight"]`` → ``"Jogging, walking and fight."``."""
    acts = [a for a in activities if a] or ["standing"]
    return _sentence(acts[0] if len(acts) == 1 else ", ".join(acts[:-1]) + " and " + acts[-1])


def relation_caption(scene_graph: dict[str, Any], limit: int = 4) -> str:
    """The distinct ``subject predicate object`` triplets of a scene-graph JSON, in order
    of first appearance (at most ``limit``)."""
    seen: dict[str, None] = {}
    for frame in scene_graph.get("frames", []):
        for t in frame.get("triplets", []):
            seen.setdefault(f"a {t['subject']['label']} {t['predicate']} a {t['object']['label']}")
    if not seen:
        labels = dict.fromkeys(o["label"] for f in scene_graph.get("frames", []) for o in f.get("objects", []))
        return _sentence("no related objects; " + (", ".join(labels) or "an empty scene"))
    return _sentence("; ".join(list(seen)[:limit]))


def _records(world: Path, video: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    from uprm.data.instructions import make_record

    vid = video["video_id"]

    def rel(folder: str) -> str:
        return os.path.relpath(world / folder / f"{vid}{'.mp4' if folder == 'videos' else '.json'}", base)

    graph = json.loads((world / "scene_graphs" / f"{vid}.json").read_text(encoding="utf-8"))
    answers = {"pose": motion_caption(video.get("activities") or []), "relation": relation_caption(graph),
               "background": _sentence(f"the scene is a {video['scene'].replace('_', ' ')}")}
    common = {"video": rel("videos"), "video_id": vid, "split": "train", "keypoints": rel("keypoints"),
              "scene_graph": rel("scene_graphs"), "window": [0.0, float(video["duration"])],
              "duration": float(video["duration"]), "source": "synthetic"}
    return [make_record(f"stage1/{vid}/{task}", task, QUESTIONS[task], answer, **common)
            for task, answer in answers.items()]


def synthetic_stage1(world: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the stage-1 instruction JSON ``out`` from the training videos of the
    synthetic ``world`` (``uprm data synthetic --out WORLD``); returns ``out``."""
    from uprm.utils import atomic_write_json

    world, out = Path(world), Path(out)
    summary = json.loads((world / "world.json").read_text(encoding="utf-8"))
    videos = [v for v in summary["videos"] if v.get("split") == "train"]
    if not videos:
        raise ValueError(f"{world}: the world has no training videos")
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [r for v in videos for r in _records(world.resolve(), v, out.parent.resolve())]
    atomic_write_json(out, records)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uprm.ablation.stage1",
                                     description="Stage-1 instructions from a synthetic world's training videos.")
    parser.add_argument("world", help="a synthetic world folder (uprm data synthetic --out)")
    parser.add_argument("out", help="the instruction JSON to write (e.g. stage1.json)")
    args = parser.parse_args(argv)
    path = synthetic_stage1(args.world, args.out)
    print(f"wrote {path} ({len(json.loads(path.read_text(encoding='utf-8')))} records)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
