"""``uprm eval --taxonomy FILE``: every ground-truth label is checked against the site's
categories (an unknown one stops the evaluation, naming it and the files), and the
per-category tables list the categories in the taxonomy's order — only those the ground
truth has, under the names it gives them."""

from __future__ import annotations

import json

import pytest

from uprm.taxonomy import UnknownCategoryError

from .conftest import invoke
from .test_scoring import GT, PERFECT, write_gt, write_predictions

#: Fighting before Arson (not the names' order); Shooting is not in the ground truth
SITE = """\
categories:
  - name: Fighting
    description: People exchange blows.
    severity: high
    causes: [two people exchanging blows]
  - name: Shooting
    description: Someone fires a gun.
    severity: critical
    causes: [a person firing a gun]
  - name: Arson
    description: Someone sets fire to property.
    severity: critical
    causes: [a person setting fire to a car]
    aliases: [fire setting]
"""


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    return path


def test_per_category_tables_follow_the_taxonomy_and_list_only_the_ground_truths(tmp_path, site):
    from uprm.evaluation import score_predictions

    preds = write_predictions(tmp_path / "predictions.json", PERFECT)
    gt = write_gt(tmp_path / "gt.json", {**GT, "v2": (8.0, "fire-setting", GT["v2"][2])})  # an alias, kept as given
    plain = score_predictions(preds, gt, sbert=False, bootstrap=0)
    assert list(plain["per_category"]) == ["Fighting", "Normal", "fire-setting"]  # by name without a taxonomy
    assert "taxonomy" not in plain["settings"]
    report = score_predictions(preds, gt, tmp_path / "out", sbert=False, bootstrap=0, taxonomy=site)
    assert list(report["per_category"]) == ["Fighting", "fire-setting", "Normal"]  # Shooting: not in the truth
    assert report["per_category"] == plain["per_category"] and report["settings"]["taxonomy"] == str(site)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| Approach | Fighting | fire-setting | Normal |" in md


def test_eval_refuses_a_ground_truth_label_the_taxonomy_does_not_have(tmp_path, site):
    from uprm.evaluation import score_predictions

    preds = write_predictions(tmp_path / "predictions.json", PERFECT)
    gt = write_gt(tmp_path / "gt.json", {**GT, "v3": (5.0, "Loitering", [(1.0, 2.0)])})
    with pytest.raises(UnknownCategoryError) as caught:
        score_predictions(preds, gt, sbert=False, taxonomy=site)
    assert caught.value.label == "Loitering" and caught.value.taxonomy == str(site)
    result = invoke("eval", "--predictions", preds, "--ground-truth", gt, "--taxonomy", site, "--no-sbert", ok=False)
    assert result.exit_code == 1
    assert "label 'Loitering' is not a category of the taxonomy" in result.output
    assert f"{gt}: video 'v3'" in result.output and str(site) in result.output and "Traceback" not in result.output
    assert score_predictions(preds, gt, sbert=False, bootstrap=0)["per_category"]["Loitering"]  # no taxonomy: no check


def test_a_model_evaluation_checks_the_labels_before_the_model_loads(tmp_path, site):
    from uprm.data import make_record
    from uprm.evaluation import evaluate

    data = tmp_path / "test.json"
    data.write_text(json.dumps([make_record("a/identify", "identify", "Is there a threat?", "Yes, there exists a "
                                            "threat.", video="a.mp4", video_id="a", category="Loitering",
                                            segments=[[1.0, 2.0]], duration=4.0)]))
    with pytest.raises(UnknownCategoryError, match=rf"{data}: video 'a': label 'Loitering'"):
        evaluate(tmp_path / "no-checkpoint", data, taxonomy=site)  # the checkpoint is never looked at
