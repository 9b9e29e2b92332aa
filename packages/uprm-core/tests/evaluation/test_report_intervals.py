"""report.md writes each number with its 95 % interval (`79.4 [61.2, 92.0]`) and says how
the intervals were drawn; report.csv adds `<column>_low` / `<column>_high` after the
columns it had."""

from __future__ import annotations

import csv
import io
import json

from uprm.evaluation.report import csv_row, markdown

from .conftest import invoke
from .test_scoring import write_gt, write_predictions


def report(with_ci: bool = True) -> dict:
    out = {"system": "UPRM", "fnr": 20.6, "f2": 79.4, "map": {"0.1": 50.0, "0.2": 40.0, "0.3": 30.0, "average": 40.0},
           "sbert": 0.512, "rouge_l": 0.3456, "bleu4": 12.34, "gpt": None,
           "per_category": {"Arson": {"fnr": 10.0}, "Normal": {"fnr": None}},
           "counts": {"videos": 60}, "settings": {"thresholds": [0.1, 0.2, 0.3], "rate": 1.0}}
    if with_ci:
        out["ci"] = {"fnr": [8.04, 38.96], "f2": [61.2, 92.0],
                     "map": {"0.1": [30.0, 70.0], "0.2": [20.0, 60.0], "0.3": [10.0, 50.0], "average": [25.0, 55.0]},
                     "sbert": None, "rouge_l": [0.2, 0.4567], "bleu4": [5.0, 20.0],
                     "per_category": {"Arson": {"fnr": [0.0, 25.0]}, "Normal": {"fnr": None}}}
        out["bootstrap"] = {"samples": 1000, "seed": 0, "confidence": 0.95, "unit": "video"}
    return out


def test_the_table_row_shows_each_number_with_its_interval():
    md = markdown(report())
    assert ("| UPRM | 20.6 [8.0, 39.0] | 79.4 [61.2, 92.0] | 50.0 [30.0, 70.0] | 40.0 [20.0, 60.0] "
            "| 30.0 [10.0, 50.0] | 40.0 [25.0, 55.0] | 0.51 | 0.35 [0.20, 0.46] | 12.3 [5.0, 20.0] |") in md
    assert "| UPRM | 10.0 [0.0, 25.0] | – |" in md  # per category; Normal has no threat second
    note = next(line for line in md.splitlines() if line.startswith("In brackets"))
    for words in ("95 % intervals", "percentile bootstrap over videos", "1000 resamples", "60 videos", "seed 0"):
        assert words in note


def test_a_report_without_intervals_keeps_its_table():
    md = markdown(report(with_ci=False))
    assert "| UPRM | 20.60 | 79.40 | 50.00 | 40.00 | 30.00 | 40.00 | 0.51 | 0.35 | 12.34 |" in md
    assert "[" not in md and "In brackets" not in md


def test_the_csv_keeps_its_columns_and_adds_the_bounds_after_them():
    plain, with_ci = csv_row(report(with_ci=False)), csv_row(report())
    assert list(with_ci)[:len(plain)] == list(plain) and all(with_ci[k] == v for k, v in plain.items())
    added = list(with_ci)[len(plain):]
    assert added[:4] == ["fnr_low", "fnr_high", "f2_low", "f2_high"]
    assert with_ci["map_0.2_low"] == "20.0" and with_ci["fnr/Arson_high"] == "25.0"
    assert with_ci["sbert_low"] == "" and with_ci["fnr/Normal_low"] == ""
    assert set(added) == {f"{k}_{b}" for k in plain if k != "approach" for b in ("low", "high")}


def test_the_cli_writes_the_intervals_of_report_json_into_report_md_and_csv(tmp_path):
    gt = write_gt(tmp_path / "gt.json")
    rows = [("v1", 2.0, 4.0, 0.9), ("v2", 1.0, 3.0, 0.8), ("v3", 0.0, 2.0, 0.5)]
    out = tmp_path / "out"
    invoke("eval", "--predictions", write_predictions(tmp_path / "p.json", rows), "--ground-truth", gt, "--out", out,
           "--format", "none", "--no-sbert", "--bootstrap", 200)
    saved = json.loads((out / "report.json").read_text())
    low, high = saved["ci"]["f2"]
    assert f"{saved['f2']:.1f} [{low:.1f}, {high:.1f}]" in (out / "report.md").read_text()
    row = next(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert float(row["f2_low"]) == low and float(row["f2_high"]) == high
