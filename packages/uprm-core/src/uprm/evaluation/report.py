"""The report files: ``report.json``, ``report.md`` (the paper's Table 1/2 row, the
per-category FNR of Tables 4/5, the field's extras), ``report.csv`` (the same numbers,
one row per system) and ``expert_weights.png`` (Fig. 5: the router's mean weight of each
expert per category). Every file is written atomically.

When the report has intervals (``report["ci"]``, a bootstrap over videos), report.md
writes each number with its 95 % interval, ``79.4 [61.2, 92.0]``, and says how they were
drawn; report.csv adds ``<column>_low`` / ``<column>_high`` after its other columns."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uprm.utils import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["FIGURE_NAME", "csv_row", "interval_note", "markdown", "plot_expert_weights", "table1_keys",
           "write_report_files"]

FIGURE_NAME = "expert_weights.png"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _map_keys(report: Mapping[str, Any]) -> list[str]:
    thresholds = report.get("settings", {}).get("thresholds") or []
    return [f"{t:g}" for t in thresholds]


def table1_columns(report: Mapping[str, Any]) -> list[tuple[str, Any, int]]:
    """``(header, value, digits)`` of the paper's Table 1/2 row: FNR, F2, mAP at each
    threshold and their average, SB, ROUGE, BLEU (and GPT when judged)."""
    mean_ap = report.get("map") or {}
    cols: list[tuple[str, Any, int]] = [("FNRs↓", report.get("fnr"), 2), ("F2", report.get("f2"), 2)]
    cols += [(f"mAP@{k}", mean_ap.get(k), 2) for k in _map_keys(report)]
    cols += [("Average", mean_ap.get("average"), 2), ("SB", report.get("sbert"), 2),
             ("Rouge", report.get("rouge_l"), 2), ("BLEU", report.get("bleu4"), 2)]
    if report.get("gpt") is not None:
        cols.append(("GPT", report.get("gpt"), 2))
    return cols


def table1_keys(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Where each column of :func:`table1_columns` sits in the report (and in its
    ``"ci"``): ``("fnr",)``, ``("map", "0.1")``, …"""
    keys = [("fnr",), ("f2",), *[("map", k) for k in _map_keys(report)], ("map", "average"), ("sbert",),
            ("rouge_l",), ("bleu4",)]
    if report.get("gpt") is not None:
        keys.append(("gpt",))
    return keys


def _ci_at(report: Mapping[str, Any], path: tuple[str, ...]) -> list[float] | None:
    """The interval at ``path`` of the report's ``"ci"`` (None: none)."""
    node: Any = report.get("ci")
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return list(node) if isinstance(node, (list, tuple)) and len(node) == 2 else None


#: digits of a number printed with its interval: percent and BLEU (0-100) one, SB and ROUGE-L (0-1) two
_CI_DIGITS = {"sbert": 2, "rouge_l": 2}


def _fmt_ci(value: Any, ci: list[float] | None, digits: int) -> str:
    """``79.4 [61.2, 92.0]``; the value alone when there is no interval."""
    if ci is None or value is None:
        return _fmt(value, digits)
    return f"{_fmt(float(value), digits)} [{_fmt(float(ci[0]), digits)}, {_fmt(float(ci[1]), digits)}]"


def _cell(report: Mapping[str, Any], path: tuple[str, ...], value: Any, digits: int) -> str:
    if not report.get("ci"):
        return _fmt(value, digits)
    return _fmt_ci(value, _ci_at(report, path), _CI_DIGITS.get(path[-1], 1))


def interval_note(report: Mapping[str, Any]) -> str | None:
    """How the report's intervals were drawn (None: it has none)."""
    spec = report.get("bootstrap")
    if not report.get("ci") or not isinstance(spec, Mapping):
        return None
    videos = (report.get("counts") or {}).get("videos")
    level = 100 * float(spec.get("confidence", 0.95))
    return (f"In brackets: {level:g} % intervals, percentile bootstrap over videos ({spec.get('samples')} resamples "
            f"of the {videos if videos is not None else ''} videos with replacement, seed {spec.get('seed')}; "
            f"the unit resampled is the {spec.get('unit', 'video')}, as the seconds of one video are not independent). "
            "Every metric is recomputed on each resample as on the whole set (frame counts pooled, mAP re-ranked, "
            "BLEU-4 over the drawn answers); a number without one has none (undefined on the resamples, or answers "
            "not tied to their videos).")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _extras(report: Mapping[str, Any]) -> list[list[str]]:
    video, grounding = report.get("video") or {}, report.get("grounding") or {}
    rows = [["frame ROC-AUC (%)", _fmt(report.get("frame_roc_auc"))], ["frame AP (%)", _fmt(report.get("frame_ap"))]]
    rows += [[f"video-level {k} (%)", _fmt(video.get(k))] for k in ("fnr", "f2", "precision", "recall")]
    rows += [[f"grounding {k} (%)", _fmt(v)] for k, v in grounding.items()]
    return rows


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables laid out like the paper's."""
    system = report.get("system") or "UPRM"
    cols = table1_columns(report)
    rate = float(report.get("settings", {}).get("rate", 1.0))
    unit = "per second" if rate == 1 else f"{rate:g} samples per second"
    parts = [f"# Evaluation of {system}", "",
             f"Identifying (frame-level, {unit}), locating (ActivityNet mAP@tIoU) and attributing (SB, ROUGE-L, "
             "BLEU-4); FNR, F2 and mAP in percent.", "",
             _md_table(["Approach", *[c[0] for c in cols]],
                       [[system, *[_cell(report, key, v, d) for key, (_, v, d) in zip(table1_keys(report), cols)]]])]
    note = interval_note(report)
    if note:
        parts += ["", note]
    per_cat = report.get("per_category") or {}
    if per_cat:
        names = list(per_cat)
        cells = [_cell(report, ("per_category", n, "fnr"), per_cat[n].get("fnr"), 2) for n in names]
        parts += ["", "## FNRs↓ per category (Tables 4/5)", "", _md_table(["Approach", *names], [[system, *cells]])]
    weights = report.get("expert_weights_per_category") or {}
    if weights:
        experts = list(report.get("expert_weights") or next(iter(weights.values())))
        rows = [[cat, *[_fmt(w.get(e), 3) for e in experts]] for cat, w in weights.items()]
        rows.append(["all", *[_fmt((report.get("expert_weights") or {}).get(e), 3) for e in experts]])
        parts += ["", "## Mean router weight per expert (Fig. 5)", "", _md_table(["Category", *experts], rows)]
    parts += ["", "## The field's extras", "", _md_table(["Metric", "Value"], _extras(report))]
    notes = report.get("notes") or []
    if notes:
        parts += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def csv_row(report: Mapping[str, Any]) -> dict[str, str]:
    """The report as one CSV row: the Table 1/2 numbers, then ``FNR/<category>``, then
    (with intervals) ``<column>_low`` and ``<column>_high`` of each of them."""
    keys = {"FNRs↓": "fnr", "F2": "f2", "Average": "map_average", "SB": "sbert", "Rouge": "rouge_l",
            "BLEU": "bleu4", "GPT": "gpt"}
    row = {"approach": str(report.get("system") or "UPRM")}
    bounds: dict[str, list[float] | None] = {}
    for path, (header, value, _) in zip(table1_keys(report), table1_columns(report)):
        name = keys.get(header, header.replace("mAP@", "map_"))
        row[name] = "" if value is None else repr(float(value))
        bounds[name] = _ci_at(report, path)
    for category, values in (report.get("per_category") or {}).items():
        fnr = values.get("fnr")
        row[f"fnr/{category}"] = "" if fnr is None else repr(float(fnr))
        bounds[f"fnr/{category}"] = _ci_at(report, ("per_category", category, "fnr"))
    if report.get("ci"):  # after the other columns, so that those keep their places
        for name, ci in bounds.items():
            row[f"{name}_low"], row[f"{name}_high"] = ("", "") if ci is None else (repr(ci[0]), repr(ci[1]))
    return row


def _csv_text(row: Mapping[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return buffer.getvalue()


def plot_expert_weights(weights: Mapping[str, Mapping[str, float]], path: str | os.PathLike,
                        title: str = "Mean router weight per expert and category") -> Path:
    """Fig. 5: grouped bars, one group per category, one bar per expert (matplotlib,
    Agg backend), written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    categories = list(weights)
    experts = list(dict.fromkeys(e for w in weights.values() for e in w))
    width = 0.8 / max(1, len(experts))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(categories) + 2), 4.0), dpi=100)
    for i, expert in enumerate(experts):
        xs = [c + (i - (len(experts) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(xs, [weights[c].get(expert, 0.0) for c in categories], width, label=expert)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.set_ylabel("mean router weight")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_report_files(report: Mapping[str, Any], out: str | os.PathLike) -> dict[str, Path]:
    """``report.json``, ``report.md``, ``report.csv`` (and ``expert_weights.png`` when the
    report has router weights) in ``out``; returns their paths."""
    out = Path(out)
    paths = {"json": out / "report.json", "md": out / "report.md", "csv": out / "report.csv"}
    atomic_write_json(paths["json"], _json_safe(report))
    atomic_write_text(paths["md"], markdown(report))
    atomic_write_text(paths["csv"], _csv_text(csv_row(report)))
    weights = report.get("expert_weights_per_category")
    if weights:
        paths["figure"] = plot_expert_weights(weights, out / FIGURE_NAME)
    return paths


def dumps(report: Mapping[str, Any]) -> str:
    """The report as JSON text (NaN as null)."""
    return json.dumps(_json_safe(report), indent=2)
