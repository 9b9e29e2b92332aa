"""Detecting threats in one video of any length: windows, shared decoding, batched
perception and answers, online merging."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.detection.categories import category_of_cause
from uprm.detection.evidence import Evidence
from uprm.detection.frames import FrameBuffer
from uprm.detection.merge import DetectedSegment, SegmentMerger, WindowResult, window_result
from uprm.detection.perception import Perception
from uprm.detection.plan import WindowPlan, plan_windows
from uprm.taxonomy import Taxonomy, load_taxonomy

__all__ = ["ProgressCallback", "VideoDetection", "WindowAnswers", "answer_windows", "detect", "detect_video",
           "merge_answers", "sidecar_meta"]

#: called with (segment number from 1, the segment, the evidence of its best window)
SegmentCallback = Callable[[int, DetectedSegment, Evidence], None]

#: called after each batch with (windows done, windows in the video)
ProgressCallback = Callable[[int, int], None]


@dataclass
class VideoDetection:
    """Everything detection found in one video.

    Attributes:
        video: the file.
        video_id: its stem.
        duration: seconds.
        segments: the merged threat segments, in time order.
        windows: every window's answer summary (for the timeline).
        settings: window, stride, frames per window, sampling interval, merge gap, max
            side, sidecar folder, the taxonomy (its file; the packaged default's path).
        timings: seconds per stage (``decode``, ``extract:<expert>``, ``answer``; with
            ``profile=True`` also ``adapters_router``, ``llm_prefill``, ``llm_generation``).
        stats: windows, frames decoded, the most frames held at once, seconds, windows/s.
    """

    video: str
    video_id: str
    duration: float
    segments: list[DetectedSegment]
    windows: list[WindowResult]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``OUT/<video_id>.json`` (docs/detection.md)."""
        return {
            "video": self.video,
            "video_id": self.video_id,
            "duration": round(self.duration, 3),
            "segments": [s.to_dict() for s in self.segments],
            "windows": [w.to_dict() for w in self.windows],
            "settings": self.settings,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "stats": self.stats,
        }


def sidecar_meta(sidecar_dir: str | os.PathLike | None, video_id: str) -> dict[str, str]:
    """``clip.meta`` sidecar paths of a video from ``ROOT/keypoints/<id>.json`` and
    ``ROOT/scene_graphs/<id>.json`` (the synthetic world's layout), those that exist."""
    if sidecar_dir is None:
        return {}
    root = Path(sidecar_dir)
    found = {}
    for key, folder in (("keypoints", "keypoints"), ("scene_graph", "scene_graphs")):
        path = root / folder / f"{video_id}.json"
        if path.is_file():
            found[key] = str(path)
    return found


@dataclass
class _Run:
    """The state of one video's detection pass."""

    model: Any
    plan: WindowPlan
    buffer: FrameBuffer
    perception: Perception
    merger: SegmentMerger
    on_segment: SegmentCallback | None
    timings: dict[str, float]
    on_progress: ProgressCallback | None = None
    taxonomy: Any = None  # a uprm.taxonomy.Taxonomy: the segments' categories from their causes
    windows: list[WindowResult] = field(default_factory=list)
    segments: list[DetectedSegment] = field(default_factory=list)

    def step(self, batch: range) -> None:
        for result, payload in self.answer(batch, self.on_segment is not None):
            self.merge(result, payload)
        if self.on_progress is not None:
            self.on_progress(len(self.windows), len(self.plan))

    def answer(self, batch: range, evidence: bool) -> list[tuple[WindowResult, Evidence | None]]:
        """Decode, perceive and answer one batch of windows: each window's result, with
        the evidence of its frames when ``evidence`` and the window is a threat (what a
        Ray replica does for a chunk of a video, :func:`answer_windows`)."""
        plan, buffer = self.plan, self.buffer
        start = time.perf_counter()
        buffer.fill(batch)
        self._add("decode", start)
        feats = self.perception.batch(buffer, batch)
        start = time.perf_counter()
        answers = _answer(self.model, feats)
        self._add("answer", start)
        out = []
        for w, ans, f in zip(batch, answers, feats):
            result = window_result(w, ans, plan.span(w), plan.duration)
            out.append((result, self._evidence(w, f) if evidence and result.threat else None))
        following = batch[-1] + 1
        buffer.release_before(plan.starts[following] if following < len(plan) else plan.starts[-1] + plan.num_frames)
        return out

    def merge(self, result: WindowResult, payload: Evidence | None) -> None:
        """Add one window's result (in time order) to the video's windows and segments."""
        self.windows.append(result)
        self._close(self.merger.add(result, payload))

    def finish(self) -> None:
        self._close(self.merger.finish())

    def _evidence(self, w: int, feats: Mapping[str, Any]) -> Evidence:
        clip = self.buffer.window_clip(w)
        return Evidence(clip.frames, clip.timestamps.tolist(), dict(feats), self.plan.span(w))

    def _close(self, closed: Sequence[tuple[DetectedSegment, Any]]) -> None:
        for segment, evidence in closed:
            category = category_of_cause(segment.cause, self.taxonomy) if self.taxonomy is not None else None
            if category is not None:
                segment.category, segment.severity = category.name, category.severity
            self.segments.append(segment)
            if self.on_segment is not None and evidence is not None:
                start = time.perf_counter()
                self.on_segment(len(self.segments), segment, evidence)
                self._add("evidence", start)

    def _add(self, stage: str, start: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


#: tokens generated for the identify question: its first token decides yes or no (and
#: gives P(yes)); the rest of "Yes, there exists a threat." is not needed
IDENTIFY_TOKENS = 4


def _answer(model: Any, feats: list[dict[str, Any]]) -> list[Any]:
    """Identify for every window (a few tokens); locate and attribute only for the windows
    answered yes (most surveillance windows are normal, so most prompts are saved). The
    adapters, the router and the video tokens' prefill run once per window
    (``model.prefill``): the yes windows' further questions start from the same prefix."""
    prefix = model.prefill(model.collate(feats))
    answers = model.answer(prefix, ("identify",), max_new_tokens=IDENTIFY_TOKENS)
    yes = [i for i, a in enumerate(answers) if a.threat]
    if yes:
        more = model.answer(prefix.select(yes), ("locate", "attribute"))
        for i, extra in zip(yes, more):
            answers[i].locate, answers[i].attribute, answers[i].locate_prob = extra.locate, extra.attribute, \
                extra.locate_prob
    return answers


def detect_video(
    video: str | os.PathLike,
    model_or_checkpoint: Any,
    window: float = 8.0,
    stride: float = 4.0,
    *,
    batch_size: int = 4,
    progress: bool = False,
    merge_gap: float | None = None,
    sidecar_dir: str | os.PathLike | None = None,
    max_side: int | None = None,
    share_perception: bool = True,
    on_segment: SegmentCallback | None = None,
    profile: bool = False,
    device: str | None = None,
    on_progress: ProgressCallback | None = None,
    taxonomy: str | os.PathLike | Taxonomy | None = None,
) -> VideoDetection:
    """Detect, locate and explain the threats of one video of any length.

    Windows of ``window`` seconds every ``stride`` seconds (snapped to a common sampling
    grid, :mod:`uprm.detection.plan`); each grid frame is decoded once and shared by the
    windows and experts that need it; ``batch_size`` windows at a time go through
    perception, the UPE block and the language model; threat windows are merged into
    segments (:mod:`uprm.detection.merge`) in absolute seconds.

    Args:
        video: the video file.
        model_or_checkpoint: a :class:`~uprm.UPRMModel` or a checkpoint directory.
        window, stride: seconds.
        batch_size: windows per batch.
        progress: show a tqdm bar (windows/s).
        merge_gap: segments this many seconds apart or closer merge (default: the
            sampling interval, ``window / num_frames``).
        sidecar_dir: ``ROOT`` of ``ROOT/keypoints/<id>.json`` and
            ``ROOT/scene_graphs/<id>.json`` for experts that read them.
        max_side: downscale decoded frames so their longer side is at most this.
        share_perception: compute frame-wise experts once per frame
            (:mod:`uprm.detection.perception`); ``False`` runs every expert per window.
        on_segment: called as each segment is final with ``(number, segment, evidence)``
            (used to draw evidence sheets; without it no frames are kept for evidence).
        profile: also time the UPE block, the LLM's prefill and generation (hooks).
        device: move the model there first (default: leave a given model where it is; a
            checkpoint goes to ``"auto"``, :func:`uprm.load_model`).
        on_progress: called after each batch with ``(windows done, windows in the
            video)``; an exception it raises stops the detection (the service uses it
            to report progress and to stop when its server is gone).
        taxonomy: the site's categories (a YAML file or a :class:`~uprm.taxonomy.Taxonomy`;
            ``None``: UCF-Crime's 13 and Normal). A segment whose cause contains a cause
            phrasing of one category gets its ``category`` and ``severity``
            (:mod:`uprm.detection.categories`); the others keep ``None``.

    Raises:
        uprm.VideoError: a bad video file.
        uprm.detection.PerceptionError: an expert cannot perceive the video (names the
            expert and what to pass, e.g. ``sidecar_dir``).
    """
    from uprm.data import VideoReader
    from uprm.modeling.loading import load_model

    site = load_taxonomy(taxonomy)  # a bad file fails before the model loads
    path = Path(video)
    model = load_model(model_or_checkpoint, device=device).model
    timings: dict[str, float] = {}
    begin = time.perf_counter()
    with VideoReader(path, max_side=max_side) as reader:
        duration = reader.info.duration
        plan = plan_windows(duration, window, stride, model.config.num_frames)
        gap = plan.interval if merge_gap is None else float(merge_gap)
        run = _Run(model, plan, FrameBuffer(reader, plan, path.stem, sidecar_meta(sidecar_dir, path.stem)),
                   Perception(model.block.experts, share_perception, timings), SegmentMerger(gap), on_segment, timings,
                   on_progress, site)
        _run_batches(run, batch_size, progress, profile)
    seconds = time.perf_counter() - begin
    settings = _settings(plan, window, stride, gap, max_side, sidecar_dir, site)
    stats = _stats(plan, batch_size, run.buffer.decoded, run.buffer.peak, seconds)
    return VideoDetection(str(path), path.stem, duration, run.segments, run.windows, settings, timings, stats)


def _settings(plan: WindowPlan, window: float, stride: float, gap: float, max_side: int | None,
              sidecar_dir: str | os.PathLike | None, site: Taxonomy) -> dict[str, Any]:
    """``VideoDetection.settings`` (the same for a local run and a Ray job)."""
    return {"window": float(window), "stride": float(stride), "num_frames": plan.num_frames,
            "interval": round(plan.interval, 6), "merge_gap": gap, "max_side": max_side,
            "sidecar_dir": None if sidecar_dir is None else str(sidecar_dir), "taxonomy": site.source}


def _stats(plan: WindowPlan, batch_size: int, decoded: int, peak: int, seconds: float) -> dict[str, Any]:
    """``VideoDetection.stats``: windows, frames decoded and held, seconds and windows/s."""
    return {"windows": len(plan), "frames_needed": len(plan.all_indices()), "frames_decoded": decoded,
            "peak_frames_held": peak, "max_frames_held": plan.max_frames_held(batch_size),
            "batch_size": batch_size, "seconds": round(seconds, 3),
            "windows_per_s": round(len(plan) / seconds, 3) if seconds > 0 else None}


@dataclass
class WindowAnswers:
    """The results of consecutive windows of one video, not merged yet: what a replica
    of a Ray job returns for a chunk (:func:`answer_windows`), merged by the driver in
    time order (:func:`merge_answers`).

    Attributes:
        windows: each window's result, with the :class:`Evidence` of its frames when
            evidence was asked and the window is a threat (else ``None``).
        timings: seconds per stage, as :attr:`VideoDetection.timings`.
        decoded: grid frames decoded for these windows.
        peak: the most frames held at once.
        seconds: the time spent on these windows.
    """

    windows: list[tuple[WindowResult, Evidence | None]]
    timings: dict[str, float]
    decoded: int
    peak: int
    seconds: float


def answer_windows(model: Any, reader: Any, plan: WindowPlan, windows: range, *, batch_size: int, video_id: str,
                   sidecar_dir: str | os.PathLike | None = None, evidence: bool = False,
                   timings: dict[str, float] | None = None) -> WindowAnswers:
    """Decode, perceive and answer ``windows`` (a run of whole batches of ``batch_size``
    from the first window of a batch) of one video's ``plan``, exactly as
    :func:`detect_video` does them, without merging. ``reader`` is an open
    :class:`~uprm.data.VideoReader` or anything with its ``frames_at``, ``info``,
    ``path`` and ``rotation`` (a Ray replica's frames decoded by a CPU task)."""
    if windows.start % batch_size:
        raise ValueError(f"windows {windows.start}-{windows.stop - 1} do not start on a batch of {batch_size}")
    timings = {} if timings is None else timings
    begin = time.perf_counter()
    run = _Run(model, plan, FrameBuffer(reader, plan, video_id, sidecar_meta(sidecar_dir, video_id)),
               Perception(model.block.experts, True, timings), SegmentMerger(), None, timings)
    out = [pair for batch in plan.batches(batch_size) if batch.start in windows for pair in run.answer(batch, evidence)]
    return WindowAnswers(out, timings, run.buffer.decoded, run.buffer.peak, time.perf_counter() - begin)


def merge_answers(video: str | os.PathLike, plan: WindowPlan, parts: Sequence[WindowAnswers], *, window: float,
                  stride: float, batch_size: int, merge_gap: float | None = None, max_side: int | None = None,
                  sidecar_dir: str | os.PathLike | None = None, taxonomy: str | os.PathLike | Taxonomy | None = None,
                  on_segment: SegmentCallback | None = None) -> VideoDetection:
    """The :class:`VideoDetection` of a video whose windows were answered in ``parts``
    (in time order, together every window of ``plan`` once): merged, categorised and
    with ``on_segment`` called as :func:`detect_video` does. Timings are summed over the
    parts, ``stats.frames_decoded`` too (a frame two parts share counts twice),
    ``stats.peak_frames_held`` is their largest and ``stats.seconds`` the parts' time."""
    site = load_taxonomy(taxonomy)
    path = Path(video)
    gap = plan.interval if merge_gap is None else float(merge_gap)
    timings: dict[str, float] = {}
    run = _Run(None, plan, None, None, SegmentMerger(gap), on_segment, timings, taxonomy=site)  # type: ignore[arg-type]
    for part in parts:
        for stage, seconds in part.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        for result, payload in part.windows:
            run.merge(result, payload)
    run.finish()
    if [r.index for r in run.windows] != list(range(len(plan))):
        raise ValueError(f"{path}: the parts answer windows {[r.index for r in run.windows]}, not each of the "
                         f"{len(plan)} windows once in order")
    stats = _stats(plan, batch_size, sum(p.decoded for p in parts), max((p.peak for p in parts), default=0),
                   sum(p.seconds for p in parts))
    return VideoDetection(str(path), path.stem, plan.duration, run.segments, run.windows,
                          _settings(plan, window, stride, gap, max_side, sidecar_dir, site), timings, stats)


def _run_batches(run: _Run, batch_size: int, progress: bool, profile: bool) -> None:
    from tqdm.auto import tqdm

    from uprm.detection.profile import stage_hooks

    hooks = stage_hooks(run.model, run.timings) if profile else contextlib.nullcontext()
    with hooks, tqdm(total=len(run.plan), unit="window", desc=run.buffer.video_id, disable=not progress,
                     leave=False) as bar:
        for batch in run.plan.batches(batch_size):
            run.step(batch)
            bar.update(len(batch))
        run.finish()


def detect(
    video: str | os.PathLike,
    model_or_checkpoint: Any,
    window: float = 8.0,
    stride: float = 4.0,
    *,
    batch_size: int = 4,
    progress: bool = False,
    ray: bool | str | None = None,
    replicas: int | None = None,
    **options: Any,
) -> list[DetectedSegment]:
    """The threat segments of one video (seconds, time order), each a
    :class:`~uprm.Segment` (``start``, ``end``, ``cause``, ``score``) that also carries
    ``expert_weights``, and ``category`` and ``severity`` when the taxonomy knows its cause. Options as :func:`detect_video`, which returns everything
    (windows, timings) and draws nothing.

    ``ray=True`` (a Ray on this machine, started or joined) or ``ray="auto"`` /
    ``"ray://host:10001"`` (a cluster) runs it as a Ray job: the video's windows, in
    chunks, over ``replicas`` model replicas (default: one per GPU, else 1) that each
    load ``model_or_checkpoint`` — a checkpoint folder at the same path on every node —
    themselves (:mod:`uprm.detection.ray_runner`); the segments are a local run's. Its
    options are those of :class:`~uprm.options.DetectOptions` (``threads`` per replica).

    >>> for s in uprm.detect("cctv.mp4", "runs/uprm"):          # doctest: +SKIP
    ...     print(f"{s.start:.1f}-{s.end:.1f} s  {s.score:.2f}  {s.cause}")
    """
    if ray is not None:
        return _detect_on_ray(video, model_or_checkpoint, window, stride, batch_size, progress, ray, replicas,
                              options)
    if replicas is not None:
        raise ValueError("replicas= is the number of model replicas of a Ray job: pass ray= too")
    return detect_video(video, model_or_checkpoint, window, stride, batch_size=batch_size, progress=progress,
                        **options).segments


def _detect_on_ray(video: str | os.PathLike, checkpoint: Any, window: float, stride: float, batch_size: int,
                   progress: bool, ray: bool | str, replicas: int | None,
                   options: dict[str, Any]) -> list[DetectedSegment]:
    from uprm.detection.ray_runner import detect_on_ray
    from uprm.options import DetectOptions

    unknown = sorted(set(options) - set(DetectOptions.OPTION_NAMES))
    if unknown:
        raise TypeError(f"uprm.detect(ray=...) takes the options of DetectOptions, not {', '.join(unknown)}")
    if options.get("device", "") is None:
        options = {k: v for k, v in options.items() if k != "device"}
    opts = DetectOptions(window=window, stride=stride, batch_size=batch_size, **options)
    return detect_on_ray(video, checkpoint, opts, ray=ray, replicas=replicas, progress=progress).segments
