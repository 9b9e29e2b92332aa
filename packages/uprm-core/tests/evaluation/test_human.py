"""Human evaluation: `uprm eval sheets` writes blind sheets, the test fills them, and
`uprm eval ratings` reports the means per system and per rater and Krippendorff's α,
checked against `krippendorff.alpha` called directly and a hand-made perfect-agreement
case (α = 1)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import numpy as np
import pytest

from .conftest import invoke


def _read_sheet(path):
    return list(csv.DictReader(path.open(encoding="utf-8")))


def _write_sheet(path, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def two_systems(eval_run, tmp_path_factory):
    """The tiny run's answers and a second system's (the reference causes as answers)."""
    other = tmp_path_factory.mktemp("human") / "oracle"
    other.mkdir()
    lines = [json.loads(x) for x in (eval_run / "answers.jsonl").read_text().splitlines()]
    for line in lines:
        if line["task"] == "attribute":
            line["answer"] = line["reference"]
    (other / "answers.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return [eval_run / "answers.jsonl", other / "answers.jsonl"]


@pytest.fixture(scope="module")
def sheets(two_systems, tmp_path_factory):
    out = tmp_path_factory.mktemp("human") / "sheets"
    invoke("eval", "sheets", "--answers", two_systems[0], "--answers", two_systems[1], "--system", "tiny",
           "--system", "oracle", "--raters", "3", "--frames", "2", "--thumb-size", "48", "--out", out)
    return out


def test_sheets_are_blind_shuffled_and_self_contained(sheets, two_systems):
    from PIL import Image

    key = json.loads((sheets / "key.json").read_text())
    assert key["systems"] == ["oracle", "tiny"] and key["raters"] == ["rater1", "rater2", "rater3"]
    assert len(key["items"]) == 2 * 4  # two systems x four attribute records
    orders = []
    for r in (1, 2, 3):
        rows = _read_sheet(sheets / f"rater{r}.csv")
        assert list(rows[0]) == ["item", "clip", "question", "answer", "score", "comment"]
        assert sorted(x["item"] for x in rows) == sorted(key["items"]) and all(x["score"] == "" for x in rows)
        orders.append([x["item"] for x in rows])
        page = (sheets / f"rater{r}.html").read_text()
        # in the sheet's order; nothing names a system; nothing is fetched from the network
        assert re.findall(r"<section id='([0-9a-f]+)'>", page) == orders[-1]
        for text in ((sheets / f"rater{r}.csv").read_text(), page):
            assert "tiny" not in text and "oracle" not in text and "http" not in text
        uris = re.findall(r"src='data:image/jpeg;base64,([^']+)'", page)
        assert len(uris) == 2 * len(rows)  # two frames per item, decoded from its clip
        image = Image.open(io.BytesIO(base64.b64decode(uris[0])))
        assert image.format == "JPEG" and max(image.size) <= 48
        for item in rows:
            answer = key["items"][item["item"]]
            assert item["answer"] == next(json.loads(x)["answer"] for x in two_systems[answer["system"] == "oracle"]
                                          .read_text().splitlines() if json.loads(x)["id"] == answer["record"])
    assert orders[0] != orders[1] and orders[1] != orders[2]


def _fill(sheets, tmp_path, rule):
    """Copies of the sheets with each score given by ``rule(rater, system, item)``."""
    key = json.loads((sheets / "key.json").read_text())
    paths = []
    for r in key["raters"]:
        rows = _read_sheet(sheets / f"{r}.csv")
        for row in rows:
            row["score"] = str(rule(r, key["items"][row["item"]]["system"], row["item"]))
        _write_sheet(tmp_path / f"{r}.csv", rows)
        paths.append(tmp_path / f"{r}.csv")
    (tmp_path / "key.json").write_text((sheets / "key.json").read_text())
    return key, paths


def _rule(rater, system, item):
    base = 4 if system == "oracle" else 2
    return base + (int(item, 16) + int(rater[-1])) % 2  # raters disagree by one on some items


def test_ratings_give_the_means_and_krippendorffs_alpha(sheets, tmp_path):
    import krippendorff

    key, paths = _fill(sheets, tmp_path, _rule)
    result = invoke("eval", "ratings", *paths, "--format", "json", "--out", tmp_path / "ratings.json")
    got = json.loads(result.output)
    assert json.loads((tmp_path / "ratings.json").read_text()) == got
    items = sorted(key["items"])
    matrix = np.array([[_rule(r, key["items"][i]["system"], i) for i in items] for r in key["raters"]], float)
    for system in ("oracle", "tiny"):
        mine = [k for k, i in enumerate(items) if key["items"][i]["system"] == system]
        assert got["systems"][system]["mean"] == pytest.approx(matrix[:, mine].mean())
        assert got["systems"][system]["ratings"] == 3 * len(mine)
        assert got["systems"][system]["per_rater"]["rater2"] == pytest.approx(matrix[1, mine].mean())
    assert got["raters"]["rater1"]["mean"] == pytest.approx(matrix[0].mean())
    want = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert got["alpha"] == pytest.approx(want) and 0 < got["alpha"] < 1
    table = invoke("eval", "ratings", *paths).output
    assert "oracle" in table and f"{want:.3f}" in table


def test_perfect_agreement_gives_alpha_one(tmp_path):
    from uprm.evaluation import read_ratings

    scores = {"a1": ("A", 5), "a2": ("A", 4), "b1": ("B", 2), "b2": ("B", 1)}
    (tmp_path / "key.json").write_text(json.dumps({"items": {i: {"system": s} for i, (s, _) in scores.items()}}))
    for r in ("ann", "bob", "cy"):
        _write_sheet(tmp_path / f"{r}.csv", [{"item": i, "score": str(v)} for i, (_, v) in scores.items()])
    result = read_ratings([tmp_path / f"{r}.csv" for r in ("ann", "bob", "cy")])
    assert result["alpha"] == 1.0
    assert result["systems"]["A"]["mean"] == 4.5 and result["systems"]["B"]["mean"] == 1.5
    assert result["systems"]["A"]["alpha"] == 1.0 and result["missing"] == 0


def test_badly_filled_sheets_are_named_by_file_row_and_column(sheets, tmp_path):
    _, paths = _fill(sheets, tmp_path, _rule)
    rows = _read_sheet(paths[1])
    rows[0]["score"] = "good"
    rows[1]["score"] = "6"
    rows[2]["item"] = "ffffffffffff"
    rows[3]["score"] = ""  # a blank score is a missing rating, not a problem
    _write_sheet(paths[1], rows)
    result = invoke("eval", "ratings", *paths, ok=False)
    assert result.exit_code == 1 and "3 problem(s)" in result.output
    # the score is the sheet's fifth column: E, as a spreadsheet names it
    assert (f"{paths[1]}: row 2, column E 'score' (item {rows[0]['item']}): score must be an integer from 1 to 5, "
            "got 'good'") in result.output
    assert (f"{paths[1]}: row 3, column E 'score' (item {rows[1]['item']}): score must be an integer from 1 to 5, "
            "got '6'") in result.output
    assert f"{paths[1]}: row 4: unknown item 'ffffffffffff'" in result.output
    assert "row 5" not in result.output
    (tmp_path / "key.json").unlink()
    assert "no key file" in invoke("eval", "ratings", *paths, ok=False).output


def test_a_blank_score_is_a_missing_rating_counted_and_left_to_alpha(sheets, tmp_path):
    """Blank score cells are missing ratings: out of the means, α computed over the
    ratings given (Krippendorff's α is made for missing data), and the count reported."""
    import krippendorff

    key, paths = _fill(sheets, tmp_path, _rule)
    items = sorted(key["items"])
    blanks = {"rater2": set(items[:3]), "rater3": {items[0], items[5]}}
    for rater, gone in blanks.items():
        path = tmp_path / f"{rater}.csv"
        rows = _read_sheet(path)
        for row in rows:
            if row["item"] in gone:
                row["score"] = "  "
        _write_sheet(path, rows)
    got = json.loads(invoke("eval", "ratings", *paths, "--format", "json").output)
    assert got["missing"] == got["missing_blank"] == 5 and got["missing_absent"] == 0
    assert got["ratings"] == 3 * len(items) - 5
    assert got["raters"]["rater2"]["missing"] == got["raters"]["rater2"]["blank"] == 3
    assert got["raters"]["rater1"]["missing"] == 0

    def given(rater, item):
        return np.nan if item in blanks.get(rater, ()) else _rule(rater, key["items"][item]["system"], item)

    matrix = np.array([[given(r, i) for i in items] for r in key["raters"]], float)
    want = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert got["alpha"] == pytest.approx(want)
    assert got["raters"]["rater2"]["mean"] == pytest.approx(np.nanmean(matrix[1]))
    oracle = [k for k, i in enumerate(items) if key["items"][i]["system"] == "oracle"]
    assert got["systems"]["oracle"]["mean"] == pytest.approx(np.nanmean(matrix[:, oracle]))
    assert got["systems"]["oracle"]["missing"] == int(np.isnan(matrix[:, oracle]).sum())
    table = invoke("eval", "ratings", *paths).output
    total = 3 * len(items)
    assert f"5 of {total} ratings missing (5 blank score cells, 0 items left out of a sheet)" in table


def test_a_sheet_with_a_trailing_empty_row_and_one_item_left_out(sheets, tmp_path):
    from uprm.evaluation import read_ratings

    key, paths = _fill(sheets, tmp_path, _rule)
    rows = _read_sheet(paths[0])
    _write_sheet(paths[0], [*rows[1:], {k: "" for k in rows[0]}])  # a row dropped, an empty row added
    result = read_ratings(paths)
    assert result["missing"] == result["missing_absent"] == 1 and result["missing_blank"] == 0
    assert result["raters"]["rater1"]["ratings"] == len(key["items"]) - 1
