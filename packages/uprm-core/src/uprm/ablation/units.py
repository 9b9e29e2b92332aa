"""The report's metrics on resamples of videos, fast enough for an ablation's intervals.

An ablation's intervals and paired comparisons (:mod:`uprm.ablation.effects`) recompute
every metric on tens of thousands of resamples: 6 variants x 3 seeds x 1,000 resamples
for the intervals, and for each variant against ``full`` 2 x 3 seeds x (1,000 resamples
+ 1,000 permutations). :meth:`uprm.evaluation.intervals.VideoUnits.statistic` takes about
29 ms per call on 90 videos with attribute answers (27 ms of them sacrebleu tokenising
the drawn sentences again, 2 ms ActivityNet's matching), i.e. about 40 minutes for such a
grid. :class:`FastUnits` gives the same numbers (a test checks them on random resamples)
from what does not change between resamples, computed once:

- mAP: a prediction can only match ground truth of its own video, and the matching
  takes a video's predictions in descending score order, so whether each prediction is a
  true positive at each threshold is a property of its video alone. A resample gathers
  its videos' predictions (in draw order, as ``VideoUnits`` lists them), ranks them by
  score (stable, as :func:`uprm.metrics.map_at_tiou`) and takes the interpolated AP of
  the gathered flags (:func:`uprm.metrics.interpolated_ap`, the same floats);
- BLEU-4: corpus BLEU is computed from the sums of per-sentence n-gram statistics, so
  sacrebleu's statistics of each answer are extracted once and summed per resample
  (sacrebleu's own bootstrap does the same);
- ROUGE-L, SB: means of per-answer values (as ``VideoUnits``); FNR, F2 and per category:
  sums of per-video frame counts.

About 0.3 ms per call on the same units (a hundred times faster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uprm.evaluation.intervals import VideoUnits
from uprm.metrics import interpolated_ap
from uprm.metrics.detection import temporal_iou

__all__ = ["FastUnits", "match_flags"]


def _fnr(tp: float, fn: float) -> float | None:
    return 100.0 * fn / (tp + fn) if tp + fn else None


def _f2(tp: float, fn: float, fp: float) -> float | None:
    d = 5 * tp + 4 * fn + fp
    return 100.0 * 5 * tp / d if d else None


def match_flags(predictions: Sequence[tuple[float, float, float]], truth: Sequence[tuple[float, float]],
                thresholds: Sequence[float]) -> np.ndarray:
    """``[predictions, thresholds]``: is each prediction of one video a true positive at
    each tIoU threshold? ActivityNet's greedy matching restricted to one video: the
    predictions by descending score (ties in the order given), each taking the free
    ground truth of highest tIoU ≥ threshold (a tie: the one given first)."""
    flags = np.zeros((len(predictions), len(thresholds)), bool)
    if not len(predictions) or not len(truth):
        return flags
    p = np.asarray(predictions, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    tiou = temporal_iou(p[:, 0, None], p[:, 1, None], g[None, :, 0], g[None, :, 1])
    order = np.argsort(-p[:, 2], kind="stable")
    for t, threshold in enumerate(thresholds):
        free = np.ones(len(g), bool)
        for i in order:
            candidates = np.where(free & (tiou[i] >= threshold), tiou[i], -1.0)
            j = int(np.argmax(candidates))  # the first of the best
            if candidates[j] >= 0.0:
                flags[i, t] = True
                free[j] = False
    return flags


class FastUnits:
    """:meth:`VideoUnits.statistic` of ``units``, with the per-video parts precomputed
    (see the module docstring). ``len()`` and ``statistic(indices)`` as ``VideoUnits``."""

    def __init__(self, units: VideoUnits) -> None:
        self.units = units
        self.counts = np.asarray(units.counts, dtype=np.int64).reshape(-1, 3)
        self.categories = sorted(set(units.categories))
        self.category = np.array([self.categories.index(c) for c in units.categories], dtype=np.int64)
        self.thresholds = tuple(units.thresholds)
        self.n_truth = np.array([len(t) for t in units.truth], dtype=np.int64)
        self._predictions(units)
        self._texts(units)

    def __len__(self) -> int:
        return len(self.units)

    def _predictions(self, units: VideoUnits) -> None:
        self.n_pred = np.array([len(p) for p in units.predictions], dtype=np.int64)
        self.first_pred = np.concatenate([[0], np.cumsum(self.n_pred)[:-1]]).astype(np.int64)
        self.score = np.array([s for preds in units.predictions for _, _, s in preds], dtype=np.float64)
        flags = [match_flags(p, t, self.thresholds) for p, t in zip(units.predictions, units.truth)]
        self.flags = np.concatenate(flags) if flags else np.zeros((0, len(self.thresholds)), bool)

    def _texts(self, units: VideoUnits) -> None:
        self.pair_video = np.array([v for v, _, _ in units.texts], dtype=np.int64)
        self.bleu_stats: np.ndarray | None = None
        self._bleu = None
        if units.texts:
            from sacrebleu.metrics import BLEU

            self._bleu = BLEU()  # sacrebleu.corpus_bleu's defaults, as uprm.metrics.bleu4
            stats = self._bleu._extract_corpus_statistics([p for _, p, _ in units.texts],
                                                          [[r for _, _, r in units.texts]])
            self.bleu_stats = np.array(stats, dtype=np.int64)

    # ------------------------------------------------------------------ the statistic
    def statistic(self, units: Any) -> dict[str, float | None]:
        """The same numbers as :meth:`VideoUnits.statistic` of these indices."""
        units = np.asarray(units, dtype=np.int64)
        tp, fn, fp = self.counts[units].sum(axis=0) if units.size else (0, 0, 0)
        out: dict[str, float | None] = {"fnr": _fnr(tp, fn), "f2": _f2(tp, fn, fp)}
        out.update(self._map(units))
        out.update(self._text_metrics(units))
        out.update(self._per_category(units))
        return out

    def _per_category(self, units: np.ndarray) -> dict[str, float | None]:
        """FNR and F2 of each category's drawn videos, all categories at once (integer
        sums, then the same float operations as ``_fnr`` and ``_f2``)."""
        size = len(self.categories)
        drawn = self.category[units]
        ctp, cfn, cfp = (np.bincount(drawn, weights=self.counts[units, j], minlength=size) for j in range(3))
        with np.errstate(divide="ignore", invalid="ignore"):
            fnr = 100.0 * cfn / (ctp + cfn)
            d = 5 * ctp + 4 * cfn + cfp
            f2 = 100.0 * 5 * ctp / d
        out: dict[str, float | None] = {}
        for code, name in enumerate(self.categories):
            out[f"per_category/{name}/fnr"] = float(fnr[code]) if ctp[code] + cfn[code] else None
            out[f"per_category/{name}/f2"] = float(f2[code]) if d[code] else None
        return out

    def _map(self, units: np.ndarray) -> dict[str, float | None]:
        keys = [f"map/{t:g}" for t in self.thresholds] + ["map/average"]
        n_truth = int(self.n_truth[units].sum()) if units.size else 0
        if not n_truth or not self.thresholds:
            return dict.fromkeys(keys)
        lengths = self.n_pred[units]
        total = int(lengths.sum())
        ends = np.cumsum(lengths)
        rows = np.repeat(self.first_pred[units] - (ends - lengths), lengths) + np.arange(total)
        order = np.argsort(-self.score[rows], kind="stable")
        ap = interpolated_ap(self.flags[rows[order]].T, n_truth) * 100.0
        out: dict[str, float | None] = {f"map/{t:g}": float(a) for t, a in zip(self.thresholds, ap)}
        out["map/average"] = float(np.mean(ap))
        return out

    def _text_metrics(self, units: np.ndarray) -> dict[str, float | None]:
        out: dict[str, float | None] = {"rouge_l": None, "bleu4": None, "sbert": None}
        if not self.pair_video.size:
            return out
        drawn = np.bincount(units, minlength=len(self))[self.pair_video]
        rows = np.repeat(np.arange(self.pair_video.size), drawn)
        if rows.size == 0:
            return out
        if self.units.rouge is not None:
            out["rouge_l"] = float(self.units.rouge[rows].mean())
        if self.units.sbert is not None:
            out["sbert"] = float(self.units.sbert[rows].mean())
        sums = self.bleu_stats[rows].sum(axis=0).tolist()
        out["bleu4"] = float(self._bleu._compute_score_from_stats(sums).score)
        return out
