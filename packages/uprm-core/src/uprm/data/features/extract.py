"""``uprm extract``'s engine: fill a feature cache with every expert's frozen perception.

:func:`extract_features` decodes each distinct clip once for all the experts that need
it, skips valid entries (so a killed run resumes), recomputes stale ones, writes each
entry atomically, and under ``torchrun`` splits the clips between processes with
accelerate's ``PartialState().split_between_processes``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from uprm.data.clips import load_clip_for
from uprm.data.features.cache import FeatureCache, entry_spec
from uprm.data.records import ClipKey
from uprm.errors import ExpertError
from uprm.experts.base import Expert, ExpertContext
from uprm.experts.faults import expert_call, expert_origin

__all__ = ["DEFAULT_CONTEXT", "ExtractionReport", "default_context", "extract_features"]

#: the context ``uprm extract`` uses when no model is given (``uprm.testing.tiny_context``'s
#: dims: D = 32, 1 + 4×4 tokens per frame from 32-pixel frames)
DEFAULT_CONTEXT: dict[str, int] = {"hidden_size": 32, "tokens_per_frame": 17, "num_prefix_tokens": 1, "image_size": 32}


def default_context(num_frames: int = 8, **overrides: Any) -> ExpertContext:
    """The context ``uprm extract`` uses without a model: :data:`DEFAULT_CONTEXT`
    (tiny dims, as :func:`uprm.testing.tiny_context`, and ``tiny=True``: experts given
    no weights build random perception) with ``num_frames``."""
    return ExpertContext(**{**DEFAULT_CONTEXT, "num_frames": int(num_frames), "tiny": True, **overrides})


# --------------------------------------------------------------------------- extraction
@dataclass
class ExtractionReport:
    """What :func:`extract_features` did in this process."""

    clips: int = 0  # clips in this process's share
    written: int = 0  # entries written
    cached: int = 0  # entries already valid
    stale: int = 0  # entries recomputed because they were stale
    failed: list[tuple[str, str]] = field(default_factory=list)  # (clip, error)
    seconds: float = 0.0
    process: str = "0/1"

    def as_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "written": self.written, "cached": self.cached, "stale": self.stale,
                "failed": len(self.failed), "seconds": round(self.seconds, 3), "process": self.process}


def _partial_state():
    """accelerate's process state when several processes run (torchrun), else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=True)


def extract_features(
    keys: Sequence[ClipKey],
    experts: Mapping[str, Expert],
    cache: FeatureCache | str | os.PathLike,
    *,
    overwrite: bool = False,
    fail_fast: bool = False,
    progress: bool = True,
) -> ExtractionReport:
    """Fill ``cache`` with every expert's features of every clip in ``keys``.

    Valid entries are skipped (so a killed run resumes), stale ones recomputed, each
    clip is decoded once for all the experts that need it, and each entry is written
    atomically. Under ``torchrun`` (``WORLD_SIZE > 1``) the clips still to do are split
    between the processes with accelerate's ``PartialState().split_between_processes``.

    A clip that fails (a bad video, an expert error) is reported in the result and the
    others go on, unless ``fail_fast``.
    """
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    specs = {name: entry_spec(e) for name, e in experts.items()}
    state = _partial_state()
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    report = ExtractionReport(process=f"{rank}/{world}")
    start = time.perf_counter()
    todo = [(key, _needed(cache, key, specs, overwrite)) for key in keys]
    mine = _my_share(state, todo)
    report.clips = len(mine)
    report.cached = sum(len(experts) - len(need) for _, need in mine)
    bar = _progress_bar(progress and rank == 0, len(mine), list(experts), world)
    try:
        for key, need in mine:
            if need:
                _extract_clip(key, need, experts, cache, specs, report, fail_fast)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if state is not None:
        state.wait_for_everyone()
    report.seconds = time.perf_counter() - start
    return report


def _needed(cache: FeatureCache, key: ClipKey, specs: Mapping[str, Mapping[str, str]],
            overwrite: bool) -> list[tuple[str, str]]:
    """``[(expert, status)]`` of the entries of ``key`` to (re)compute."""
    need = []
    for name, spec in specs.items():
        status = "overwrite" if overwrite else cache.status(key, name, spec)
        if status != "ok":
            need.append((name, status))
    return need


def _my_share(state, todo: list) -> list:
    if state is None:
        return todo
    state.wait_for_everyone()  # every process has looked before anyone writes
    with state.split_between_processes(todo) as share:
        return list(share)


def _progress_bar(show: bool, total: int, names: list[str], world: int):
    if not show:
        return None
    from tqdm.auto import tqdm

    procs = f" x{world} procs" if world > 1 else ""
    return tqdm(total=total, desc=f"extract [{', '.join(names)}]{procs}", unit="clip")


def _extract_clip(key: ClipKey, need: list[tuple[str, str]], experts: Mapping[str, Expert], cache: FeatureCache,
                  specs: Mapping[str, Mapping[str, str]], report: ExtractionReport, fail_fast: bool) -> None:
    """Decode one clip once and write the entries of every expert that needs it."""
    name = None
    try:
        clip = load_clip_for(key)
        for name, status in need:
            with expert_call(experts[name], "extract", f"clip {key.video_id} [{key.window_tag}]"):
                feats = experts[name].extract(clip)
            cache.write(key, name, feats, specs[name], clip, written_by=report.process)
            report.written += 1
            report.stale += status.startswith("stale")
            name = None
    except Exception as exc:
        if fail_fast:
            raise
        message = f"{type(exc).__name__}: {exc}"
        if name is not None and not isinstance(exc, ExpertError):  # the expert's own typed error, or a bad output
            message = f"{expert_origin(experts[name], name)}: {message}"
        report.failed.append((key.describe(), message))
