"""``uprm eval compare`` / :func:`compare`: two evaluations of the same ground truth,
paired by video.

Each evaluation folder (``uprm eval --out DIR``, ``score_predictions(out=DIR)``) holds
``report.json`` and ``videos.json`` (the per-video units,
:class:`~uprm.evaluation.intervals.VideoUnits`). The comparison reads both, checks that
they scored the same videos against the same ground truth at the same thresholds and
rate (else an :class:`EvaluationError` naming what differs), and for each metric of the
report gives A's and B's values, ``delta = A - B`` with its 95 % interval from a paired
bootstrap over videos (one draw of videos for both systems, so what the videos share
cancels) and the two-sided p-value of a paired permutation test (A's and B's results of
a video swapped at random) — :func:`uprm.metrics.compare_paired`. The p-values are not
corrected for the number of metrics compared.

Files: ``comparison.json`` (the numbers, nested like ``report.json``: ``fnr``, ``f2``,
``map`` per threshold and ``average``, ``rouge_l``, ``bleu4``, ``sbert``,
``per_category/<category>/fnr|f2``) and ``comparison.md`` (one table).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from uprm.evaluation.errors import EvaluationError
from uprm.evaluation.intervals import UNITS_FILE, VideoUnits, compare_units, nest

__all__ = ["COMPARISON_FILE", "COMPARISON_MD", "compare", "comparison_markdown"]

COMPARISON_FILE = "comparison.json"
COMPARISON_MD = "comparison.md"

#: digits of the table: percent and BLEU one, SB and ROUGE-L (0-1) three
_DIGITS = {"sbert": 3, "rouge_l": 3}
_LABELS = {"fnr": "FNR↓ (%)", "f2": "F2 (%)", "sbert": "SB", "rouge_l": "ROUGE-L", "bleu4": "BLEU-4"}


def _folder(path: str | os.PathLike) -> Path:
    """The evaluation folder of ``path`` (the folder, or a file in it)."""
    p = Path(path)
    return p.parent if p.is_file() else p


def _report(folder: Path) -> dict[str, Any]:
    path = folder / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluationError(f"{folder}: no report.json; give the folder of an evaluation (uprm eval --out DIR)"
                              ) from None
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: cannot read the report ({exc})") from None
    if not isinstance(data, dict):
        raise EvaluationError(f"{path}: not a report of uprm eval (a JSON object expected)")
    return data


def _names(names: Sequence[str] | str | None, reports: Sequence[Mapping[str, Any]],
           folders: Sequence[Path]) -> tuple[str, str]:
    """``names`` (two, or ``"A,B"``), else the reports' systems, else the folders' names
    (when the systems are named alike), else ``A`` and ``B``."""
    if names is not None:
        given = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
        if len(given) != 2 or not all(given) or given[0] == given[1]:
            raise EvaluationError(f"names: two different names, e.g. 'UPRM,baseline', got {names!r}")
        return given[0], given[1]
    for systems in ([str(r.get("system") or "") for r in reports], [f.resolve().name for f in folders]):
        if all(systems) and systems[0] != systems[1]:
            return systems[0], systems[1]
    return "A", "B"


def _check_rate(reports: Sequence[Mapping[str, Any]], names: tuple[str, str]) -> None:
    """Frame-level metrics depend on the rate: two rates are two different ground truths."""
    rates = [(r.get("settings") or {}).get("rate") for r in reports]
    if rates[0] is not None and rates[1] is not None and not math.isclose(float(rates[0]), float(rates[1])):
        raise EvaluationError(f"{names[0]} was scored at {rates[0]:g} samples per second, {names[1]} at "
                              f"{rates[1]:g}: score both with the same --rate")


def _check_samples(reports: Sequence[Mapping[str, Any]], names: tuple[str, str]) -> None:
    """The same videos of the same durations have the same number of samples."""
    samples = [(r.get("counts") or {}).get("samples") for r in reports]
    if None not in samples and samples[0] != samples[1]:
        raise EvaluationError(f"{names[0]} counted {samples[0]} samples (seconds) in its videos, {names[1]} "
                              f"{samples[1]}: the videos' durations differ, so the ground truth is not the same")


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def compare(eval_a: str | os.PathLike, eval_b: str | os.PathLike, out: str | os.PathLike | None = None, *,
            bootstrap: int = 1000, seed: int = 0, names: Sequence[str] | str | None = None) -> dict[str, Any]:
    """Compare two evaluations of the same ground truth, paired by video.

    Args:
        eval_a, eval_b: evaluation folders (``uprm eval --out DIR``: ``report.json`` and
            ``videos.json``).
        out: a folder for ``comparison.json`` and ``comparison.md`` (nothing written if
            ``None``).
        bootstrap: resamples of the videos for the deltas' 95 % intervals, and
            permutations for the p-values; 0: the deltas alone.
        seed: the seed of the resamples and permutations.
        names: the two systems' names (two strings or ``"A,B"``; default: the reports'
            ``system``).

    Returns ``comparison.json``'s content: ``"metrics"`` nested like ``report.json``,
    each ``{"a", "b", "delta", "ci", "p"}`` (``delta = a - b``).

    Raises:
        EvaluationError: a folder without ``report.json`` or ``videos.json``, or two
            evaluations that cannot be paired (other videos, ground truth, thresholds or
            rate; the message names what differs).
    """
    from uprm.metrics.uncertainty import Bootstrap

    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise EvaluationError(f"bootstrap: a whole number >= 0 of resamples of the videos (0: no intervals), "
                              f"got {bootstrap!r}")
    folders = [_folder(eval_a), _folder(eval_b)]
    reports = [_report(f) for f in folders]
    units = [VideoUnits.read(f / UNITS_FILE) for f in folders]
    pair = _names(names, reports, folders)
    _check_rate(reports, pair)
    units[0].paired_with(units[1], *pair)  # the same videos, ground truth and thresholds (names what differs)
    _check_samples(reports, pair)
    spec = Bootstrap(samples=bootstrap, seed=int(seed))
    flat = compare_units(units[0], units[1], spec, names=pair)
    metrics = {k: {"a": _round(c.a), "b": _round(c.b), "delta": _round(c.delta),
                   "ci": None if c.ci is None else [_round(c.ci[0]), _round(c.ci[1])], "p": _round(c.p)}
               for k, c in flat.items()}
    result = {
        "a": {"system": pair[0], "folder": str(folders[0])},
        "b": {"system": pair[1], "folder": str(folders[1])},
        "videos": len(units[0]),
        "bootstrap": {**spec.to_dict(), "permutations": spec.samples, "paired": "by video"},
        "delta": "a - b",
        "p": "two-sided paired permutation test (A's and B's results of a video swapped at random); not corrected "
             "for the number of metrics",
        "metrics": nest(metrics),
    }
    if out is not None:
        _write(result, Path(out))
    return result


def _write(result: Mapping[str, Any], out: Path) -> None:
    from uprm.utils import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / COMPARISON_FILE, result)
    atomic_write_text(out / COMPARISON_MD, comparison_markdown(result))


def _rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(label, leaf key, numbers)`` of each metric, in the report's order."""
    rows = [(_LABELS[k], k, metrics[k]) for k in ("fnr", "f2") if k in metrics]
    for threshold, numbers in (metrics.get("map") or {}).items():
        rows.append((f"mAP@{threshold} (%)" if threshold != "average" else "mAP average (%)", "map", numbers))
    rows += [(_LABELS[k], k, metrics[k]) for k in ("sbert", "rouge_l", "bleu4") if k in metrics]
    for category, per in (metrics.get("per_category") or {}).items():
        rows += [(f"{_LABELS[k]} {category}", k, per[k]) for k in ("fnr", "f2") if k in per]
    return rows


def _num(x: float | None, digits: int, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _delta(numbers: Mapping[str, Any], digits: int) -> str:
    ci = numbers.get("ci")
    text = _num(numbers.get("delta"), digits, sign=True)
    if ci is None:
        return text
    excludes = ci[0] > 0 or ci[1] < 0
    return f"{text} [{_num(ci[0], digits, True)}, {_num(ci[1], digits, True)}]" + (" *" if excludes else "")


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.3f}"


def comparison_markdown(result: Mapping[str, Any]) -> str:
    """``comparison.md``: a heading, one table (metric, A, B, delta [low, high], p; ``*``
    marks a delta whose interval excludes zero) and how the numbers were obtained."""
    a, b = result["a"]["system"], result["b"]["system"]
    header = f"| Metric | {a} | {b} | Δ = {a} − {b} [95 % CI] | p |"
    lines = [f"# {a} against {b}", "", header, "|---|---|---|---|---|"]
    for label, key, numbers in _rows(result["metrics"]):
        d = _DIGITS.get(key, 1)
        lines.append(f"| {label} | {_num(numbers.get('a'), d)} | {_num(numbers.get('b'), d)} | "
                     f"{_delta(numbers, d)} | {_p(numbers.get('p'))} |")
    spec = result["bootstrap"]
    lines += ["", f"Paired by video over the {result['videos']} videos both evaluations scored. "
              + (f"Intervals: percentile bootstrap, {spec['samples']} resamples of the videos (the same draw for "
                 f"both systems; seed {spec['seed']}); p: two-sided paired permutation test, "
                 f"{spec['permutations']} permutations, not corrected for the number of rows. "
                 "`*`: the interval excludes 0. FNR: lower is better."
                 if spec["samples"] else "No intervals (--bootstrap 0).")]
    return "\n".join(lines) + "\n"
