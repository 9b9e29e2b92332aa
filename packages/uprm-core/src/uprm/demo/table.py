"""The printed table (the paper's Table 1 columns) and ``results.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LABELS", "format_table", "number", "with_interval"]

#: how the table names each row
LABELS = {
    "untrained": "untrained UPRM",
    "always": "always yes",
    "coarse": "coarse only (w/o UPE)",
    "uprm": "UPRM (all experts)",
}


def number(value: Any, digits: int = 2) -> str:
    """A cell: ``–`` for a number that is not there (``None``: undefined or not computed)."""
    if value is None:
        return "–"
    return f"{float(value):.{digits}f}"


def _thresholds(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    for row in rows:
        if isinstance(row.get("map"), Mapping):
            return [k for k in row["map"] if k != "average"]
    return []


def with_interval(value: Any, ci: Sequence[float] | None, digits: int = 1) -> str:
    """A cell with its 95 % interval, ``51.0 [38.2, 63.1]``; the value alone when there
    is no interval, ``–`` when there is no value."""
    if value is None or ci is None:
        return number(value, digits)
    return f"{float(value):.{digits}f} [{float(ci[0]):.{digits}f}, {float(ci[1]):.{digits}f}]"


def _has_intervals(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(isinstance(r.get("ci"), Mapping) and any(v is not None for v in r["ci"].values()) for r in rows)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table: FNR↓, F2, mAP at each tIoU and their average (all
    percent), SB, ROUGE-L (0-1), BLEU-4 (0-100). Rows with ``"ci"`` (``{"fnr", "f2",
    "map"}``, :func:`uprm.demo.scoring.row_intervals`) show FNR, F2 and the mAP average
    with their 95 % interval, ``51.0 [38.2, 63.1]``, and every percent to one decimal."""
    thresholds = _thresholds(rows)
    digits = 1 if _has_intervals(rows) else 2
    header = ["Model", "FNR↓", "F2", *[f"mAP@{t}" for t in thresholds], "mAP avg", "SB", "ROUGE", "BLEU"]
    lines = [header]
    for row in rows:
        maps = row.get("map") if isinstance(row.get("map"), Mapping) else {}
        ci = row.get("ci") if isinstance(row.get("ci"), Mapping) else {}
        lines.append([LABELS.get(row["model"], row["model"]), with_interval(row.get("fnr"), ci.get("fnr"), digits),
                      with_interval(row.get("f2"), ci.get("f2"), digits),
                      *[number(maps.get(t), digits) for t in thresholds],
                      with_interval(maps.get("average"), ci.get("map"), digits),
                      number(row.get("sbert")), number(row.get("rouge_l")), number(row.get("bleu4"))])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "| " + " | ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))]) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(lines[0]), rule, *(fmt(line) for line in lines[1:])])
