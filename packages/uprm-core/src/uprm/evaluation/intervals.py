"""The report's metrics on any multiset of videos, for intervals and paired comparisons.

:class:`VideoUnits` keeps, per evaluated video, what each metric of ``report.json`` is
made of — the frame counts of FNR and F2 (true positives, misses, false alarms), the
ground-truth and predicted segments of mAP, the attribute answers of ROUGE-L, BLEU-4 and
SB — so :meth:`VideoUnits.statistic` recomputes the metrics exactly on a resample of the
videos (a video drawn twice counts twice; its segments become two videos for mAP). On all
the videos once, it gives the report's own numbers (a test checks it).
:func:`report_intervals` and :func:`compare_units` hand it to
:mod:`uprm.metrics.uncertainty`.

The units of an evaluation are written next to its report (``videos.json``) so that two
evaluations can be compared later (``uprm eval compare``) without the models.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uprm.evaluation.errors import EvaluationError
from uprm.metrics import interpolated_ap, temporal_iou
from uprm.metrics.uncertainty import Bootstrap, Comparison, Estimate, bootstrap, compare_paired

__all__ = ["UNITS_FILE", "VideoUnits", "compare_units", "nest", "report_intervals"]

UNITS_FILE = "videos.json"
_VERSION = 1


def _fnr(tp: float, fn: float) -> float | None:
    return 100.0 * fn / (tp + fn) if tp + fn else None


def _f2(tp: float, fn: float, fp: float) -> float | None:
    d = 5 * tp + 4 * fn + fp
    return 100.0 * 5 * tp / d if d else None


@dataclass
class VideoUnits:
    """Per-video pieces of an evaluation's metrics (see the module docstring).

    Attributes:
        videos: the video ids, in a fixed order (unit ``i`` is ``videos[i]``).
        categories: each video's category.
        counts: ``[V, 3]`` frame counts per video: true positives, misses, false alarms.
        truth: each video's ground-truth threat segments.
        predictions: each video's scored predicted segments ``(start, end, score)``.
        thresholds: the mAP tIoU thresholds.
        texts: ``(video index, predicted cause, reference cause)`` of the attribute answers.
        rouge: ROUGE-L of each text pair (0-1), when scored.
        sbert: SB of each text pair, when scored.
    """

    videos: list[str]
    categories: list[str]
    counts: np.ndarray
    truth: list[list[tuple[float, float]]]
    predictions: list[list[tuple[float, float, float]]]
    thresholds: tuple[float, ...]
    texts: list[tuple[int, str, str]] = field(default_factory=list)
    rouge: np.ndarray | None = None
    sbert: np.ndarray | None = None
    _bleu: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _matches: _Matches | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.videos)

    # ------------------------------------------------------------------ metrics
    def statistic(self, units: np.ndarray) -> dict[str, float | None]:
        """The metrics of the videos ``units`` (indices, repeats allowed), flat keys:
        ``fnr``, ``f2``, ``map/<threshold>``, ``map/average``, ``rouge_l``, ``bleu4``,
        ``sbert``, ``per_category/<category>/fnr`` and ``/f2``."""
        units = np.asarray(units, dtype=np.int64)
        tp, fn, fp = self.counts[units].sum(axis=0) if units.size else (0, 0, 0)
        out: dict[str, float | None] = {"fnr": _fnr(tp, fn), "f2": _f2(tp, fn, fp)}
        out.update(self._map(units))
        out.update(self._texts(units))
        cats = np.array(self.categories, dtype=object)[units] if units.size else np.array([], dtype=object)
        for category in sorted(set(self.categories)):
            picked = units[cats == category]
            ctp, cfn, cfp = self.counts[picked].sum(axis=0) if picked.size else (0, 0, 0)
            out[f"per_category/{category}/fnr"] = _fnr(ctp, cfn)
            out[f"per_category/{category}/f2"] = _f2(ctp, cfn, cfp)
        return out

    def _map(self, units: np.ndarray) -> dict[str, float | None]:
        """mAP@tIoU of the drawn videos (a video drawn twice is two videos): equal to
        :func:`uprm.metrics.map_at_tiou` of their rows (a test checks it). A prediction
        can only match ground truth of its own video, so whether it is a true positive
        does not depend on the other videos drawn: that is decided once per video
        (:func:`_video_matches`), and a resample only ranks the drawn predictions and
        sums the precision over recall (:func:`uprm.metrics.interpolated_ap`)."""
        keys = [f"map/{t:g}" for t in self.thresholds] + ["map/average"]
        if self._matches is None:
            self._matches = _Matches.of(self)
        m = self._matches
        npos = int(m.truths[units].sum()) if units.size else 0
        if npos == 0 or not self.thresholds:
            return dict.fromkeys(keys)
        lengths = m.lengths[units]
        rows = np.repeat(m.offsets[units] - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        ranked = rows[np.argsort(-m.scores[rows], kind="stable")]  # ties in the order given, as map_at_tiou
        ap = interpolated_ap(m.hits[:, ranked], npos) * 100.0
        out: dict[str, float | None] = {f"map/{t:g}": float(a) for t, a in zip(self.thresholds, ap)}
        out["map/average"] = float(np.mean(ap))
        return out

    def _texts(self, units: np.ndarray) -> dict[str, float | None]:
        out: dict[str, float | None] = {"rouge_l": None, "bleu4": None, "sbert": None}
        if not self.texts:
            return out
        pair_video = np.array([v for v, _, _ in self.texts])
        drawn = np.bincount(units, minlength=len(self.videos))[pair_video]  # how often each pair's video was drawn
        rows = np.repeat(np.arange(len(self.texts)), drawn)
        if rows.size == 0:
            return out
        if self.rouge is not None:
            out["rouge_l"] = float(self.rouge[rows].mean())
        if self.sbert is not None:
            out["sbert"] = float(self.sbert[rows].mean())
        out["bleu4"] = self._bleu4(drawn)
        return out

    def _bleu4(self, drawn: np.ndarray) -> float:
        """Corpus BLEU-4 of the text pairs, pair ``k`` taken ``drawn[k]`` times: equal to
        :func:`uprm.metrics.bleu4` of those pairs (a test checks it), but the per-pair
        n-gram statistics are counted once (sacrebleu's corpus BLEU sums them over the
        pairs before the score) rather than re-tokenised on every resample."""
        if self._bleu is None:
            self._bleu = _bleu_statistics([p for _, p, _ in self.texts], [r for _, _, r in self.texts])
        return _bleu_from_statistics(drawn.astype(np.int64) @ self._bleu)

    # ------------------------------------------------------------------ pairs
    def paired_with(self, other: VideoUnits, source: str = "A", other_source: str = "B") -> VideoUnits:
        """One table of ``2 V`` units: this evaluation's videos, then ``other``'s results on
        the same videos in the same order (what :func:`uprm.metrics.compare_paired` reads).

        Raises:
            EvaluationError: the two evaluations did not score the same videos (the
                message names those only one of them has), used other thresholds, or
                another ground truth (other threat segments, category or number of
                threat samples of a video: the message names those videos).
        """
        mine, theirs = set(self.videos), set(other.videos)
        if mine != theirs:
            only_a, only_b = sorted(mine - theirs), sorted(theirs - mine)
            raise EvaluationError(
                f"{source} and {other_source} did not evaluate the same videos, so they cannot be compared paired by "
                f"video: only in {source}: {_few(only_a)}; only in {other_source}: {_few(only_b)}")
        if tuple(self.thresholds) != tuple(other.thresholds):
            raise EvaluationError(f"{source} used the tIoU thresholds {list(self.thresholds)}, {other_source} "
                                  f"{list(other.thresholds)}: score both with the same --thresholds")
        position = {v: i for i, v in enumerate(other.videos)}
        o = other.select([position[v] for v in self.videos])
        differ = [v for i, v in enumerate(self.videos) if not _same_truth(self, o, i)]
        if differ:
            raise EvaluationError(
                f"{source} and {other_source} were scored against different ground truth (threat segments, category "
                f"or threat samples per video differ) for {len(differ)} video(s): {_few(differ)}; compare "
                "evaluations of the same ground truth (same --ground-truth, --split and --rate)")
        n = len(self.videos)
        both_rouge = None if self.rouge is None or o.rouge is None else np.concatenate([self.rouge, o.rouge])
        both_sbert = None if self.sbert is None or o.sbert is None else np.concatenate([self.sbert, o.sbert])
        return VideoUnits(
            videos=self.videos + o.videos, categories=self.categories + o.categories,
            counts=np.concatenate([self.counts, o.counts]), truth=self.truth + o.truth,
            predictions=self.predictions + o.predictions, thresholds=self.thresholds,
            texts=self.texts + [(v + n, p, r) for v, p, r in o.texts] if self.texts and o.texts else [],
            rouge=both_rouge if self.texts and o.texts else None, sbert=both_sbert if self.texts and o.texts else None)

    def select(self, order: Sequence[int]) -> VideoUnits:
        """These units in the order ``order`` (each video once)."""
        new_index = {old: new for new, old in enumerate(order)}
        keep = [i for i, (v, _, _) in enumerate(self.texts) if v in new_index]
        return VideoUnits(
            videos=[self.videos[i] for i in order], categories=[self.categories[i] for i in order],
            counts=self.counts[list(order)].reshape(len(order), 3), truth=[self.truth[i] for i in order],
            predictions=[self.predictions[i] for i in order], thresholds=self.thresholds,
            texts=[(new_index[self.texts[i][0]], self.texts[i][1], self.texts[i][2]) for i in keep],
            rouge=None if self.rouge is None else self.rouge[keep],
            sbert=None if self.sbert is None else self.sbert[keep])

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        by_video: list[list[dict[str, Any]]] = [[] for _ in self.videos]
        for k, (v, pred, ref) in enumerate(self.texts):
            item: dict[str, Any] = {"cause": pred, "reference_cause": ref}
            if self.rouge is not None:
                item["rouge_l"] = float(self.rouge[k])
            if self.sbert is not None:
                item["sbert"] = float(self.sbert[k])
            by_video[v].append(item)
        return {"version": _VERSION, "thresholds": list(self.thresholds), "videos": [
            {"video_id": vid, "category": cat, "tp": int(c[0]), "fn": int(c[1]), "fp": int(c[2]),
             "truth": [list(s) for s in t], "predictions": [list(p) for p in pr], "texts": texts}
            for vid, cat, c, t, pr, texts in zip(self.videos, self.categories, self.counts, self.truth,
                                                 self.predictions, by_video)]}

    def write(self, path: str | os.PathLike) -> Path:
        from uprm.utils import atomic_write_json

        atomic_write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> VideoUnits:
        """The units an evaluation wrote (``videos.json``; a folder: the file in it)."""
        p = Path(path)
        if p.is_dir():
            p = p / UNITS_FILE
        if not p.is_file():
            raise EvaluationError(f"{p}: no per-video units; evaluations write them as {UNITS_FILE} next to "
                                  "report.json (`uprm eval ... --out DIR`; an evaluation made before intervals "
                                  "existed has none: run it again)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EvaluationError(f"{p}: not a {UNITS_FILE} of uprm eval ({exc})") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoUnits:
        if data.get("version") != _VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {_VERSION}")
        rows = data["videos"]
        texts, rouge, sbert = [], [], []
        for v, row in enumerate(rows):
            for item in row.get("texts", []):
                texts.append((v, str(item["cause"]), str(item["reference_cause"])))
                rouge.append(item.get("rouge_l"))
                sbert.append(item.get("sbert"))
        return cls(
            videos=[str(r["video_id"]) for r in rows], categories=[str(r["category"]) for r in rows],
            counts=np.array([[int(r["tp"]), int(r["fn"]), int(r["fp"])] for r in rows], dtype=np.int64).reshape(-1, 3),
            truth=[[(float(s), float(e)) for s, e in r["truth"]] for r in rows],
            predictions=[[(float(s), float(e), float(sc)) for s, e, sc in r["predictions"]] for r in rows],
            thresholds=tuple(float(t) for t in data["thresholds"]), texts=texts,
            rouge=np.array(rouge, dtype=np.float64) if texts and None not in rouge else None,
            sbert=np.array(sbert, dtype=np.float64) if texts and None not in sbert else None)


@dataclass
class _Matches:
    """Every prediction of the units, video after video: its score, and per threshold
    whether it matches ground truth of its video (``hits``, ``[T, P]``); per video the
    first row, the number of rows and of ground-truth segments."""

    scores: np.ndarray
    hits: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    truths: np.ndarray

    @classmethod
    def of(cls, units: VideoUnits) -> _Matches:
        thr = np.asarray(units.thresholds, dtype=np.float64)
        lengths = np.array([len(p) for p in units.predictions], dtype=np.int64)
        hits = [_video_matches(t, p, thr) for t, p in zip(units.truth, units.predictions)]
        return cls(scores=np.array([sc for p in units.predictions for _, _, sc in p], dtype=np.float64),
                   hits=np.concatenate(hits, axis=1) if hits else np.zeros((thr.size, 0), bool),
                   offsets=np.cumsum(lengths) - lengths, lengths=lengths,
                   truths=np.array([len(t) for t in units.truth], dtype=np.int64))


def _video_matches(truth: Sequence[tuple[float, float]], predictions: Sequence[tuple[float, float, float]],
                   thresholds: np.ndarray) -> np.ndarray:
    """``[T, P]``: whether each prediction of one video is a true positive at each
    threshold, as ActivityNet matches (and :func:`uprm.metrics.map_at_tiou`): by
    descending score (ties in the order given), each takes the free ground truth of
    highest tIoU >= threshold (among equal tIoU the one given first)."""
    hits = np.zeros((thresholds.size, len(predictions)), bool)
    if not truth or not predictions:
        return hits
    p, g = np.asarray(predictions, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    tiou = temporal_iou(p[:, None, 0], p[:, None, 1], g[None, :, 0], g[None, :, 1])  # [P, G]
    order = np.argsort(-p[:, 2], kind="stable")
    for t, threshold in enumerate(thresholds):
        free = np.ones(len(truth), bool)
        for k in order:
            ok = free & (tiou[k] >= threshold)
            if ok.any():
                best = int(np.argmax(np.where(ok, tiou[k], -np.inf)))  # the first of the highest
                free[best], hits[t, k] = False, True
    return hits


def _same_truth(a: VideoUnits, b: VideoUnits, i: int) -> bool:
    """Video ``i`` has the same ground truth in both: category, threat segments (to a
    microsecond) and threat samples (true positives + misses)."""
    if a.categories[i] != b.categories[i] or len(a.truth[i]) != len(b.truth[i]):
        return False
    if int(a.counts[i][0] + a.counts[i][1]) != int(b.counts[i][0] + b.counts[i][1]):
        return False
    return all(abs(x - y) <= 1e-6 for s, t in zip(sorted(a.truth[i]), sorted(b.truth[i])) for x, y in zip(s, t))


def _bleu_statistics(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """``[pairs, 2 + 2 * 4]`` sacrebleu statistics of each pair as :func:`uprm.metrics.bleu4`
    scores it (13a tokens, one reference): hypothesis and reference length, matching and
    total n-grams of each order."""
    from uprm.metrics.text import bleu4

    bleu4(predictions, references)  # the same checks and the same install hint as the plain metric
    metric = _bleu_metric()
    rows = []
    for pred, ref in zip(predictions, references):
        s = metric.corpus_score([pred], [[ref]])
        rows.append([s.sys_len, s.ref_len, *s.counts, *s.totals])
    return np.array(rows, dtype=np.int64).reshape(len(rows), 2 + 2 * metric.max_ngram_order)


def _bleu_metric() -> Any:
    """sacrebleu's BLEU as ``sacrebleu.corpus_bleu`` (and so :func:`uprm.metrics.bleu4`) makes it."""
    from sacrebleu.metrics import BLEU

    return BLEU(smooth_method="exp", effective_order=False)


def _bleu_from_statistics(total: np.ndarray) -> float:
    """Corpus BLEU-4 (0-100) of summed :func:`_bleu_statistics` rows (sacrebleu's
    ``BLEU.compute_bleu``, the step after its corpus statistics)."""
    metric = _bleu_metric()
    n = metric.max_ngram_order
    return float(metric.compute_bleu(correct=total[2:2 + n].tolist(), total=total[2 + n:].tolist(),
                                     sys_len=int(total[0]), ref_len=int(total[1]), smooth_method=metric.smooth_method,
                                     smooth_value=metric.smooth_value, effective_order=metric.effective_order,
                                     max_ngram_order=n).score)


def _few(names: Sequence[str], limit: int = 5) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"map/0.1": x, "per_category/Arson/fnr": y}`` -> ``{"map": {"0.1": x},
    "per_category": {"Arson": {"fnr": y}}}`` (the report's own nesting)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _rounded(ci: tuple[float, float] | None, digits: int = 4) -> list[float] | None:
    return None if ci is None else [round(ci[0], digits), round(ci[1], digits)]


def report_intervals(units: VideoUnits, spec: Bootstrap) -> tuple[dict[str, Any], dict[str, Estimate]]:
    """``report.json``'s ``"ci"`` (nested like the report; ``None`` where a metric is
    undefined) and the estimates by flat key."""
    estimates = bootstrap(units.statistic, len(units), spec)
    return nest({k: _rounded(e.ci) for k, e in estimates.items()}), estimates


def compare_units(a: VideoUnits, b: VideoUnits, spec: Bootstrap, *, names: tuple[str, str] = ("A", "B")
                  ) -> dict[str, Comparison]:
    """A against B, paired by video (flat metric keys; see :func:`uprm.metrics.compare_paired`)."""
    both = a.paired_with(b, *names)
    return compare_paired(both.statistic, len(a), spec)

