"""The plain verdicts of an adaptation, read from its paired comparison, and ``adapt.md``.

The comparison (``comparison.json``, :func:`uprm.evaluation.compare`) holds, per metric
and per category, the adapted model's and the base model's values on the held-out videos
and ``delta = adapted - base`` with its 95 % interval (a paired bootstrap over the
held-out videos) and a paired permutation p-value. A metric's verdict:

- **better**: the interval of the improvement excludes zero and p < 0.05 — for FNR (the
  share of threat time missed) *lower* is better, so that is an interval wholly below
  zero; for F2 and mAP one wholly above;
- **worse**: the same on the other side;
- **no measurable change**: anything else (the interval holds zero, or p >= 0.05);
- **not measured**: the metric is undefined for these videos (FNR of a category without
  threat time) or there is no interval (``bootstrap=0``).

Both conditions are asked for, as ``uprm demo`` does: with one or two held-out videos of
a category a bootstrap interval shrinks to a point and "excludes zero" whenever anything
changed, while the permutation test cannot reach p < 0.05 on so few.

A row's verdict (overall: FNR, F2, mAP average; a category: its FNR and F2) is *better*
when one of its metrics is better and none worse, *worse* the other way round, *mixed*
when some are better and some worse, else *no measurable change* (or *not measured* when
none of its metrics was). Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ALPHA", "BETTER", "MIXED", "NOT_MEASURED", "SAME", "WORSE", "adapt_markdown", "metric_verdict",
           "row_verdict", "verdicts"]

BETTER, SAME, WORSE, MIXED, NOT_MEASURED = "better", "no measurable change", "worse", "mixed", "not measured"

#: the permutation p-value below which a difference whose interval excludes zero is a change
ALPHA = 0.05

#: the metrics of a row: (key in the comparison, name, lower is better)
OVERALL: tuple[tuple[str, str, bool], ...] = (("fnr", "FNR", True), ("f2", "F2", False),
                                             ("map/average", "mAP average", False))
PER_CATEGORY: tuple[tuple[str, str, bool], ...] = (("fnr", "FNR", True), ("f2", "F2", False))


def _lookup(metrics: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    node: Any = metrics
    for part in key.split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def metric_verdict(numbers: Mapping[str, Any] | None, lower_is_better: bool, alpha: float = ALPHA) -> str:
    """The verdict of one metric's ``{"a", "b", "delta", "ci", "p"}`` (module doc)."""
    if not numbers or numbers.get("delta") is None or not numbers.get("ci") or numbers.get("p") is None:
        return NOT_MEASURED
    low, high = numbers["ci"]
    if low is None or high is None:
        return NOT_MEASURED
    if float(numbers["p"]) >= alpha or low <= 0 <= high:
        return SAME
    went_down = high < 0
    return BETTER if went_down == lower_is_better else WORSE


def row_verdict(verdicts: Sequence[str]) -> str:
    """One verdict of a row's metric verdicts (module doc)."""
    better, worse = BETTER in verdicts, WORSE in verdicts
    if better and worse:
        return MIXED
    if better or worse:
        return BETTER if better else WORSE
    return NOT_MEASURED if all(v == NOT_MEASURED for v in verdicts) else SAME


def _row(metrics: Mapping[str, Any], spec: Sequence[tuple[str, str, bool]], alpha: float) -> dict[str, Any]:
    per = {key: metric_verdict(_lookup(metrics, key), lower, alpha) for key, _, lower in spec}
    return {"verdict": row_verdict(list(per.values())), "metrics": per}


def verdicts(comparison: Mapping[str, Any], alpha: float = ALPHA) -> dict[str, Any]:
    """``{"overall": {"verdict", "metrics": {key: verdict}}, "per_category": {category:
    {...}}, "rule": ...}`` of a comparison of the adapted model (A) against the base (B)."""
    metrics = comparison.get("metrics") or {}
    per_category = {c: _row(m, PER_CATEGORY, alpha) for c, m in sorted((metrics.get("per_category") or {}).items())}
    return {"overall": _row(metrics, OVERALL, alpha), "per_category": per_category,
            "rule": f"better/worse: the 95 % interval of adapted - base excludes 0 on that side and the paired "
                    f"permutation p < {alpha:g}; FNR: lower is better"}


# --------------------------------------------------------------------------- adapt.md
def _num(x: Any, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{float(x):+.1f}" if sign else f"{float(x):.1f}"


def _cell(numbers: Mapping[str, Any] | None) -> str:
    """``base → adapted, Δ [low, high], p``."""
    if not numbers:
        return "–"
    text = f"{_num(numbers.get('b'))} → {_num(numbers.get('a'))}, Δ {_num(numbers.get('delta'), True)}"
    ci = numbers.get("ci")
    if ci:
        text += f" [{_num(ci[0], True)}, {_num(ci[1], True)}]"
    p = numbers.get("p")
    return text + (f", p {p:.3f}" if p is not None else "")


def _overall_table(metrics: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    lines = ["| metric | base → adapted, Δ = adapted − base [95 % CI], p | verdict |", "|---|---|---|"]
    for key, name, lower in OVERALL:
        label = f"{name}{' (lower is better)' if lower else ''} (%)"
        lines.append(f"| {label} | {_cell(_lookup(metrics, key))} | {found['overall']['metrics'][key]} |")
    return lines


def _category_table(metrics: Mapping[str, Any], found: Mapping[str, Any], split: Mapping[str, Any]) -> list[str]:
    lines = ["| category | held-out videos | FNR, lower is better (%) | F2 (%) | verdict |", "|---|---|---|---|---|"]
    per = metrics.get("per_category") or {}
    for category, videos in sorted(split["categories"].items()):
        held = len(videos["held_out"])
        if not held:
            lines.append(f"| {category} | 0 | – | – | not evaluated: its {len(videos['train'])} labelled video(s) "
                         "all train |")
            continue
        row = found["per_category"].get(category, {"verdict": NOT_MEASURED})
        numbers = per.get(category) or {}
        lines.append(f"| {category} | {held} | {_cell(numbers.get('fnr'))} | {_cell(numbers.get('f2'))} | "
                     f"{row['verdict']} |")
    return lines


def adapt_markdown(comparison: Mapping[str, Any], found: Mapping[str, Any], split: Mapping[str, Any],
                   about: Mapping[str, Any]) -> str:
    """``adapt.md``: the overall verdict, the overall and per-category tables, the notes
    and how the numbers were made. ``about`` holds ``checkpoint``, ``labels``, ``videos``
    (labelled), ``train_windows``, ``steps``, ``lr``, ``batch_size``, ``bootstrap``."""
    metrics = comparison.get("metrics") or {}
    overall = found["overall"]["verdict"]
    lines = [f"# Adaptation of {about['checkpoint']}", "",
             f"**Overall: {overall}** on {len(split['held_out'])} held-out video(s) "
             "(the adapted model against the checkpoint it started from, paired by video).", "",
             *_overall_table(metrics, found), "", "## Per category", "", *_category_table(metrics, found, split), ""]
    if split.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in split["notes"]], ""]
    spec = comparison.get("bootstrap") or {}
    lines += [
        "## How this was measured", "",
        f"- Labels: {about['labels']} ({about['videos']} videos), split by video and per category with seed "
        f"{split['seed']}: {len(split['train'])} train, {len(split['held_out'])} held out (`split.json`). No window "
        "of a held-out video was trained on.",
        f"- Fine-tuned from the checkpoint for {about['steps']} steps (batch {about['batch_size']}, lr "
        f"{about['lr']:g}) on {about['train_windows']} training records (`model/`); the checkpoint was only read.",
        "- Both models answered every window of the held-out videos (`eval_base/`, `eval_adapted/`); "
        f"intervals: percentile bootstrap over the held-out videos, {spec.get('samples', 0)} resamples, the same "
        "draw for both models; p: two-sided paired permutation test (`comparison.json`, `comparison.md`).",
        f"- Verdict of a metric: *better* or *worse* when the 95 % interval of adapted − base excludes 0 on that "
        f"side and p < {ALPHA:g}; *no measurable change* otherwise; *not measured* when the metric is undefined "
        "(e.g. FNR without threat time) or there is no interval. FNR is the share of threat time missed: lower "
        "is better, so a better FNR has a negative Δ. A row is *better* when one of its metrics is better and "
        "none worse, *mixed* when some are better and some worse.",
    ]
    return "\n".join(lines) + "\n"
