"""The ablation table: each variant's metrics as mean ± standard deviation over its
seeds, in the paper's units and columns (Table 1/2: FNR, F2, mAP@tIoU per threshold and
their average, SB, ROUGE, BLEU), written as ``ablation.md``, ``ablation.csv`` and
``ablation.json``.

The mean is over the seeds whose run finished (a metric that is undefined for a seed,
``null`` in its report, is left out of that metric's mean); the standard deviation is
the sample one (``n - 1``), undefined (``–``, ``null``) for a single value. The last
column is the final training loss (stage 2) of the runs, for reference.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.ablation.plan import LABELS

__all__ = ["Column", "Row", "aggregate", "markdown", "metric_columns", "write_tables"]

_KEYS = {"FNRs↓": "fnr", "F2": "f2", "Average": "map_average", "SB": "sbert", "Rouge": "rouge_l", "BLEU": "bleu4",
         "GPT": "gpt"}
LOSS = "final_loss"


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

    def to_dict(self, columns: Sequence[Column]) -> dict[str, Any]:
        keys = [c.key for c in columns] + [LOSS]
        return {"variant": self.variant, "label": self.label, "seeds": self.seeds,
                "metrics": {k: self.stats(k) for k in keys}}


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


def markdown(columns: Sequence[Column], rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    header = ["Variant", "Seeds", *[c.header for c in columns], "Train loss"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [_cell(row.stats(c.key)) for c in columns] + [_cell(row.stats(LOSS), 3)]
        lines.append("| " + " | ".join([row.label, ",".join(map(str, row.seeds)), *cells]) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return text


def csv_text(columns: Sequence[Column], rows: Sequence[Row]) -> str:
    keys = [c.key for c in columns] + [LOSS]
    names = ["variant", "label", "seeds", "runs"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        cells: list[str] = [row.variant, row.label, ";".join(map(str, row.seeds)), str(len(row.seeds))]
        for key in keys:
            stats = row.stats(key)
            cells += ["" if stats[s] is None else repr(stats[s]) for s in ("mean", "std")]
        writer.writerow(cells)
    return buffer.getvalue()


def write_tables(out: Path, columns: Sequence[Column], rows: Sequence[Row], notes: Sequence[str],
                 extra: Mapping[str, Any]) -> dict[str, Path]:
    """``ablation.md``, ``ablation.csv``, ``ablation.json`` in ``out`` (atomically)."""
    from uprm.evaluation.scoring import UNITS
    from uprm.utils import atomic_write_text

    paths = {"md": out / "ablation.md", "csv": out / "ablation.csv", "json": out / "ablation.json"}
    atomic_write_text(paths["md"], "# Ablation\n\n" + markdown(columns, rows, notes))
    atomic_write_text(paths["csv"], csv_text(columns, rows))
    data = {"columns": [{"key": c.key, "header": c.header} for c in columns] + [{"key": LOSS, "header": "Train loss"}],
            "rows": [r.to_dict(columns) for r in rows], "units": UNITS, "notes": list(notes), **extra}
    atomic_write_text(paths["json"], json.dumps(data, indent=2, default=str) + "\n")
    return paths
