"""uprm.taxonomy: a site's categories from YAML (or the packaged UCF-Crime default), with
clear errors naming the file and the line."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from uprm.errors import AnnotationError, ConfigError
from uprm.taxonomy import (
    NORMAL,
    SEVERITIES,
    Category,
    Taxonomy,
    TaxonomyError,
    UnknownCategoryError,
    load_taxonomy,
    parse_taxonomy,
)

UCF_CRIME = ("Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents", "Robbery",
             "Shooting", "Shoplifting", "Stealing", "Vandalism")

def test_default_is_ucf_crime_and_normal_from_the_packaged_yaml():
    assert resources.files("uprm").joinpath("taxonomies/ucf_crime.yaml").is_file()  # package data
    tax = load_taxonomy()
    assert tax.names == (*UCF_CRIME, NORMAL)
    assert tax.threats == UCF_CRIME
    assert tax.name == "ucf-crime"
    for name in UCF_CRIME:
        assert tax.severity(name) in SEVERITIES[1:]
        assert tax.causes(name) and all(isinstance(c, str) and c for c in tax.causes(name))
        assert tax.get(name).description
    assert tax.severity(NORMAL) == "none" and tax.causes(NORMAL) == ()
    assert tax.severity("Shooting") == "critical" and tax.severity("Shoplifting") == "low"
    # the synthetic world's phrasings (uprm.synthetic.events) are among the causes
    assert "a car hitting a person crossing the road" in tax.causes("RoadAccidents")
    assert load_taxonomy() is tax  # read once


def test_labels_match_ignoring_case_spaces_hyphens_and_underscores():
    tax = load_taxonomy()
    assert tax.check("road accidents") == "RoadAccidents"
    assert tax.check("ROAD_ACCIDENTS") == "RoadAccidents"
    assert tax.check("shop-lifting") == "Shoplifting"
    assert "fighting" in tax and "Loitering" not in tax and 3 not in tax
    assert tax.get("Loitering") is None
    assert tax.is_threat("arson") and not tax.is_threat("normal")


def test_a_site_file_with_aliases_gets_normal_appended(site_taxonomy):
    path = site_taxonomy  # the conftest's
    tax = load_taxonomy(path)
    assert tax.names == ("Trespassing", "Fall", "BagSnatching", NORMAL)
    assert tax.threats == ("Trespassing", "Fall", "BagSnatching")
    assert tax.check("intrusion") == "Trespassing" and tax.check("Fence-Jump") == "Trespassing"
    assert tax.severity("fall") == "critical"
    assert tax.causes("Fall") == ("a worker slipping on a wet floor", "a person falling from a ladder")
    assert tax.source == str(path) and tax.name == "warehouse"
    assert load_taxonomy(tax) is tax


def test_the_list_layout_and_an_explicit_normal_keep_the_file_order(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("- name: Normal\n  description: quiet\n  severity: none\n"
                    "- name: Loitering\n  description: stays too long\n  severity: low\n  causes: [a person waiting]\n")
    tax = load_taxonomy(path)
    assert tax.names == (NORMAL, "Loitering") and tax.threats == ("Loitering",)
    assert tax.get("normal").description == "quiet"


def test_to_dict_round_trips_and_is_json():
    tax = load_taxonomy()
    data = json.loads(json.dumps(tax.to_dict()))
    assert data["name"] == "ucf-crime"
    assert [c["name"] for c in data["categories"]] == list(tax.names)
    assert set(data["categories"][0]) == {"name", "description", "severity", "causes", "aliases"}
    again = Taxonomy.from_dict(data)
    assert again == tax and again.names == tax.names
    assert Taxonomy.from_dict(data["categories"]).names == tax.names  # the list layout too


BAD = {
    "unknown field": ("""\
categories:
  - name: Trespassing
    description: climbs the fence
    severity: high
    causes: [a person climbing the fence]
    colour: red
""", 6, "categories[0].colour", "unknown field in category 'Trespassing'"),
    "repeated category": ("""\
- name: Trespassing
  description: climbs the fence
  severity: high
  causes: [a person climbing the fence]
- name: trespassing
  description: again
  severity: low
  causes: [x]
""", 5, "categories[1]", "category 'trespassing' is given twice"),
    "alias repeats a name": ("""\
- name: Fall
  description: d
  severity: low
  causes: [c]
- name: Slip
  description: d
  severity: low
  causes: [c]
  aliases: [fall]
""", 5, "categories[1]", "category 'fall' is given twice"),
    "missing field": ("""\
- name: Trespassing
  description: climbs the fence
  causes: [a person climbing the fence]
""", 1, "categories[0].severity", "misses the required field 'severity'"),
    "bad severity": ("""\
- name: Trespassing
  description: climbs the fence
  severity: severe
  causes: [a person climbing the fence]
""", 3, "categories[0].severity", "Input should be 'none', 'low', 'medium', 'high' or 'critical' (got 'severe')"),
    "numeric severity": ("""\
- name: Trespassing
  description: climbs the fence
  severity: 3
  causes: [a person climbing the fence]
""", 3, "categories[0].severity", "(got 3)"),
    "threat with severity none": ("""\
- name: Trespassing
  description: climbs the fence
  causes: [a person climbing the fence]
  severity: none
""", 4, "categories[0].severity", "'none' is Normal's severity"),
    "normal with a severity": ("""\
- name: Normal
  description: quiet
  severity: low
""", 3, "categories[0].severity", "Normal's severity must be 'none'"),
    "threat without causes": ("""\
- name: Trespassing
  description: climbs the fence
  severity: high
""", 1, "categories[0].causes", "a threat needs at least one cause phrasing"),
    "empty name": ("""\
- name: "  "
  description: d
  severity: high
  causes: [c]
""", 1, "categories[0].name", "must not be empty"),
    "key given twice": ("""\
- name: Trespassing
  description: d
  severity: low
  severity: high
  causes: [c]
""", 4, "categories[0].severity", "'severity' is given twice (first on line 3)"),
    "unknown top-level field": ("""\
name: site
cats: []
""", 2, "cats", "unknown field (a taxonomy has name, categories)"),
    "a category that is not a mapping": ("""\
categories:
  - Trespassing
""", 2, "categories[0]", "a category is a mapping"),
    "not YAML": ("categories: [\n", 2, None, "not valid YAML"),
    "no categories": ("categories: []\n", 1, None, "expected a non-empty list of categories"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_taxonomy_names_the_file_the_line_and_the_field(tmp_path, case):
    text, line, where, problem = BAD[case]
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, AnnotationError)  # both kinds of caller catch it
    assert err.path == str(path) and err.line == line and err.where == where
    assert str(err).startswith(f"{path}:{line}: ")
    assert problem in str(err)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TaxonomyError, match=r"nope\.yaml: no such file"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_check_names_the_label_where_it_was_and_the_categories(site_taxonomy):
    tax = parse_taxonomy(site_taxonomy.read_text(), "site.yaml")
    with pytest.raises(UnknownCategoryError) as info:
        tax.check("Loitering", "task 7 (video gate.mp4)", path="export.json")
    err = info.value
    assert isinstance(err, AnnotationError)
    assert err.label == "Loitering" and err.known == ("Trespassing", "Fall", "BagSnatching", NORMAL)
    message = str(err)
    assert message.startswith("export.json: task 7 (video gate.mp4): label 'Loitering' is not a category")
    assert "(site.yaml)" in message and "Trespassing, Fall, BagSnatching, Normal" in message
    with pytest.raises(UnknownCategoryError, match=r"^label 'x' is not"):
        tax.severity("x")


def test_a_program_built_taxonomy_is_checked_too():
    fall = Category(name="Fall", description="d", severity="low", causes=("c",))
    assert Taxonomy([fall]).names == ("Fall", NORMAL)
    with pytest.raises(TaxonomyError, match="given twice"):
        Taxonomy([fall, fall])
    with pytest.raises(TaxonomyError, match=r"categories\[0\]\.causes: a threat needs"):
        Taxonomy([Category(name="Fall", description="d", severity="low")])
