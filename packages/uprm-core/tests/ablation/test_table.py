"""Mean ± std over seeds from hand-made reports: numbers by hand, undefined values,
one seed, the three files."""

from __future__ import annotations

import csv
import json

import pytest

from uprm.ablation.table import aggregate, markdown, summarise, write_tables


def _report(fnr, f2, maps, sbert, rouge, bleu):
    return {"fnr": fnr, "f2": f2, "map": None if maps is None else {"0.1": maps[0], "0.2": maps[1], "0.3": maps[2],
                                                                    "average": sum(maps) / 3},
            "sbert": sbert, "rouge_l": rouge, "bleu4": bleu, "settings": {"thresholds": [0.1, 0.2, 0.3]}}


def test_summaries_by_hand():
    assert summarise([10.0, 20.0, 30.0]) == {"mean": 20.0, "std": 10.0, "n": 3, "values": [10.0, 20.0, 30.0]}
    assert summarise([4.0, None]) == {"mean": 4.0, "std": None, "n": 1, "values": [4.0, None]}
    assert summarise([None]) == {"mean": None, "std": None, "n": 0, "values": [None]}


def test_rows_columns_and_files(tmp_path):
    finished = [
        ("full", 0, _report(10.0, 80.0, (60.0, 50.0, 40.0), 0.5, 0.4, 10.0), 0.5),
        ("full", 1, _report(20.0, 70.0, (70.0, 60.0, 50.0), 0.7, 0.2, 20.0), 0.3),
        ("wo_upe", 0, _report(50.0, 40.0, None, None, 0.1, 5.0), 1.0),  # all-negative test: mAP undefined
    ]
    columns, rows = aggregate(finished, ["full", "wo_pose", "wo_upe"])
    assert [c.key for c in columns] == ["fnr", "f2", "map_0.1", "map_0.2", "map_0.3", "map_average", "sbert",
                                        "rouge_l", "bleu4"]
    assert [c.header for c in columns][:3] == ["FNRs↓", "F2", "mAP@0.1"]
    assert [r.variant for r in rows] == ["full", "wo_upe"] and rows[0].seeds == [0, 1]
    full = rows[0]
    assert full.stats("fnr") == {"mean": 15.0, "std": pytest.approx(7.0710678), "n": 2, "values": [10.0, 20.0]}
    assert full.stats("map_average")["mean"] == pytest.approx(55.0)
    assert full.stats("final_loss")["mean"] == pytest.approx(0.4)
    assert rows[1].stats("map_0.1") == {"mean": None, "std": None, "n": 0, "values": [None]}
    text = markdown(columns, rows, ["wo_pose skipped: no pose"])
    assert "| UPRM (full) | 0,1 | 15.00 ± 7.07 | 75.00 ± 7.07 | 65.00 ± 7.07 | 55.00 ± 7.07 | 45.00 ± 7.07 | " \
           "55.00 ± 7.07 | 0.60 ± 0.14 | 0.30 ± 0.14 | 15.00 ± 7.07 | 0.400 ± 0.141 |" in text
    assert "| w/o UPE (coarse only) | 0 | 50.00 | 40.00 | – | – | – | – | – | 0.10 | 5.00 | 1.000 |" in text
    assert text.rstrip().endswith("- wo_pose skipped: no pose")

    paths = write_tables(tmp_path, columns, rows, ["a note"], {"runs": []})
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"][0]["metrics"]["f2"]["mean"] == 75.0 and saved["notes"] == ["a note"]
    assert saved["units"]["fnr"] == "percent"
    table = list(csv.DictReader(paths["csv"].open()))
    assert table[0]["variant"] == "full" and table[0]["seeds"] == "0;1" and table[0]["runs"] == "2"
    assert float(table[0]["fnr_std"]) == pytest.approx(7.0710678) and table[1]["fnr_std"] == ""
    assert table[1]["map_average_mean"] == "" and float(table[1]["bleu4_mean"]) == 5.0
    assert paths["md"].read_text().startswith("# Ablation\n\n| Variant |")
