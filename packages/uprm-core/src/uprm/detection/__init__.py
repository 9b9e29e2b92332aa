"""Threat detection on videos of any length (``uprm detect``, ``uprm.detect``).

A video is cut into windows (``window`` seconds every ``stride`` seconds) on a common
sampling grid, so overlapping windows sample the same frames
(:mod:`~uprm.detection.plan`); each frame is decoded once, held only while a window
still to come needs it, and shared by every expert and window
(:mod:`~uprm.detection.frames`, :mod:`~uprm.detection.perception`); windows go in
batches through perception, the UPE block and the language model
(``UPRMModel.answer``: identify for every window, locate and attribute for the windows
answered yes); threat windows merge into segments in absolute seconds
(:mod:`~uprm.detection.merge`); the timeline and per-segment evidence sheets show when
and why (:mod:`~uprm.detection.timeline`, :mod:`~uprm.detection.evidence`); many files
run resumably and split between processes under ``torchrun``
(:mod:`~uprm.detection.corpus`, :mod:`~uprm.detection.output`).

>>> import uprm
>>> segments = uprm.detect("cctv.mp4", "runs/uprm", window=8.0, stride=4.0)   # doctest: +SKIP
>>> [(s.start, s.end, s.score, s.cause, s.expert_weights) for s in segments]   # doctest: +SKIP

User guide: docs/detection.md.
"""

from __future__ import annotations

from uprm.detection.corpus import CorpusReport, detect_files, resolve_videos
from uprm.detection.evidence import Evidence, key_frames, render_evidence
from uprm.detection.frames import BufferedFrame, FrameBuffer
from uprm.detection.merge import DetectedSegment, SegmentMerger, WindowResult, merge_windows, window_result
from uprm.detection.output import format_table, is_complete, read_video_json, write_results, write_video_outputs
from uprm.detection.perception import Perception, PerceptionError, is_frame_wise
from uprm.detection.plan import WindowPlan, plan_windows
from uprm.detection.runner import ProgressCallback, VideoDetection, detect, detect_video, sidecar_meta
from uprm.detection.timeline import format_clock, render_timeline

__all__ = [
    "BufferedFrame",
    "CorpusReport",
    "DetectedSegment",
    "Evidence",
    "FrameBuffer",
    "Perception",
    "PerceptionError",
    "ProgressCallback",
    "SegmentMerger",
    "VideoDetection",
    "WindowPlan",
    "WindowResult",
    "detect",
    "detect_files",
    "detect_video",
    "format_clock",
    "format_table",
    "is_complete",
    "is_frame_wise",
    "key_frames",
    "merge_windows",
    "plan_windows",
    "read_video_json",
    "render_evidence",
    "render_timeline",
    "resolve_videos",
    "sidecar_meta",
    "window_result",
    "write_results",
    "write_video_outputs",
]
