"""``run_demo``: world → windows → feature cache → train coarse-only and UPRM →
``uprm detect`` on the held-out test videos → the paper's metrics → table and
``results.json``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from uprm.demo.settings import DEFAULT, DemoSettings

__all__ = ["Reporter", "run_demo"]

STAGES = ("world", "windows", "features", "train coarse", "train uprm", "detect", "score")


@dataclass
class Reporter:
    """Progress lines, and the wall and CPU seconds of each stage."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        number = STAGES.index(name) + 1 if name in STAGES else 0
        self.line(f"[{number}/{len(STAGES)}] {name}")
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        took = {"seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}
        self.stages[name] = took
        self.line(f"      {name}: {took['seconds']:.1f} s (CPU {took['cpu_seconds']:.1f} s)")


def _machine() -> dict[str, Any]:
    import platform

    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "processor": platform.processor()
            or platform.machine(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def run_demo(out: str | os.PathLike = "demo", *, seed: int = 0, settings: DemoSettings = DEFAULT,
             reporter: Reporter | None = None, quick: bool = False) -> dict[str, Any]:
    """Run the whole demo into ``out``; returns what ``out/results.json`` holds."""
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    rep = reporter or Reporter()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    machine = _machine()
    rep.line(f"uprm demo: seed {seed}, out {root}/ ({machine['cpus']} CPUs, {machine['torch_threads']} torch threads, "
             f"load average {machine['load_average'][0]:.2f})")
    _experts_line(rep)
    state = _Demo(root, seed, settings, rep)
    state.data()
    state.train()
    rows = state.evaluate()
    document = {
        "rows": rows, "seconds": round(time.perf_counter() - start_wall, 1),
        "cpu_seconds": round(time.process_time() - start_cpu, 1), "stages": rep.stages, "seed": seed,
        "quick": quick, "settings": settings.to_dict(), "world": state.world_counts, "training": state.training,
        "machine": {**machine, "load_average_end": [round(x, 2) for x in os.getloadavg()]},
    }
    from uprm.demo.table import format_table
    from uprm.utils import atomic_write_json

    atomic_write_json(root / "results.json", document)
    rep.line("")
    rep.line(format_table(rows))
    rep.line("")
    rep.line(f"{len(state.test_videos)} held-out test videos ({state.world_counts['test_threat_videos']} with a "
             f"threat); mAP at tIoU 0.1/0.2/0.3 (UCF-Crime's); timelines in {root / 'detections'}/<model>/")
    rep.line(f"wrote {root / 'results.json'} in {document['seconds']:.0f} s (CPU {document['cpu_seconds']:.0f} s)")
    return document


def _experts_line(rep: Reporter) -> None:
    from uprm.plugins.manager import get_plugin_host

    host = get_plugin_host()
    infos = host.experts()
    rep.line(f"Installed experts: {', '.join(f'{n} ({i.distribution} {i.version})' for n, i in infos.items())}")
    for plugin in host.broken():
        rep.line(f"Skipped broken plugin {plugin.name}: {plugin.error}")


class _Demo:
    """The demo's stages and what they pass on."""

    def __init__(self, root: Path, seed: int, settings: DemoSettings, rep: Reporter) -> None:
        self.root, self.seed, self.settings, self.rep = root, seed, settings, rep
        self.world = root / "world"
        self.cache = root / "cache"
        self.training: dict[str, Any] = {}

    def data(self) -> None:
        from uprm.demo.models import extract_cache, untrained_model
        from uprm.demo.world import render_world, split_videos, window_instructions

        s, rep = self.settings, self.rep
        with rep.stage("world"):
            summary = render_world(self.world, s, self.seed)
            self.test_videos = split_videos(self.world, summary, "test")
            self.durations = {v["video_id"]: v["duration"] for v in summary["videos"] if v["split"] == "test"}
            self.world_counts = {"videos": summary["num_videos"], **summary["counts"]["split"],
                                 "test_threat_videos": sum(bool(v["segments"]) for v in summary["videos"]
                                                           if v["split"] == "test")}
            rep.line(f"      {summary['num_videos']} videos ({s.size} px, {s.fps:g} fps, {s.min_duration:g}-"
                     f"{s.max_duration:g} s): {self.world_counts.get('train', 0)} train, "
                     f"{len(self.test_videos)} test ({self.world_counts['test_threat_videos']} threats)")
        with rep.stage("windows"):
            self.files = window_instructions(self.world, self.root / "data", s, self.seed)
            rep.line(f"      {s.window:g}-s windows every {s.stride:g} s, {s.num_frames} frames each: "
                     f"{_count(self.files['train'])} training conversations ({self.files['train']})")
        with rep.stage("features"):
            self.untrained = untrained_model(s, self.files["train"], self.cache, self.root / "runs" / "uprm", self.seed)
            report = extract_cache(self.untrained, [self.files["train"]], self.cache, s.num_frames)
            rep.line(f"      {report.clips} clips x experts {list(self.untrained.expert_names)}: {report.written} "
                     f"written, {report.cached} cached -> {self.cache}")

    def train(self) -> None:
        from uprm.demo.models import train_config, train_model

        s = self.settings
        for name in ("coarse", "uprm"):
            with self.rep.stage(f"train {name}"):
                config = train_config(name, s, self.files["train"], self.cache, self.root / "runs" / name, self.seed)
                every = max(1, s.steps // 4)
                run, info = train_model(config, lambda text: self.rep.line(f"      {text}"), every)
                self.training[name] = {"run": str(run), "experts": config.experts, **info}

    def evaluate(self) -> list[dict[str, Any]]:
        from uprm.demo.detect import always_yes, detect_model
        from uprm.demo.models import MODELS
        from uprm.demo.scoring import score_detections
        from uprm.modeling.loading import load_model

        detections: dict[str, Any] = {}
        with self.rep.stage("detect"):
            for name in ("untrained", "coarse", "uprm"):
                source = self.untrained if name == "untrained" else self.training[name]["run"]
                model = load_model(source, device="cpu").model
                began = time.perf_counter()
                detections[name] = detect_model(model, self.test_videos, self.root / "detections" / name,
                                                self.settings, self.world)
                found = sum(len(v) for v in detections[name].values())
                self.rep.line(f"      {name}: {found} segments in {len(self.test_videos)} videos "
                              f"({time.perf_counter() - began:.1f} s)")
            detections["always"] = always_yes(self.durations, self.settings)
        rows = []
        with self.rep.stage("score"):
            truth = self.world / "annotations" / "activitynet.json"
            videos = {path.stem: path for path in self.test_videos}  # <video_id>.mp4
            for name in MODELS:
                rows.append(score_detections(name, detections[name], truth, self.root / "eval" / name,
                                             explain=name != "always", sbert=self.settings.sbert, videos=videos))
        return rows


def _count(path: Path) -> int:
    import json

    return len(json.loads(path.read_text(encoding="utf-8")))
