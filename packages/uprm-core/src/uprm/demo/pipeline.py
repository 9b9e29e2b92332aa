"""``run_demo``: world → windows → feature cache → train coarse-only and UPRM →
``uprm detect`` on the held-out test videos → the paper's metrics → table and
``results.json``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from uprm.demo.settings import DEFAULT, DemoSettings

__all__ = ["Reporter", "run_demo"]

#: the numbered stages; "train" also records "train coarse" and "train uprm" (each model's own seconds)
STAGES = ("world", "windows", "features", "train", "detect", "score")


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
        "rows": rows, "comparisons": state.comparisons, "bootstrap": state.bootstrap.to_dict(),
        "seconds": round(time.perf_counter() - start_wall, 1),
        "cpu_seconds": round(time.process_time() - start_cpu + state.other_cpu, 1), "stages": rep.stages, "seed": seed,
        "quick": quick, "settings": settings.to_dict(), "world": state.world_counts, "training": state.training,
        "machine": {**machine, "load_average_end": [round(x, 2) for x in os.getloadavg()]},
    }
    from uprm.utils import atomic_write_json

    atomic_write_json(root / "results.json", document)
    _print_results(rep, state, document, root)
    return document


def _print_results(rep: Reporter, state: _Demo, document: dict[str, Any], root: Path) -> None:
    """The table with its intervals, how they were made, and the paired verdicts."""
    from uprm.demo.compare import format_comparisons
    from uprm.demo.table import format_table

    spec = state.bootstrap
    n = len(state.test_videos)
    rep.line("")
    rep.line(format_table(document["rows"]))
    rep.line("")
    rep.line(f"{n} held-out test videos ({state.world_counts['test_threat_videos']} with a threat); FNR, F2 and mAP "
             f"in percent, mAP at tIoU 0.1/0.2/0.3 (UCF-Crime's); timelines in {root / 'detections'}/<model>/")
    if spec.enabled:
        rep.line(f"[low, high]: 95 % interval, percentile bootstrap over the {n} test videos ({spec.samples} resamples, "
                 f"seed {spec.seed}; the video is the unit resampled, not the second)")
    rep.line("")
    rep.line(format_comparisons(document["comparisons"], spec))
    rep.line("")
    rep.line(f"wrote {root / 'results.json'} in {document['seconds']:.0f} s (CPU {document['cpu_seconds']:.0f} s)")


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
        self.other_cpu = 0.0  # CPU seconds of the second process (training side by side)

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
        """Train coarse-only and UPRM: side by side in two processes when the machine has
        two CPUs (``settings.parallel``), else one after the other. Either way each
        model's own seconds are recorded as the stages "train coarse" and "train uprm"."""
        parallel = self.settings.parallel and (os.cpu_count() or 1) >= 2
        with self.rep.stage("train"):
            if parallel:
                self.rep.line("      coarse only in a second process, UPRM in this one")
                self._train_side_by_side()
            else:
                for name in ("coarse", "uprm"):
                    self._train_here(name)

    def _train_here(self, name: str, also: Callable[[], None] | None = None) -> None:
        """Train ``name`` in this process; ``also`` runs after every step (it prints the
        other process's lines as they come)."""
        from uprm.demo.models import train_config, train_model

        s = self.settings
        wall, cpu = time.perf_counter(), time.process_time()
        config = train_config(name, s, self.files["train"], self.cache, self.root / "runs" / name, self.seed)
        run, info = train_model(config, lambda text: self.rep.line(f"      {name:<6} {text}"), max(1, s.steps // 4),
                                on_step=also)
        self.training[name] = {"run": str(run), "experts": config.experts, **info}
        self.rep.stages[f"train {name}"] = {"seconds": round(time.perf_counter() - wall, 2),
                                            "cpu_seconds": round(time.process_time() - cpu, 2)}

    def _train_side_by_side(self) -> None:
        from uprm.demo.models import TrainingProcess

        s = self.settings
        other = TrainingProcess("coarse", s, self.files["train"], self.cache, self.root / "runs" / "coarse", self.seed,
                                max(1, s.steps // 4))

        def relay() -> None:
            for text in other.lines():
                self.rep.line(f"      coarse {text}")

        self._train_here("uprm", also=relay)
        run, info, took = other.result()
        relay()
        self.training = {"coarse": {"run": str(run), **info}, **self.training}
        self.rep.stages = {**self.rep.stages, "train coarse": took}
        self.other_cpu = float(took["cpu_seconds"])

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
        s = self.settings
        with self.rep.stage("score"):
            truth = self.world / "annotations" / "activitynet.json"
            videos = {path.stem: path for path in self.test_videos}  # <video_id>.mp4
            for name in MODELS:
                rows.append(score_detections(name, detections[name], truth, self.root / "eval" / name,
                                             explain=name != "always", sbert=s.sbert, videos=videos,
                                             bootstrap=s.bootstrap, bootstrap_seed=s.bootstrap_seed))
            self.comparisons = self._compare()
        return rows

    def _compare(self) -> list[dict[str, Any]]:
        """UPRM against each other row, paired by test video (:mod:`uprm.demo.compare`)."""
        from uprm.demo.compare import compare_models
        from uprm.demo.models import MODELS
        from uprm.demo.table import LABELS

        dirs = {name: self.root / "eval" / name for name in MODELS}
        return compare_models(dirs, self.bootstrap, reference="uprm", labels={**LABELS, "uprm": "UPRM"})

    @property
    def bootstrap(self) -> Any:
        from uprm.metrics.uncertainty import Bootstrap

        return Bootstrap(samples=self.settings.bootstrap, seed=self.settings.bootstrap_seed)


def _count(path: Path) -> int:
    import json

    return len(json.loads(path.read_text(encoding="utf-8")))
