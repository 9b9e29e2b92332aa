"""The site-adaptation benchmark's whole path, small (benchmarks/adapt.py --quick): a base
world without the site category and the demo's model trained on it, a site world with
FenceClimbing, its labels (from the ground truth, and through `uprm serve`'s review API),
`uprm adapt`, `uprm detect` of both checkpoints, and the report."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "adapt.py"


@pytest.fixture(scope="module")
def bench(load_benchmark):
    with load_benchmark("adapt") as module:
        yield module


@pytest.fixture(scope="module")
def quick(bench, tmp_path_factory):
    work = tmp_path_factory.mktemp("adapt_bench")
    out = bench.main(["--quick", "--quiet", "--work", str(work), "--report", str(work / "adapt.md")])
    return work, out


def truth(segments, category="FenceClimbing", causes=("a person climbing over the fence",)):
    return SimpleNamespace(segments=list(segments), category=category, causes=list(causes))


def test_a_review_made_from_the_ground_truth_confirms_rejects_and_adds(bench):
    detected = [{"segment": [0.0, 2.0]}, {"segment": [5.0, 9.0]}, {"segment": [8.0, 9.5]}]
    segments = bench.review_segments(detected, truth([(6.0, 10.0), (14.0, 16.0)]))
    assert segments == [
        {"start": 0.0, "end": 2.0, "verdict": "rejected"},
        # moved to the true boundaries, with the true category and cause
        {"start": 6.0, "end": 10.0, "category": "FenceClimbing", "cause": "a person climbing over the fence",
         "verdict": "confirmed"},
        # a second detection of a threat already confirmed adds nothing
        {"start": 14.0, "end": 16.0, "category": "FenceClimbing", "cause": "a person climbing over the fence",
         "verdict": "added"},
    ]
    # a Normal video: every detection is a false alarm
    assert bench.review_segments([{"start": 1.0, "end": 3.0}], truth([], "Normal", ())) == [
        {"start": 1.0, "end": 3.0, "verdict": "rejected"}]


def _result(k_site, site_fnr, ci, p, verdict, old=None):
    per = {"FenceClimbing": {"fnr": {"a": site_fnr[1], "b": site_fnr[0], "delta": site_fnr[1] - site_fnr[0],
                                     "ci": ci, "p": p}},
           "Fighting": {"fnr": {"a": 12.5, "b": 0.0, "delta": 12.5, "ci": [0.0, 25.0], "p": 1.0}}}
    held = {"FenceClimbing": k_site, "Fighting": 2, "Normal": 10}
    found = {"overall": {"verdict": verdict, "metrics": {"fnr": verdict}},
             "per_category": {"FenceClimbing": {"verdict": verdict}, "Fighting": {"verdict": old or "no measurable change"},
                              "Normal": {"verdict": "not measured"}}}
    return {"verdicts": found, "comparison": {"metrics": {"per_category": per}}}, held


def test_the_reading_says_whether_the_interval_excludes_zero_and_when_too_few_videos_could_not_show_it(bench):
    result, held = _result(8, (100.0, 20.0), [-95.0, -60.0], 0.004, "better")
    text = "\n".join(bench.reading(result, held))
    assert "FNR 100.0 % → 20.0 % on 8 held-out climbs" in text and "(excludes zero)" in text
    assert "verdict *better*" in text and "could not be *better*" not in text
    assert "none is *worse*" in text
    # a point estimate that went the wrong way is named, with its interval
    assert "Missed more threat time than before, within the interval: Fighting FNR 0.0 → 12.5 [+0.0, +25.0]" in text
    # the old category's two held-out videos cannot show harm: said, not hidden
    assert "at most 2 held-out videos, too few" in text

    result, held = _result(5, (100.0, 40.0), [-80.0, -10.0], 0.06, "no measurable change", old="worse")
    text = "\n".join(bench.reading(result, held))
    assert "With 5 held-out climbs no paired permutation p can fall below about 2/2^5 = 0.062" in text
    assert "*worse* or *mixed*: Fighting" in text


@pytest.mark.slow
def test_the_quick_benchmark_adapts_a_base_that_never_saw_the_site_category_and_reports_it(quick):
    _, out = quick
    state = out["bench"]
    # 1. the base world has no fence climbing; the site world does
    assert "FenceClimbing" not in state["done"]["base"]["categories"]
    assert state["done"]["site"]["categories"]["FenceClimbing"] == 5
    # 3. the labels: the first --climbs (4) climbs and every other video
    labels = json.loads(Path(state["done"]["labels"]["file"]).read_text())["database"]
    climbs = sorted(v for v, e in labels.items() if any(a["label"] == "FenceClimbing" for a in e["annotations"]))
    assert climbs == [f"FenceClimbing00{i}_syn" for i in range(1, 5)]
    assert len(labels) == 13
    # 4. uprm adapt ran from the base checkpoint with the site's taxonomy: comparison.json per category
    result = out["result"]
    run = Path(result["out"])
    assert json.loads((run / "comparison.json").read_text()) == json.loads(json.dumps(result["comparison"]))
    assert result["split"]["categories"]["FenceClimbing"]["held_out"] and result["verdicts"]["per_category"]
    # 5. both checkpoints through uprm detect on the same held-out videos, compared paired
    assert set(out["detect"]["reports"]) == {"base", "adapted"}
    assert out["detect"]["comparison"]["videos"] == len(result["split"]["held_out"])
    # 6. the report: FenceClimbing first, the verdict, the reading, times and settings
    text = out["report"].read_text()
    per_category = text.split("## Per category")[1].split("\n## ")[0]
    first_row = [line for line in per_category.splitlines() if line.startswith("| ") and "---" not in line][1]
    assert first_row.startswith("| FenceClimbing | 2 | ")
    site = result["comparison"]["metrics"]["per_category"]["FenceClimbing"]["fnr"]
    assert f"{site['b']:.1f} → {site['a']:.1f}" in first_row
    for heading in ("## Overall: ", "## The same held-out videos through `uprm detect`", "## Reading", "## Times",
                    "## Settings"):
        assert heading in text
    assert "With 2 held-out climbs no paired permutation p can fall below" in text
    assert set(state["stages"]) >= {"base", "site", "labels", "adapt", "detect"}


@pytest.mark.slow
def test_the_quick_benchmark_labels_through_the_review_api(bench, quick):
    work, first = quick
    out = bench.main(["--quick", "--quiet", "--via-api", "--work", str(work), "--report", str(work / "api.md")])
    state = out["bench"]
    # the base model of the first run is kept (same settings), and served
    assert state["done"]["base"] == first["bench"]["done"]["base"]
    labels_file = Path(state["done"]["labels"]["file"])
    assert labels_file.name == "api_labels.json" and state["done"]["labels"]["via_api"] is True
    labels = json.loads(labels_file.read_text())["database"]
    # every labelled video was a job and was reviewed; each names its job
    assert len(labels) == 13 and all(entry.get("job") for entry in labels.values())
    truth_db = json.loads((work / "truth_labels.json").read_text())["database"]
    for vid, entry in truth_db.items():
        assert [a["label"] for a in labels[vid]["annotations"]] == [a["label"] for a in entry["annotations"]]
        assert [x for a in labels[vid]["annotations"] for x in a["segment"]] == pytest.approx(
            [x for a in entry["annotations"] for x in a["segment"]])
    assert sum(state["review_verdicts"].values()) >= 9  # the 9 threat videos' segments at least
    assert Path(out["result"]["out"]).name == "adapt_run_api"
    assert "POST /v1/jobs/{id}/review" in out["report"].read_text()
