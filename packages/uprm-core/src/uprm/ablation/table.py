"""The ablation table: each variant's metrics as the mean over its seeds, in the paper's
units and columns (Table 1/2: FNR, F2, mAP@tIoU per threshold and their average, SB,
ROUGE, BLEU), written as ``ablation.md``, ``ablation.csv`` and ``ablation.json``.

The mean is over the seeds whose run finished (a metric that is undefined for a seed,
``null`` in its report, is left out of that metric's mean). With intervals
(:class:`uprm.ablation.effects.Effects`), a cell is ``mean [low, high]``, the 95 %
interval over seeds and videos, marked ``†`` when the variant's paired difference from
full excludes zero; a second table gives those differences (variant − full) with their
Holm-corrected p-values, and a column the probability of improvement of full over the
variant. Without intervals (``--bootstrap 0``) a cell is ``mean ± std``, the sample
standard deviation over seeds (``n - 1``; none for a single value). The last column is
the final training loss (stage 2) of the runs, for reference.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uprm.ablation.plan import LABELS

if TYPE_CHECKING:
    from uprm.ablation.effects import Effects

__all__ = ["Column", "Row", "aggregate", "markdown", "metric_columns", "write_tables"]

_KEYS = {"FNRs↓": "fnr", "F2": "f2", "Average": "map_average", "SB": "sbert", "Rouge": "rouge_l", "BLEU": "bleu4",
         "GPT": "gpt"}
LOSS = "final_loss"
#: marks a cell whose variant differs from full (the interval of the difference excludes zero)
MARK = "†"


@dataclass(frozen=True)
class Column:
    key: str  # fnr, f2, map_0.1, ..., map_average, sbert, rouge_l, bleu4
    header: str  # the paper's header: FNRs↓, F2, mAP@0.1, ..., Average, SB, Rouge, BLEU


@dataclass
class Row:
    variant: str
    seeds: list[int]
    values: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS.get(self.variant, self.variant)

    def stats(self, key: str) -> dict[str, Any]:
        return summarise(self.values.get(key, []))

    def to_dict(self, columns: Sequence[Column], effects: Effects | None = None) -> dict[str, Any]:
        """The row in ``ablation.json``: per metric ``mean``, ``std``, ``n``, ``values`` (and
        ``ci``); with ``effects`` also ``intervals``, ``vs_full`` and ``p_improvement``."""
        keys = [c.key for c in columns] + [LOSS]
        metrics = {k: self.stats(k) for k in keys}
        out = {"variant": self.variant, "label": self.label, "seeds": self.seeds, "metrics": metrics}
        if effects is not None:
            for key in keys:
                ci = effects.ci(self.variant, key)
                if key != LOSS:
                    metrics[key]["ci"] = None if ci is None else list(ci)
            out.update(effects.row(self.variant))
        return out


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of the defined values (sample std; ``None``
    below two values)."""
    defined = [float(v) for v in values if v is not None]
    mean = statistics.fmean(defined) if defined else None
    std = statistics.stdev(defined) if len(defined) > 1 else None
    return {"mean": mean, "std": std, "n": len(defined), "values": list(values)}


def metric_columns(report: Mapping[str, Any]) -> list[Column]:
    """The Table 1/2 columns of one evaluation report."""
    from uprm.evaluation.report import table1_columns

    return [Column(_KEYS.get(h, h.replace("mAP@", "map_")), h) for h, _, _ in table1_columns(report)]


def _value(report: Mapping[str, Any], column: Column) -> float | None:
    from uprm.evaluation.report import table1_columns

    for header, value, _ in table1_columns(report):
        if header == column.header:
            return None if value is None else float(value)
    return None


def aggregate(finished: Sequence[tuple[str, int, Mapping[str, Any], float | None]],
              order: Sequence[str]) -> tuple[list[Column], list[Row]]:
    """Rows of ``(variant, seed, report, final training loss)`` of finished runs →
    the columns and one row per variant (in ``order``)."""
    columns: list[Column] = []
    for _, _, report, _ in finished:
        columns += [c for c in metric_columns(report) if c not in columns]
    rows = {v: Row(v, []) for v in order if any(f[0] == v for f in finished)}
    for variant, seed, report, loss in finished:
        row = rows[variant]
        row.seeds.append(seed)
        for column in columns:
            row.values.setdefault(column.key, []).append(_value(report, column))
        row.values.setdefault(LOSS, []).append(loss)
    return columns, list(rows.values())


# ---------------------------------------------------------------------- the files
def _cell(stats: Mapping[str, Any], digits: int = 2) -> str:
    if stats["mean"] is None:
        return "–"
    text = f"{stats['mean']:.{digits}f}"
    return text if stats["std"] is None else f"{text} ± {stats['std']:.{digits}f}"


def _interval_cell(row: Row, key: str, effects: Effects | None, digits: int = 2) -> str:
    """``mean [low, high]`` (``†`` when the difference from full excludes zero); without
    an interval ``mean ± std``."""
    stats = row.stats(key)
    ci = None if effects is None else effects.ci(row.variant, key)
    if ci is None or stats["mean"] is None:
        return _cell(stats, digits)
    text = f"{stats['mean']:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text + (f" {MARK}" if effects is not None and effects.differs(row.variant, key) else "")


def _probability(effects: Effects | None, variant: str) -> str:
    value = None if effects is None else effects.improvement.get(variant)
    return "–" if value is None else f"{value:.2f}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _p_text(p: float | None) -> str:
    if p is None:
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _delta_cell(effects: Effects, variant: str, key: str, digits: int = 2) -> str:
    """``+d [+low, +high] † p=…`` of ``variant − full`` (Holm-corrected p)."""
    c = effects.vs_full.get(variant, {}).get(key)
    if c is None or c.delta is None:
        return "–"
    text = f"{c.delta:+.{digits}f}"
    if c.ci is not None:
        text += f" [{c.ci[0]:+.{digits}f}, {c.ci[1]:+.{digits}f}]" + (f" {MARK}" if c.excludes_zero else "")
    p = _p_text(c.p_holm if c.p_holm is not None else c.p)
    return text + (f" {p}" if p else "")


def differences(columns: Sequence[Column], rows: Sequence[Row], effects: Effects) -> str:
    """The paired differences from full (variant − full), one row per variant."""
    body = [[row.label, *[_delta_cell(effects, row.variant, c.key) for c in columns]]
            for row in rows if row.variant in effects.vs_full]
    if not body:
        return ""
    return "\n".join(_table([f"Variant − {LABELS['full']}", *[f"Δ {c.header}" for c in columns]], body)) + "\n"


def method_text(effects: Effects) -> str:
    """How the intervals, differences, p-values and probabilities were made (the words
    under the tables of ``ablation.md``)."""
    spec = effects.spec
    seeds = max((len(s) for s in effects.seeds.values()), default=0)
    if not effects.intervals:
        return ("Cells: mean ± sample standard deviation over the seeds (no intervals: --bootstrap 0). "
                + _improvement_text(effects))
    return (f"Cells: the mean over the seeds [{spec.confidence:.0%} interval]. The intervals pool videos and seeds: "
            f"each of {spec.samples} bootstrap resamples (seed {spec.seed}) draws the {len(effects.videos)} test "
            f"videos with replacement and the {seeds} seed(s) with replacement, and recomputes every metric on the "
            f"drawn videos for each drawn seed. Differences are variant − full, paired by video and seed (one draw "
            f"serves both); {MARK}: the difference's interval excludes zero. p: two-sided paired permutation test "
            f"({effects.permutations} permutations, the two models' results of a (video, seed) swapped at random), "
            "Holm-corrected over the variants of each metric. " + _improvement_text(effects))


def _improvement_text(effects: Effects) -> str:
    if not effects.improvement:
        return ""
    return ("P(full better): the probability of improvement of full over the variant (rliable): for each of the "
            f"{len(effects.tasks)} threat categories ({', '.join(effects.tasks)}), the chance that a seed of full has "
            "a higher per-category F2 than a seed of the variant (ties count half), averaged over the categories; "
            "0.5 is no difference.")


def markdown(columns: Sequence[Column], rows: Sequence[Row], notes: Sequence[str] = (),
             effects: Effects | None = None) -> str:
    """The table (with ``effects``: intervals, marks, P(full better), the differences
    from full and how they were made), then the notes."""
    header = ["Variant", "Seeds", *[c.header for c in columns], "Train loss"]
    if effects is not None and effects.improvement:
        header.append("P(full better)")
    body = []
    for row in rows:
        cells = [_interval_cell(row, c.key, effects) for c in columns] + [_cell(row.stats(LOSS), 3)]
        if len(header) > len(cells) + 2:
            cells.append(_probability(effects, row.variant))
        body.append([row.label, ",".join(map(str, row.seeds)), *cells])
    text = "\n".join(_table(header, body)) + "\n"
    if effects is not None:
        table = differences(columns, rows, effects) if effects.intervals else ""
        text += ("\n" + table if table else "") + "\n" + method_text(effects) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return text


def _csv_effects(effects: Effects | None, columns: Sequence[Column], variant: str) -> list[str]:
    """``<key>_low, <key>_high, <key>_delta, <key>_delta_low, <key>_delta_high,
    <key>_p_holm`` of each column, then ``p_improvement``."""
    if effects is None:
        return []

    def text(x: Any) -> str:
        return "" if x is None else repr(float(x))

    cells = []
    for c in columns:
        ci = effects.ci(variant, c.key) or (None, None)
        cmp = effects.vs_full.get(variant, {}).get(c.key)
        dci = (cmp.ci if cmp is not None else None) or (None, None)
        cells += [text(ci[0]), text(ci[1]), text(cmp and cmp.delta), text(dci[0]), text(dci[1]),
                  text(cmp and cmp.p_holm)]
    return [*cells, text(effects.improvement.get(variant))]


def csv_text(columns: Sequence[Column], rows: Sequence[Row], effects: Effects | None = None) -> str:
    keys = [c.key for c in columns] + [LOSS]
    names = ["variant", "label", "seeds", "runs"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")]
    if effects is not None:
        names += [f"{c.key}_{s}" for c in columns for s in ("low", "high", "delta", "delta_low", "delta_high",
                                                             "p_holm")] + ["p_improvement"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        cells: list[str] = [row.variant, row.label, ";".join(map(str, row.seeds)), str(len(row.seeds))]
        for key in keys:
            stats = row.stats(key)
            cells += ["" if stats[s] is None else repr(stats[s]) for s in ("mean", "std")]
        writer.writerow(cells + _csv_effects(effects, columns, row.variant))
    return buffer.getvalue()


def write_tables(out: Path, columns: Sequence[Column], rows: Sequence[Row], notes: Sequence[str],
                 extra: Mapping[str, Any], effects: Effects | None = None) -> dict[str, Path]:
    """``ablation.md``, ``ablation.csv``, ``ablation.json`` in ``out`` (atomically); with
    ``effects``, the intervals, differences from full (``delta`` = variant − full) and
    probabilities of improvement in all three, and ``"bootstrap"`` (how) in the JSON."""
    from uprm.evaluation.scoring import UNITS
    from uprm.utils import atomic_write_text

    paths = {"md": out / "ablation.md", "csv": out / "ablation.csv", "json": out / "ablation.json"}
    atomic_write_text(paths["md"], "# Ablation\n\n" + markdown(columns, rows, notes, effects))
    atomic_write_text(paths["csv"], csv_text(columns, rows, effects))
    data = {"columns": [{"key": c.key, "header": c.header} for c in columns] + [{"key": LOSS, "header": "Train loss"}],
            "rows": [r.to_dict(columns, effects) for r in rows], "units": UNITS, "notes": list(notes),
            **({"bootstrap": effects.settings()} if effects is not None else {}), **extra}
    atomic_write_text(paths["json"], json.dumps(data, indent=2, default=str) + "\n")
    return paths
