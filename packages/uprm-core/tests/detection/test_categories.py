"""A detected threat's category and severity from the site taxonomy's cause phrasings:
the matching rules, the segment record, and ``uprm detect --taxonomy`` with a really
trained tiny checkpoint (its cause: "a person grabbing a bag")."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.detection.categories import category_of_cause, severity_fields
from uprm.detection.merge import DetectedSegment
from uprm.taxonomy import load_taxonomy


@pytest.fixture
def site(site_taxonomy):
    """The conftest's site taxonomy, loaded."""
    return load_taxonomy(site_taxonomy)


def test_a_cause_containing_one_categorys_phrasing_gets_that_category(site):
    assert category_of_cause("a person grabbing a bag", site).name == "BagSnatching"
    assert category_of_cause("A person, grabbing a BAG near the door.", site).name == "BagSnatching"  # words only
    assert severity_fields("a person climbing over the fence at night", site) == {
        "category": "Trespassing", "severity": "high"}
    # a phrasing inside a longer matched one counts as that one, not as a second category
    assert category_of_cause("a person climbing over the fence", site).name == "Trespassing"


def test_no_phrasing_or_phrasings_of_two_categories_leave_it_unknown(site):
    assert category_of_cause("a person grabbing a bagel", site) is None  # whole words only
    assert category_of_cause("a car passing", site) is None and category_of_cause("", site) is None
    assert category_of_cause("a person grabbing a bag; a person climbing over the fence", site) is None
    assert severity_fields("someone waving", site) == {}
    # the default taxonomy (UCF-Crime) has its own phrasings
    assert severity_fields("A person smashing a window.", load_taxonomy()) == {"category": "Vandalism",
                                                                              "severity": "low"}


def test_a_segment_records_category_and_severity_only_when_known():
    seg = DetectedSegment(1.0, 2.0, "a person grabbing a bag", 0.9)
    assert "category" not in seg.to_dict() and "severity" not in seg.to_dict()
    seg.category, seg.severity = "BagSnatching", "high"
    assert seg.to_dict()["category"] == "BagSnatching" and seg.to_dict()["severity"] == "high"


def _detect(*args):
    return CliRunner().invoke(cli, ["detect", *map(str, args), "--quiet", "--no-evidence"])


def test_detect_gives_segments_the_severity_of_the_site_taxonomy(detector, threat_data, tmp_path, site_taxonomy):
    video, out = threat_data / "videos" / "shop.mp4", tmp_path / "out"
    result = _detect(video, "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data)
    assert result.exit_code == 0, result.output
    [seg] = json.loads((out / "shop.json").read_text())["segments"]
    assert seg["cause"] == "a person grabbing a bag"
    assert "severity" not in seg and "category" not in seg  # not a cause phrasing of UCF-Crime's categories
    taxonomy = site_taxonomy
    result = _detect(video, "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data, "--taxonomy",
                     taxonomy)
    assert result.exit_code == 0, result.output
    assert "1 detected, 0 already done" in result.output  # another taxonomy: the video is done again
    data = json.loads((out / "shop.json").read_text())
    [seg] = data["segments"]
    assert (seg["category"], seg["severity"]) == ("BagSnatching", "medium")
    assert data["settings"]["taxonomy"] == str(taxonomy.resolve())
    result = _detect(video, "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data, "--taxonomy",
                     taxonomy)
    assert "0 detected, 1 already done" in result.output
