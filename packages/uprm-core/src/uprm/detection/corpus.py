"""Detection over many files, resumable, split between processes under ``torchrun``.

:func:`detect_files` is what ``uprm detect`` runs: each video's outputs are written as
soon as it is done (:mod:`uprm.detection.output`), finished videos are skipped on a
rerun, a bad file is reported and the others go on. Under ``torchrun`` (``WORLD_SIZE >
1``) the files are split between the processes with accelerate's
``PartialState().split_between_processes`` (as ``uprm extract`` splits clips); each
process writes its own videos' files, and process 0 writes ``results.json`` for all of
them after a barrier.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.detection.output import (
    RESULTS_NAME,
    checkpoint_fingerprint,
    is_complete,
    remove_leftovers,
    write_results,
    write_video_outputs,
)

__all__ = ["CorpusReport", "detect_files", "resolve_videos"]


@dataclass
class CorpusReport:
    """What :func:`detect_files` did in this process."""

    process: str = "0/1"
    videos: list[str] = field(default_factory=list)  # every video id of the run (all processes)
    done: list[str] = field(default_factory=list)  # detected by this process now
    skipped: list[str] = field(default_factory=list)  # complete from an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video, error)
    #: the exception behind each entry of ``failed`` (same order), for ``uprm --debug``
    errors: list[BaseException] = field(default_factory=list, repr=False, compare=False)
    seconds: float = 0.0
    results: str | None = None  # results.json, when this process wrote it

    def as_dict(self) -> dict[str, Any]:
        return {"process": self.process, "done": self.done, "skipped": self.skipped,
                "failed": [{"video": v, "error": e} for v, e in self.failed], "seconds": round(self.seconds, 3),
                "results": self.results}


def resolve_videos(videos: Sequence[str | os.PathLike]) -> list[Path]:
    """The video files: files as given (a missing one stays, to be reported), folders
    searched recursively for video files. Two videos with one stem are an error (their
    outputs would collide)."""
    from uprm.data import VIDEO_EXTENSIONS

    paths: list[Path] = []
    for item in videos:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        else:
            paths.append(path)
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem].resolve() != path.resolve():
            raise ValueError(f"two videos named {path.stem!r} ({seen[path.stem]} and {path}): their outputs "
                             "OUT/<video_id>.* would collide; rename one or run them into different --out folders")
        seen.setdefault(path.stem, path)
    return list(seen.values())


def _partial_state(device: str | None):
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=device == "cpu")


def _device(device: str | None, state: Any) -> str:
    if device not in (None, "auto"):
        return device
    if state is not None:
        return str(state.device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class _Job:
    """The settings of one run, shared by its videos."""

    model_or_checkpoint: Any
    out: Path
    options: dict[str, Any]
    requested: dict[str, Any]
    device: str
    expert_options: Mapping[str, Mapping[str, Any]] | None
    evidence: bool
    process: str = "0/1"
    model: Any = None

    def get_model(self) -> Any:
        if self.model is None:
            from uprm.detection.runner import load_model

            self.model = load_model(self.model_or_checkpoint, self.device, self.expert_options)
        return self.model

    def run(self, path: Path) -> None:
        from uprm.detection.evidence import render_evidence
        from uprm.detection.runner import detect_video

        model, vid, sheets = self.get_model(), path.stem, {}
        remove_leftovers(self.out, vid)  # what a killed run was writing for this video

        def draw(n: int, segment: Any, evidence: Any) -> None:
            render_evidence(self.out / vid / f"{n}.png", segment, evidence, dict(model.block.experts), vid, n)
            sheets[n] = f"{vid}/{n}.png"

        detection = detect_video(path, model, on_segment=draw if self.evidence else None, **self.options)
        write_video_outputs(self.out, detection, self.requested, sheets, self.process)


def detect_files(
    videos: Sequence[str | os.PathLike],
    model_or_checkpoint: Any,
    out_dir: str | os.PathLike,
    *,
    window: float = 8.0,
    stride: float = 4.0,
    batch_size: int = 4,
    merge_gap: float | None = None,
    sidecar_dir: str | os.PathLike | None = None,
    max_side: int | None = None,
    expert_options: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | None = "auto",
    overwrite: bool = False,
    progress: bool = True,
    evidence: bool = True,
) -> CorpusReport:
    """Detect threats in every video and write ``OUT/<video_id>.json``, ``.png``, the
    evidence sheets and ``OUT/results.json`` (see :mod:`uprm.detection.output`).

    Options as :func:`~uprm.detection.detect_video`; ``expert_options`` override the
    checkpoint's experts' options (e.g. a local weights path); ``evidence=False`` draws
    no evidence sheets. The model is loaded once per process, and only when a video
    needs it.
    """
    start = time.perf_counter()
    paths = resolve_videos(videos)
    state = _partial_state(device)
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = model_or_checkpoint if isinstance(model_or_checkpoint, (str, os.PathLike)) else None
    requested = {"window": float(window), "stride": float(stride), "merge_gap": merge_gap, "max_side": max_side,
                 "sidecar_dir": None if sidecar_dir is None else str(Path(sidecar_dir).resolve()),
                 "checkpoint": checkpoint_fingerprint(checkpoint)}
    options = {"window": window, "stride": stride, "batch_size": batch_size, "merge_gap": merge_gap,
               "sidecar_dir": sidecar_dir, "max_side": max_side, "progress": progress and rank == 0}
    job = _Job(model_or_checkpoint, out, options, requested, _device(device, state), expert_options, evidence,
               f"{rank}/{world}")
    report = CorpusReport(process=f"{rank}/{world}", videos=[p.stem for p in paths])
    for path in _my_share(state, paths):
        if not overwrite and is_complete(out, path.stem, requested):
            report.skipped.append(path.stem)
            continue
        try:
            job.run(path)
            report.done.append(path.stem)
        except Exception as exc:  # a bad file is reported; the others go on
            report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
            report.errors.append(exc)
    if state is not None:
        state.wait_for_everyone()
    if rank == 0:
        for leftover in out.glob(f".{RESULTS_NAME}.*"):  # a killed run's half-written results.json
            leftover.unlink(missing_ok=True)
        report.results = str(write_results(out, report.videos, requested))
    report.seconds = time.perf_counter() - start
    return report


def _my_share(state: Any, paths: list[Path]) -> list[Path]:
    if state is None:
        return paths
    with state.split_between_processes(paths) as share:
        return list(share)
