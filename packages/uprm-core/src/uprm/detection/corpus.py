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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.detection.output import (
    RESULTS_NAME,
    is_complete,
    remove_leftovers,
    write_results,
    write_video_outputs,
)
from uprm.options import DetectOptions

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
    #: a Ray job's replicas, restarts and retried chunks (``None``: a local run)
    ray: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"process": self.process, "done": self.done, "skipped": self.skipped,
               "failed": [{"video": v, "error": e} for v, e in self.failed], "seconds": round(self.seconds, 3),
               "results": self.results}
        return out if self.ray is None else {**out, "ray": self.ray}


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


@dataclass
class _Job:
    """The settings of one run, shared by its videos."""

    model_or_checkpoint: Any
    out: Path
    options: DetectOptions
    requested: dict[str, Any]
    progress: bool
    process: str = "0/1"
    model: Any = None
    taxonomy: Any = None  # the site's uprm.taxonomy.Taxonomy, read once for the run

    def get_model(self) -> Any:
        if self.model is None:
            from uprm.modeling.loading import load_model

            opts = self.options
            self.model = load_model(self.model_or_checkpoint, device=opts.device, threads=opts.threads,
                                    expert_options=opts.expert_options or None).model
        return self.model

    def run(self, path: Path) -> None:
        from uprm.detection.runner import detect_video

        model = self.get_model()
        kwargs = self.video_kwargs()
        self.write(path, lambda draw: detect_video(path, model, on_segment=draw, progress=self.progress, **kwargs),
                   dict(model.block.experts))

    def video_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~uprm.detection.detect_video` of this run."""
        return {**self.options.video_kwargs(), "taxonomy": self.taxonomy or self.options.taxonomy}

    def write(self, path: Path, detect: Callable[[Any], Any], experts: Mapping[str, Any]) -> None:
        """Write one video's outputs: ``detect(on_segment)`` returns its
        :class:`~uprm.detection.VideoDetection` and calls ``on_segment`` (``None`` without
        evidence sheets) as each segment is final; ``experts`` name labels and predicates
        on the sheets. Here (a local run) or in the driver of a Ray job."""
        from uprm.detection.evidence import render_evidence

        vid, sheets = path.stem, {}
        remove_leftovers(self.out, vid)  # what a killed run was writing for this video

        def draw(n: int, segment: Any, evidence: Any) -> None:
            render_evidence(self.out / vid / f"{n}.png", segment, evidence, experts, vid, n)
            sheets[n] = f"{vid}/{n}.png"

        detection = detect(draw if self.options.evidence else None)
        write_video_outputs(self.out, detection, self.requested, sheets, self.process)


def detect_files(
    videos: Sequence[str | os.PathLike],
    model_or_checkpoint: Any,
    out_dir: str | os.PathLike,
    *,
    options: DetectOptions | None = None,
    overwrite: bool = False,
    progress: bool = True,
    ray: bool | str | None = None,
    replicas: int | None = None,
    chunk_windows: int | None = None,
    on_event: Callable[[Any], None] | None = None,
    **option_values: Any,
) -> CorpusReport:
    """Detect threats in every video and write ``OUT/<video_id>.json``, ``.png``, the
    evidence sheets and ``OUT/results.json`` (see :mod:`uprm.detection.output`).

    ``ray`` runs the detection as a Ray job (:mod:`uprm.detection.ray_runner`): ``True``
    starts or joins a Ray on this machine, a string is a cluster's address (``"auto"``,
    ``"ray://host:10001"``); ``replicas`` model replicas (default: one per GPU, else 1)
    take chunks of about ``chunk_windows`` windows; ``on_event`` is called with each
    :class:`~uprm.detection.ray_runner.RayEvent` of the job. The outputs are those of a
    local run.

    ``options`` (:class:`~uprm.options.DetectOptions`: window, stride, batch size, merge
    gap, sidecar folder, max side, device, threads, expert options, evidence sheets, the
    taxonomy whose cause phrasings give a segment its category and severity), or
    the same as keyword arguments (``window=8.0, evidence=False``), which override
    ``options``. The model is loaded once per process (:func:`uprm.load_model`), and only
    when a video needs it; a finished video is recognised by its requested settings and
    the model's fingerprint.
    """
    from uprm.modeling.loading import model_fingerprint

    start = time.perf_counter()
    opts = (options or DetectOptions()).replace(**option_values) if option_values else (options or DetectOptions())
    paths = resolve_videos(videos)
    state = _partial_state(opts.device)
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    requested = {**opts.requested(), "checkpoint": model_fingerprint(model_or_checkpoint)}
    job = _Job(model_or_checkpoint, out, opts, requested, progress and rank == 0, f"{rank}/{world}",
               taxonomy=opts.site_taxonomy())
    report = CorpusReport(process=f"{rank}/{world}", videos=[p.stem for p in paths])
    if ray is None and (replicas is not None or chunk_windows is not None):
        raise ValueError("replicas and chunk_windows are options of a Ray job: pass ray= (uprm detect --ray)")
    if ray is not None and state is not None:
        raise ValueError("ray= and torchrun do not mix: run `uprm detect --ray` as one process (the driver)")
    todo = []
    for path in _my_share(state, paths):
        if not overwrite and is_complete(out, path.stem, requested):
            report.skipped.append(path.stem)
        else:
            todo.append(path)
    if ray is not None:
        from uprm.detection.ray_runner import run_job

        report.ray = run_job(job, todo, report, ray=ray, replicas=replicas, chunk_windows=chunk_windows,
                             on_event=on_event).as_dict()
    else:
        _run_here(job, todo, report)
    if state is not None:
        state.wait_for_everyone()
    if rank == 0:
        for leftover in out.glob(f".{RESULTS_NAME}.*"):  # a killed run's half-written results.json
            leftover.unlink(missing_ok=True)
        report.results = str(write_results(out, report.videos, requested))
    report.seconds = time.perf_counter() - start
    return report


def _run_here(job: _Job, paths: list[Path], report: CorpusReport) -> None:
    """Detect ``paths`` in this process, one after the other; a bad file is reported and
    the others go on."""
    for path in paths:
        try:
            job.run(path)
            report.done.append(path.stem)
        except Exception as exc:
            report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
            report.errors.append(exc)


def _my_share(state: Any, paths: list[Path]) -> list[Path]:
    if state is None:
        return paths
    with state.split_between_processes(paths) as share:
        return list(share)
