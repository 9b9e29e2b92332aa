"""``uprm.evaluate`` (a model on instruction records) and ``score_predictions`` (any
system's ActivityNet predictions), the functions behind ``uprm eval``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.evaluation.errors import EvaluationError
from uprm.evaluation.truth import (
    EXTRA_VIDEO_POLICIES,
    Prediction,
    VideoTruth,
    apply_extra_policy,
    check_labels,
    order_categories,
    read_ground_truth,
    read_predictions,
    reference_cause,
    select_records,
    truth_from_records,
)

__all__ = ["DATASET_THRESHOLDS", "EvalOptions", "evaluate", "resolve_thresholds", "score_predictions"]

#: the paper's mAP@tIoU thresholds per dataset (§4.3)
DATASET_THRESHOLDS = {"ucf": (0.1, 0.2, 0.3), "cuva": (0.1, 0.3, 0.5)}
_DATASET_ALIASES = {"ucf-crime": "ucf", "ucf_crime": "ucf", "ucfcrime": "ucf", "ucf-c": "ucf"}


def resolve_thresholds(dataset: str = "ucf", thresholds: Sequence[float] | str | None = None) -> tuple[float, ...]:
    """The tIoU thresholds: ``thresholds`` when given (a list or ``"0.1,0.3,0.5"``),
    else the dataset's (``ucf``: 0.1/0.2/0.3, ``cuva``: 0.1/0.3/0.5)."""
    if thresholds is not None:
        values = thresholds.split(",") if isinstance(thresholds, str) else thresholds
        try:
            out = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise EvaluationError(f"thresholds: expected numbers in [0, 1], got {thresholds!r}") from None
        if not out or not all(0 <= t <= 1 for t in out) or len(set(out)) != len(out):
            raise EvaluationError(f"thresholds: expected distinct numbers in [0, 1], got {thresholds!r}")
        return out
    name = _DATASET_ALIASES.get(dataset.lower(), dataset.lower())
    if name not in DATASET_THRESHOLDS:
        raise EvaluationError(f"dataset: expected one of {sorted(DATASET_THRESHOLDS)}, got {dataset!r}")
    return DATASET_THRESHOLDS[name]


@dataclass
class EvalOptions:
    """The settings of an evaluation (the keyword arguments of :func:`evaluate` and
    :func:`score_predictions`; see their docstrings)."""

    split: str | None = None
    batch_size: int = 4
    num_frames: int | None = None
    max_new_tokens: int | None = None
    device: str | None = None
    ground_truth: str | os.PathLike | None = None
    dataset: str = "ucf"
    thresholds: Sequence[float] | str | None = None
    rate: float = 1.0
    extra_videos: str = "error"
    sbert: bool = True
    judge: Any = None
    judge_cache: str | os.PathLike | None = None
    system: str | None = None
    progress: bool = False
    overwrite: bool = False
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    taxonomy: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int) or self.bootstrap < 0:
            raise EvaluationError(f"bootstrap: a whole number >= 0 of resamples of the videos (0: no intervals), "
                                  f"got {self.bootstrap!r}")
        if isinstance(self.bootstrap_seed, bool) or not isinstance(self.bootstrap_seed, int):
            raise EvaluationError(f"bootstrap_seed: a whole number, got {self.bootstrap_seed!r}")
        if int(self.batch_size) < 1:
            raise EvaluationError(f"batch_size: must be at least 1, got {self.batch_size}")
        if not float(self.rate) > 0:
            raise EvaluationError(f"rate: samples per second must be > 0, got {self.rate}")
        if self.extra_videos not in EXTRA_VIDEO_POLICIES:
            raise EvaluationError(f"extra_videos: expected one of {EXTRA_VIDEO_POLICIES}, got {self.extra_videos!r}")
        self.resolved_thresholds = resolve_thresholds(self.dataset, self.thresholds)
        self.resolved_taxonomy = self._taxonomy()

    def _taxonomy(self) -> Any:
        """The :class:`~uprm.taxonomy.Taxonomy` of ``taxonomy`` (a YAML file or a
        taxonomy), else ``None``: without one the ground truth's labels are not checked
        and the per-category tables are sorted by name."""
        if self.taxonomy is None:
            return None
        from uprm.taxonomy import load_taxonomy

        return load_taxonomy(self.taxonomy)

    def check_truth(self, truth: Mapping[str, VideoTruth], source: str | os.PathLike) -> None:
        """With a taxonomy, every ground-truth label must be one of its categories
        (:func:`~uprm.evaluation.truth.check_labels`: the error names the label, the video,
        ``source`` and the taxonomy's file)."""
        if self.resolved_taxonomy is not None:
            check_labels(truth, self.resolved_taxonomy, source)

    def bootstrap_spec(self) -> Any:
        """The intervals' :class:`uprm.metrics.Bootstrap` (resamples of videos, seed, 95 %)."""
        from uprm.metrics.uncertainty import Bootstrap

        return Bootstrap(samples=self.bootstrap, seed=self.bootstrap_seed)

    def settings(self) -> dict[str, Any]:
        out = {"split": self.split, "dataset": self.dataset, "thresholds": list(self.resolved_thresholds),
               "rate": float(self.rate), "extra_videos": self.extra_videos,
               "ground_truth": str(self.ground_truth) if self.ground_truth is not None else None}
        if self.resolved_taxonomy is not None:  # left out without one: the report stays as it was
            out["taxonomy"] = self.resolved_taxonomy.source
        return out


# --------------------------------------------------------------------------- shared
def _with_extra_videos(truth: dict[str, VideoTruth], extra: Sequence[str], policy: str,
                       notes: list[str]) -> dict[str, VideoTruth]:
    if not extra:
        return truth
    if policy == "ignore":
        notes.append(f"{len(extra)} predicted video(s) not in the ground truth were ignored: {', '.join(extra[:5])}")
        return truth
    notes.append(f"{len(extra)} predicted video(s) not in the ground truth count as all-negative videos "
                 f"(false positives): {', '.join(extra[:5])}")
    added = {v: VideoTruth(v, None, [], "(not in ground truth)") for v in extra}
    return dict(sorted({**truth, **added}.items()))


def _headline(system: str, numbers: Mapping[str, Any]) -> dict[str, Any]:
    """The report with the paper's columns first."""
    first = ["fnr", "f2", "map", "sbert", "rouge_l", "bleu4"]
    report: dict[str, Any] = {"system": system}
    report.update({k: numbers.get(k) for k in first})
    report["gpt"] = None
    report.update({k: v for k, v in numbers.items() if k not in first})
    return report


def _finish(report: dict[str, Any], options: EvalOptions, notes: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    from uprm.evaluation.scoring import UNITS

    report["settings"] = {**options.settings(), **extra}
    report["units"] = UNITS
    report["notes"] = notes
    return report


# --------------------------------------------------------------------------- predictions
def _texts_from_answers(path: str | os.PathLike | None) -> tuple[list[tuple[str, str]], list[str]]:
    """``(cause, reference_cause)`` of the attribute lines of an ``answers.jsonl`` and the
    video id of each (empty when a line has none: the text metrics then get no interval)."""
    if path is None:
        return [], []
    from uprm.evaluation.answers import attribute_texts, read_answers

    lines = [x for x in read_answers(path) if x.get("task") == "attribute"]
    videos = [x.get("video_id") for x in lines]
    return attribute_texts(lines), [str(v) for v in videos] if all(v is not None for v in videos) else []


def _write_units(inputs: Any, out: str | os.PathLike) -> None:
    """The per-video units of the report (``videos.json``): what ``uprm eval compare``
    and the ablation's paired comparisons read later, without the models."""
    from uprm.evaluation.intervals import UNITS_FILE

    if inputs.units is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        inputs.units.write(Path(out) / UNITS_FILE)


def score_predictions(predictions: str | os.PathLike | Sequence[Prediction], ground_truth: str | os.PathLike,
                      out: str | os.PathLike | None = None, *, answers: str | os.PathLike | None = None,
                      **options: Any) -> dict[str, Any]:
    """Score existing predictions — UPRM's or any other system's — without a model.

    Args:
        predictions: an ActivityNet results file (``{"results": {vid: [{"segment": [s,
            e], "score": x}]}}``) or ``(video_id, start, end, score)`` rows.
        ground_truth: an ActivityNet ground-truth file or an instruction JSON.
        out: a folder for ``report.json`` / ``.md`` / ``.csv`` and ``videos.json`` (the
            per-video units ``uprm eval compare`` reads); nothing written if ``None``.
        answers: an ``answers.jsonl`` (the one layout, :mod:`uprm.evaluation.answers`)
            whose attribute lines give SB / ROUGE-L / BLEU-4.
        options: :class:`EvalOptions` fields: ``split``, ``dataset``, ``thresholds``,
            ``rate``, ``extra_videos``, ``sbert``, ``system``, ``bootstrap`` (resamples of
            the videos for the 95 % intervals, 1000; 0: none), ``bootstrap_seed`` and
            ``taxonomy`` (every ground-truth label must be one of its categories; the
            per-category tables follow its order).

    Returns the report (the dict written to ``report.json``).
    """
    from uprm.evaluation.report import write_report_files
    from uprm.evaluation.scoring import ScoreInputs, score

    opts = EvalOptions(**options)
    truth = read_ground_truth(ground_truth, opts.split)
    opts.check_truth(truth, ground_truth)
    is_file = isinstance(predictions, (str, os.PathLike))
    rows = read_predictions(predictions) if is_file else [tuple(p) for p in predictions]  # type: ignore[union-attr]
    source = str(predictions) if is_file else "predictions"
    rows, extra = apply_extra_policy(rows, truth, opts.extra_videos, source)
    notes: list[str] = []
    truth = _with_extra_videos(truth, extra, opts.extra_videos, notes)
    texts, text_videos = _texts_from_answers(answers)
    inputs = ScoreInputs(truth, rows, opts.resolved_thresholds, opts.rate, sbert=opts.sbert, notes=notes,
                         texts=texts, text_videos=text_videos, bootstrap=opts.bootstrap_spec(),
                         taxonomy=opts.resolved_taxonomy)
    system = opts.system or (Path(predictions).resolve().parent.name if is_file else "system")
    report = _finish(_headline(system, score(inputs)), opts, notes,
                     {"mode": "predictions", "predictions": source, "answers": str(answers) if answers else None})
    if out is not None:
        write_report_files(report, out)
        _write_units(inputs, out)
    return report


# --------------------------------------------------------------------------- a model
def _predictions(jobs: Sequence[Any], results: Mapping[str, Any]) -> list[Prediction]:
    rows = []
    for job in jobs:
        res = results[job.clip]
        for seg in res.answers().segments(res.window, res.duration):
            rows.append((res.video_id, float(seg.start), float(seg.end), float(seg.score)))
    return rows


def _clip_scores(jobs: Sequence[Any], results: Mapping[str, Any]) -> dict[str, list[Any]]:
    from uprm.evaluation.scoring import ClipScore

    out: dict[str, list[ClipScore]] = {}
    for job in jobs:
        res = results[job.clip]
        window = tuple(res.window) if res.window is not None else (0.0, float(res.duration or 0.0))
        segs = tuple((s.start, s.end) for s in res.answers().segments(res.window, res.duration))
        out.setdefault(res.video_id, []).append(ClipScore(window, res.p_yes, segs))
    return out


def _answer_lines(items: Sequence[tuple[Mapping[str, Any], Any, str]], results: Mapping[str, Any]) -> list[dict]:
    """One ``answers.jsonl`` line per record (:func:`~uprm.evaluation.answers.answer_line`);
    a record without an ``id`` is named by where it lies (file and position)."""
    from uprm.data.records import split_conversation
    from uprm.evaluation.answers import answer_line
    from uprm.evaluation.run import clip_id

    lines = []
    for rec, key, where in items:
        res = results[clip_id(key)]
        task = str(rec.get("task"))
        question, reference = split_conversation(rec, where)
        causes = {"cause": res.answers().cause, "reference_cause": reference_cause(rec)} if task == "attribute" else {}
        category = rec.get("category")
        lines.append(answer_line(id=str(rec["id"]) if rec.get("id") is not None else where, task=task,
                                 question=question, answer=getattr(res, task), reference=reference,
                                 video_id=key.video_id, clip=res.clip, video=key.path, window=res.window,
                                 category=None if category is None else str(category), **causes))
    return lines


def _grounding(items: Sequence[tuple[Mapping[str, Any], Any, str]], results: Mapping[str, Any]) -> list[tuple]:
    from uprm.evaluation.run import clip_id
    from uprm.inference.segments import parse_segments

    queries = []
    for rec, key, _ in items:
        if rec.get("task") != "locate" or not rec.get("segments"):
            continue
        res = results[clip_id(key)]
        length = (res.window[1] - res.window[0]) if res.window is not None else res.duration
        predicted = [(s.start, s.end) for s in parse_segments(res.locate, length)]
        for k, gt in enumerate(sorted(tuple(map(float, s)) for s in rec["segments"])):
            queries.append((predicted[k] if k < len(predicted) else None, gt))
    return queries


def _mean_weights(weights: Sequence[Mapping[str, float]]) -> dict[str, float]:
    names = list(dict.fromkeys(n for w in weights for n in w))
    return {n: sum(w.get(n, 0.0) for w in weights) / len(weights) for n in names} if weights else {}


def _expert_weights(results: Mapping[str, Any], truth: Mapping[str, VideoTruth],
                    taxonomy: Any = None) -> tuple[dict, dict]:
    by_category: dict[str, list[Mapping[str, float]]] = {}
    for res in results.values():
        category = truth[res.video_id].category if res.video_id in truth else "(not in ground truth)"
        by_category.setdefault(category, []).append(res.expert_weights)
    per_category = {c: _mean_weights(by_category[c]) for c in order_categories(by_category, taxonomy)}
    return _mean_weights([r.expert_weights for r in results.values()]), per_category


def _fill_durations(truth: Mapping[str, VideoTruth], results: Mapping[str, Any]) -> None:
    """A video without a duration in the records takes its clips' decoded duration."""
    for res in results.values():
        t = truth.get(res.video_id)
        if t is not None and t.duration is None and res.duration:
            t.duration = float(res.duration)


def _dataset(model: Any, data: Sequence[Any], cache: Any, opts: EvalOptions):
    from uprm.data.features import InstructionDataset
    from uprm.errors import CacheError, RecordError
    from uprm.prompts import STAGE2_TASKS

    frames = opts.num_frames or model.config.num_frames
    try:
        return InstructionDataset(list(data), model.block, cache, num_frames=frames, split=opts.split,
                                  tasks=STAGE2_TASKS)
    except (CacheError, RecordError) as exc:
        raise EvaluationError(str(exc)) from None


def _fingerprint(model_fingerprint: str, files: Sequence[Any], model: Any, opts: EvalOptions) -> dict[str, Any]:
    from uprm.utils import file_sha256

    return {"model": model_fingerprint, "data": [file_sha256(f) for f in files],
            "split": opts.split, "num_frames": opts.num_frames or model.config.num_frames,
            "max_new_tokens": opts.max_new_tokens, "batch_size": int(opts.batch_size)}


def _run_answers(checkpoint_or_model: Any, files: Sequence[Any], cache: Any, out: Path | None,
                 opts: EvalOptions, failures: list[dict[str, str]]) -> tuple[Any, list[Any], list[Any], dict[str, Any], Any]:
    """The dataset, its items and clip jobs that were answered, their answers and the
    clip store; clips that failed go to ``failures`` and are left out of both lists."""
    from uprm.evaluation.run import CLIPS_FILE, ClipStore, answer_clips, clip_id, clip_jobs
    from uprm.modeling.loading import load_model

    loaded = load_model(checkpoint_or_model, device=opts.device)
    model = loaded.model
    dataset = _dataset(model, files, cache, opts)
    jobs = clip_jobs(dataset.items)
    store = None
    if out is not None:
        store = ClipStore(out / CLIPS_FILE, _fingerprint(loaded.fingerprint, files, model, opts), opts.overwrite)
    results = answer_clips(model, dataset, jobs, batch_size=int(opts.batch_size), max_new_tokens=opts.max_new_tokens,
                           store=store, progress=opts.progress, failures=failures)
    if failures and not results:
        raise EvaluationError(f"every clip failed ({len(failures)}); the first: {failures[0]['clip']} "
                              f"({failures[0]['video']}): {failures[0]['error']}")
    items = [item for item in dataset.items if clip_id(item[1]) in results]
    return dataset, items, [j for j in jobs if j.clip in results], results, store


def _drop_failed_videos(truth: dict[str, VideoTruth], results: Mapping[str, Any], failures: Sequence[Mapping[str, str]],
                        notes: list[str]) -> dict[str, VideoTruth]:
    """Without a single answered clip a video cannot be scored: it leaves the ground truth
    (with a note) rather than count as a missed threat."""
    if not failures:
        return truth
    answered = {r.video_id for r in results.values()}
    failed_videos = sorted({f["clip"].rsplit("@", 1)[0] for f in failures} - answered)
    notes.append(f"{len(failures)} clip(s) failed and are left out of the scores: "
                 + "; ".join(f"{f['clip']}: {f['error']}" for f in failures))
    if failed_videos:
        notes.append(f"video(s) without any answered clip left out of the ground truth: {', '.join(failed_videos)}")
    return {v: t for v, t in truth.items() if v not in failed_videos}


def _default_system(checkpoint_or_model: Any, out: Path | None) -> str:
    if out is not None:
        return out.resolve().name
    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        return Path(checkpoint_or_model).resolve().name
    return "UPRM"


def evaluate(checkpoint_or_model: Any, data: str | os.PathLike | Sequence[str | os.PathLike],
             cache: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
             **options: Any) -> dict[str, Any]:
    """Evaluate a UPRM model on instruction records: identify, locate, attribute.

    Args:
        checkpoint_or_model: a checkpoint folder (``save_pretrained`` / ``uprm train
            --out``) or a :class:`uprm.UPRMModel`.
        data: instruction JSON file(s) (docs/formats.md).
        cache: a feature cache (``uprm extract --out``); invalid or missing entries are
            extracted online.
        out: the run folder: ``predictions.json``, ``answers.jsonl``, ``clips.jsonl``,
            ``report.json`` / ``.md`` / ``.csv``, ``expert_weights.png`` (and
            ``judge.jsonl`` with a judge) and ``videos.json`` (the per-video units that
            ``uprm eval compare`` reads); a rerun resumes. ``None``: nothing written.
        options: :class:`EvalOptions` fields — ``split`` (keep the records of this split),
            ``batch_size`` (clips per ``model.answer``, 4), ``num_frames`` and
            ``max_new_tokens`` (default: the model's), ``device``, ``ground_truth`` (an
            ActivityNet / instruction file replacing the records' segments), ``dataset``
            (``ucf``/``cuva``: the mAP thresholds), ``thresholds``, ``rate`` (samples per
            second of FNR/F2, 1), ``extra_videos`` (``error``/``ignore``/``false-positive``),
            ``sbert`` (False skips SB), ``judge`` (True: an LLM judge from the
            environment; or a :class:`~uprm.evaluation.judge.JudgeConfig` /
            :class:`~uprm.evaluation.judge.LLMJudge`), ``judge_cache``, ``system`` (the
            row's name), ``progress``, ``overwrite`` (ignore answers already in ``out``),
            ``bootstrap`` (resamples of the videos for the report's 95 % intervals,
            ``"ci"``; 1000; 0: none), ``bootstrap_seed`` (0) and ``taxonomy`` (the site's
            categories, a YAML file or a :class:`~uprm.taxonomy.Taxonomy`: every
            ground-truth label must be one of them — checked before the model loads —
            and the per-category tables follow its order).

    Returns the report (the dict written to ``report.json``): ``fnr``, ``f2``, ``map``,
    ``sbert``, ``rouge_l``, ``bleu4``, ``gpt``, ``per_category`` and the extras; see
    docs/evaluation.md.
    """
    from uprm.evaluation.scoring import ScoreInputs, score

    opts = EvalOptions(**options)
    files = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    records = select_records(files, opts.split)  # a clear error before the model loads
    truth = read_ground_truth(opts.ground_truth, opts.split) if opts.ground_truth else truth_from_records(records)
    opts.check_truth(truth, opts.ground_truth or ", ".join(str(f) for f in files))
    _check_judge_extra(opts.judge)
    out_dir = Path(out) if out is not None else None
    failures: list[dict[str, str]] = []
    dataset, items, jobs, results, store = _run_answers(checkpoint_or_model, files, cache, out_dir, opts, failures)
    notes: list[str] = []
    truth = _drop_failed_videos(truth, results, failures, notes)
    _fill_durations(truth, results)
    predictions, extra = apply_extra_policy(_predictions(jobs, results), truth, opts.extra_videos,
                                            str(opts.ground_truth or "the records"))
    truth = _with_extra_videos(truth, extra, opts.extra_videos, notes)
    lines = _answer_lines(items, results)
    identified: dict[str, bool] = {}
    for res in results.values():
        identified[res.video_id] = identified.get(res.video_id, False) or res.answers().threat
    attribute = [x for x in lines if x["task"] == "attribute"]
    inputs = ScoreInputs(truth, predictions, opts.resolved_thresholds, opts.rate, clips=_clip_scores(jobs, results),
                         identified=identified, texts=[(x["cause"], x["reference_cause"]) for x in attribute],
                         text_videos=[str(x["video_id"]) for x in attribute], grounding=_grounding(items, results),
                         sbert=opts.sbert, notes=notes, bootstrap=opts.bootstrap_spec(),
                         taxonomy=opts.resolved_taxonomy)
    report = _headline(opts.system or _default_system(checkpoint_or_model, out_dir), score(inputs))
    report["expert_weights"], report["expert_weights_per_category"] = _expert_weights(results, truth,
                                                                                      opts.resolved_taxonomy)
    report["counts"].update(clips=len(jobs), records=len(lines))
    verdicts = _judge(opts, lines, out_dir, report)
    report["failed"] = failures
    report = _finish(report, opts, notes, _model_settings(checkpoint_or_model, files, cache, dataset, opts))
    if out_dir is not None:
        _write_outputs(out_dir, report, truth, predictions, lines, verdicts, [results[j.clip] for j in jobs], store)
        _write_units(inputs, out_dir)
    return report


def _model_settings(checkpoint_or_model: Any, files: Sequence[Any], cache: Any, dataset: Any,
                    opts: EvalOptions) -> dict[str, Any]:
    is_path = isinstance(checkpoint_or_model, (str, os.PathLike))
    return {"mode": "model", "checkpoint": str(checkpoint_or_model) if is_path else "<model object>",
            "data": [str(f) for f in files], "cache": str(cache) if cache is not None else None,
            "num_frames": dataset.num_frames, "batch_size": int(opts.batch_size),
            "max_new_tokens": opts.max_new_tokens}


def _check_judge_extra(judge: Any) -> None:
    """A judge made from the environment or a :class:`JudgeConfig` needs the ``judge``
    extra: said before the model runs, not after every answer."""
    from uprm.evaluation.judge import JudgeConfig

    if judge is True or isinstance(judge, JudgeConfig):
        from uprm.extras import require

        require("judge", "openai")


def _judge(opts: EvalOptions, lines: Sequence[dict], out: Path | None, report: dict[str, Any]) -> list[dict] | None:
    if not opts.judge:
        return None
    from uprm.evaluation.judge import judge_answers, make_judge

    cache = opts.judge_cache or (out / "judge_cache.jsonl" if out is not None else None)
    judge = make_judge(opts.judge, cache)
    summary, verdicts = judge_answers(judge, [x for x in lines if x["task"] == "attribute"], progress=opts.progress)
    report["gpt"] = summary["score"]
    report["gpt_judge"] = summary
    return verdicts


def _write_outputs(out: Path, report: Mapping[str, Any], truth: Mapping[str, VideoTruth],
                   predictions: Sequence[Prediction], lines: Sequence[dict], verdicts: list[dict] | None,
                   results: Sequence[Any], store: Any) -> None:
    from uprm.evaluation.answers import ANSWERS_FILE, write_answers
    from uprm.evaluation.report import write_report_files
    from uprm.utils import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    store.finish(results)
    by_video: dict[str, list[dict]] = {v: [] for v in truth}
    for vid, s, e, sc in predictions:
        by_video.setdefault(vid, []).append({"segment": [s, e], "score": sc, "label": "Anomaly"})
    atomic_write_json(out / "predictions.json", {"version": "UPRM", "results": by_video, "external_data": {}})
    write_answers(out / ANSWERS_FILE, lines)
    if verdicts is not None:
        atomic_write_text(out / "judge.jsonl", "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in verdicts))
    write_report_files(report, out)
