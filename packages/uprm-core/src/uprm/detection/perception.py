"""The experts' frozen perception of a batch of windows, each frame perceived once.

An expert is **frame-wise** when its ``extract`` treats frames independently: the
features of a clip are the per-frame features stacked along the first dimension
(the coarse expert's tower, YOLO-pose or a keypoint file, SAM). For those, detection
runs ``extract`` once on the frames of a batch that have no features yet and keeps each
frame's row beside the frame (:class:`~uprm.detection.frames.BufferedFrame`); a
window's features are its frames' rows stacked — so with 50 % overlap each frame goes
through the expert once instead of twice, and a batch of windows goes through it in
one call. Other experts (the relation expert derives motion predicates from
neighbouring frames) run ``extract`` on each window's own clip.

Which experts are frame-wise: an expert class may say so with a class attribute
``frame_wise = True`` / ``False``; without one, the core's coarse expert and the
pose and background plugins are (their extraction is per frame by construction; a test
checks shared and per-window features agree), every other expert is not. An expert
said to be frame-wise whose features do not have one row per frame falls back to
per-window extraction with a warning.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from uprm.detection.frames import FrameBuffer
from uprm.errors import PerceptionError, UPRMError
from uprm.experts.faults import expert_origin

__all__ = ["Perception", "PerceptionError", "is_frame_wise"]

Features = dict[str, torch.Tensor]

_HINT = (
    "`uprm detect` runs the checkpoint's experts as they are configured: an expert without a perception model of "
    "its own (pose without weights=, relation without a detector) reads sidecar files, so pass --sidecar-dir ROOT "
    "with ROOT/keypoints/<video_id>.json and ROOT/scene_graphs/<video_id>.json (docs/formats.md), or give the "
    "expert a model with --expert-option, e.g. pose.weights=/path/yolo11n-pose.pt"
)


def is_frame_wise(expert: Any) -> bool:
    """Whether ``expert.extract`` treats frames independently (``Expert.frame_wise``)."""
    return getattr(type(expert), "frame_wise", False) is True


class Perception:
    """Runs the experts on batches of windows held in a :class:`FrameBuffer`.

    Args:
        experts: ``{name: expert}`` (the model's, ``model.block.experts``).
        share: share frame-wise experts' features between windows (else every expert
            runs on every window's clip).
        timings: a dict that accumulates seconds per ``extract:<expert>``.
    """

    def __init__(self, experts: Mapping[str, Any], share: bool = True, timings: dict[str, float] | None = None):
        self.experts = dict(experts)
        self.frame_wise = {n for n, e in self.experts.items() if share and is_frame_wise(e)}
        self.timings = timings if timings is not None else {}

    def batch(self, buffer: FrameBuffer, windows: Sequence[int]) -> list[dict[str, Features]]:
        """Every expert's features of each window in ``windows`` (frames already in
        ``buffer``), ``[{expert: {key: tensor}}]`` in window order."""
        plan = buffer.plan
        shared = self._frame_features(buffer, plan.needed(windows))
        out = []
        for w in windows:
            clip = None
            feats: dict[str, Features] = {}
            for name, expert in self.experts.items():
                if name in shared:
                    feats[name] = _stack([buffer.frames[k].features[name] for k in plan.indices(w)])
                    continue
                clip = clip if clip is not None else buffer.window_clip(w)
                feats[name] = self._extract(name, expert, clip)
            out.append(feats)
        return out

    def _frame_features(self, buffer: FrameBuffer, needed: list[int]) -> set[str]:
        """Compute the frame-wise experts' rows of the frames in ``needed`` that lack
        them; returns the experts whose rows are ready."""
        ready = set()
        for name in sorted(self.frame_wise):
            todo = [k for k in needed if name not in buffer.frames[k].features]
            if todo:
                clip_indices = _with_neighbour(todo, needed)
                clip = buffer.clip(clip_indices)
                feats = self._extract(name, self.experts[name], clip)
                if not _per_frame(feats, clip.num_frames):
                    warnings.warn(f"expert {name!r}: features are not one row per frame "
                                  f"({ {k: tuple(v.shape) for k, v in feats.items()} }); extracting it per window",
                                  stacklevel=2)
                    self.frame_wise.discard(name)
                    continue
                for row, k in enumerate(clip_indices):
                    buffer.frames[k].features[name] = {key: v[row].clone() for key, v in feats.items()}
            ready.add(name)
        return ready

    def _extract(self, name: str, expert: Any, clip: Any) -> Features:
        start = time.perf_counter()
        try:
            feats = expert.extract(clip)
        except Exception as exc:
            window = clip.meta.get("window", [0.0, 0.0])
            # the plugin's own errors (a missing sidecar, no weights) get the hint; a crash is a fault of the plugin
            hint = _HINT if isinstance(exc, (UPRMError, OSError)) else \
                "An error inside the plugin, not a problem of the video: report it to the distribution's authors"
            raise PerceptionError(
                f"{clip.meta.get('path', clip.video_id)}: {expert_origin(expert, name)} failed on "
                f"[{window[0]:.1f}, {window[1]:.1f}) s: {type(exc).__name__}: {exc}. {hint}"
            ) from exc
        finally:
            key = f"extract:{name}"
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
        return feats


def _with_neighbour(todo: list[int], needed: list[int]) -> list[int]:
    """``todo``, plus one neighbouring needed index when ``todo`` is a single frame, so an
    expert that reads the sampling interval from the clip (keypoint-file matching) sees
    the same interval as in a window."""
    if len(todo) != 1 or len(needed) < 2:
        return todo
    k = todo[0]
    others = [i for i in needed if i != k]
    nearest = min(others, key=lambda i: (abs(i - k), i))
    return sorted([k, nearest])


def _per_frame(feats: Mapping[str, torch.Tensor], num_frames: int) -> bool:
    return bool(feats) and all(isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == num_frames
                               for v in feats.values())


def _stack(rows: list[Features]) -> Features:
    return {key: torch.stack([r[key] for r in rows]) for key in rows[0]}
