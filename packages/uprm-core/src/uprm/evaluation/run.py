"""Running the model over an evaluation's clips, once each, resumably.

The unit is the clip (a video and a window): the identify/locate/attribute records of
one window share it. Clips are sorted by (video, window) and cut into fixed batches of
``batch_size``; each batch goes through ``model.answer`` once (the experts and the
router run once for all its questions), asking identify and locate always and attribute
when one of the batch's clips has an attribute record. Features come from the feature
cache when its entry is valid, else are extracted online (:class:`InstructionDataset`).

With an output folder, each finished batch's answers are appended to
``OUT/clips.jsonl`` (one JSON line per clip after a header line holding the run's
fingerprint: the checkpoint's and data files' content hashes and the settings that
change answers) and flushed to disk. A rerun reads them back, drops a line cut short by
a kill, and answers only the batches not finished; the batches are the same, so the
answers are the same floats as an uninterrupted run's. A folder holding another run's
answers (another fingerprint) is an error unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uprm.evaluation.errors import EvaluationError
from uprm.prompts import STAGE2_TASKS

__all__ = ["CLIPS_FILE", "ClipJob", "ClipResult", "ClipStore", "answer_clips", "clip_jobs"]

CLIPS_FILE = "clips.jsonl"
_HEADER = "uprm_eval_clips"
_FORMAT = 1


@dataclass(frozen=True)
class ClipJob:
    """One clip to answer: its id, its :class:`uprm.data.ClipKey`, the tasks its records ask."""

    clip: str
    key: Any
    tasks: tuple[str, ...]


@dataclass
class ClipResult:
    """The model's answers about one clip (what ``clips.jsonl`` holds per line)."""

    clip: str
    video_id: str
    window: list[float] | None
    duration: float | None
    tasks: list[str]
    identify: str = ""
    locate: str = ""
    attribute: str = ""
    p_yes: float = 0.0
    locate_prob: float = 1.0
    expert_weights: dict[str, float] = field(default_factory=dict)

    def answers(self):
        """The :class:`uprm.ClipAnswers` (threat, segments, cause, score)."""
        from uprm.inference.answers import ClipAnswers

        return ClipAnswers(self.identify, self.locate, self.attribute, self.p_yes, self.locate_prob,
                           dict(self.expert_weights))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def clip_id(key: Any) -> str:
    """``<video_id>@<start>-<end>`` (3 decimals) or ``<video_id>@full``."""
    window = "full" if key.window is None else f"{key.window[0]:.3f}-{key.window[1]:.3f}"
    return f"{key.video_id}@{window}"


def clip_jobs(items: Sequence[tuple[Mapping[str, Any], Any, str]]) -> list[ClipJob]:
    """The distinct clips of a dataset's ``(record, ClipKey, where)`` items, sorted by
    (video, window), each with the tasks asked of it (identify and locate always)."""
    tasks: dict[str, set[str]] = {}
    keys: dict[str, Any] = {}
    for rec, key, _ in items:
        cid = clip_id(key)
        keys.setdefault(cid, key)
        tasks.setdefault(cid, {"identify", "locate"}).add(str(rec.get("task")))
    order = sorted(keys, key=lambda c: (keys[c].video_id, keys[c].window or (-1.0, -1.0), c))
    return [ClipJob(c, keys[c], tuple(t for t in STAGE2_TASKS if t in tasks[c])) for c in order]


# --------------------------------------------------------------------------- the model
def _to_device(value: Any, device: Any) -> Any:
    if hasattr(value, "to") and hasattr(value, "dtype"):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _answer_batch(model: Any, dataset: Any, jobs: Sequence[ClipJob], max_new_tokens: int | None) -> list[ClipResult]:
    return _answer_loaded(model, jobs, [dataset.features_for(job.key) for job in jobs], max_new_tokens)


def _failure(job: ClipJob, exc: BaseException) -> dict[str, str]:
    return {"clip": job.clip, "video": str(job.key.path), "error": f"{type(exc).__name__}: {exc}"}


def _answer_or_report(model: Any, dataset: Any, jobs: Sequence[ClipJob], max_new_tokens: int | None,
                      failures: list[dict[str, str]]) -> list[ClipResult]:
    """:func:`_answer_batch`, but a clip that fails (its video cannot be read, an expert
    raises on it) is added to ``failures`` and the batch's other clips are still
    answered: a batch the model fails on is answered clip by clip to find the bad one."""
    good, loaded = [], []
    for job in jobs:
        try:
            loaded.append(dataset.features_for(job.key))
            good.append(job)
        except Exception as exc:  # a bad clip is reported; the others go on
            failures.append(_failure(job, exc))
    if not good:
        return []
    try:
        return _answer_loaded(model, good, loaded, max_new_tokens)
    except Exception as exc:
        if len(good) == 1:
            failures.append(_failure(good[0], exc))
            return []
    out: list[ClipResult] = []
    for job, item in zip(good, loaded):
        try:
            out += _answer_loaded(model, [job], [item], max_new_tokens)
        except Exception as exc:
            failures.append(_failure(job, exc))
    return out


def _answer_loaded(model: Any, jobs: Sequence[ClipJob], loaded: Sequence[Any],
                   max_new_tokens: int | None) -> list[ClipResult]:
    import torch

    tasks = tuple(t for t in STAGE2_TASKS if any(t in job.tasks for job in jobs))
    features = _to_device(model.collate([f for f, _, _ in loaded]), model.device)
    with torch.inference_mode():
        answers = model.answer(features, tasks, max_new_tokens)
    out = []
    for job, (_, info, _), ans in zip(jobs, loaded, answers):
        window = list(job.key.window) if job.key.window is not None else None
        duration = info.get("duration")
        out.append(ClipResult(job.clip, job.key.video_id, window, float(duration) if duration else None,
                              list(tasks), ans.identify, ans.locate, ans.attribute, float(ans.p_yes),
                              float(ans.locate_prob), {k: float(v) for k, v in ans.expert_weights.items()}))
    return out


# --------------------------------------------------------------------------- resume
class ClipStore:
    """``clips.jsonl``: the answers of finished clips, appended batch by batch.

    Args:
        path: the file.
        fingerprint: what must match for the answers there to be reused
            (``{name: value}``; names of the values that differ go into the error).
        overwrite: start afresh even when the file holds another run's answers.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: Mapping[str, Any], overwrite: bool = False) -> None:
        self.path = Path(path)
        self.fingerprint = dict(fingerprint)
        if overwrite and self.path.exists():
            self.path.unlink()

    def _header(self) -> str:
        return json.dumps({_HEADER: _FORMAT, "fingerprint": self.fingerprint}, sort_keys=True)

    def load(self) -> dict[str, ClipResult]:
        """The answers already there (a last line cut short by a kill is dropped and cut
        off the file); an :class:`EvaluationError` when they are another run's."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):
            with self.path.open("r+b") as fh:
                fh.truncate(len(complete))
        lines = complete.decode("utf-8").splitlines()
        if not lines:
            return {}
        self._check_header(lines[0])
        out = {}
        for number, line in enumerate(lines[1:], start=2):
            try:
                result = ClipResult.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                raise EvaluationError(f"{self.path}:{number}: not a clip answer line ({exc}); "
                                      "delete the file or pass --overwrite") from None
            out[result.clip] = result
        return out

    def _check_header(self, line: str) -> None:
        try:
            header = json.loads(line)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get(_HEADER) != _FORMAT:
            raise EvaluationError(f"{self.path}: not an evaluation's clip answers; delete it or pass --overwrite")
        theirs = header.get("fingerprint") or {}
        differ = sorted(k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k))
        if differ:
            raise EvaluationError(
                f"{self.path}: holds the answers of another evaluation ({', '.join(differ)} differ); "
                "pass --overwrite (overwrite=True) to start again, or choose another --out")

    def append(self, results: Sequence[ClipResult]) -> None:
        """Add finished clips (the header first, for a new file); flushed to disk."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = (self._header() + "\n" if new else "") + "".join(r.to_json() + "\n" for r in results)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, results: Sequence[ClipResult]) -> None:
        """Rewrite the file atomically in clip order, each clip once."""
        from uprm.utils import atomic_write_text

        atomic_write_text(self.path, self._header() + "\n" + "".join(r.to_json() + "\n" for r in results))


def answer_clips(model: Any, dataset: Any, jobs: Sequence[ClipJob], *, batch_size: int = 4,
                 max_new_tokens: int | None = None, store: ClipStore | None = None,
                 progress: bool = False, failures: list[dict[str, str]] | None = None) -> dict[str, ClipResult]:
    """Every job's :class:`ClipResult`, batch by batch (``batch_size`` clips), skipping
    the batches ``store`` already holds in full.

    With a ``failures`` list, a clip that fails is appended to it (``{"clip", "video",
    "error"}``), left out of the result and of ``store`` (a rerun tries it again), and
    the other clips go on; without, the first failure raises."""
    from tqdm.auto import tqdm

    done = store.load() if store is not None else {}
    batches = [list(jobs[i : i + batch_size]) for i in range(0, len(jobs), batch_size)]
    todo = [b for b in batches if not all(j.clip in done for j in b)]
    finished = len(jobs) - sum(len(b) for b in todo)
    with tqdm(total=len(jobs), initial=finished, desc="clips", unit="clip", disable=not progress) as bar:
        for batch in todo:
            if failures is None:
                results = _answer_batch(model, dataset, batch, max_new_tokens)
            else:
                results = _answer_or_report(model, dataset, batch, max_new_tokens, failures)
            if store is not None:
                store.append(results)
            done.update((r.clip, r) for r in results)
            bar.update(len(batch))
    return {job.clip: done[job.clip] for job in jobs if job.clip in done}
