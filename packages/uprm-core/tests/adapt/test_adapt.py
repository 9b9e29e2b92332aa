"""`uprm adapt` / `uprm.adapt` (issue 23.4): a seconds-long adaptation of a tiny checkpoint
on a synthetic world's labels — the run's files, the split by video, the paired
comparison, the checkpoint left untouched, a killed run resumed, bad input named."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from uprm.adaptation.split import split_videos
from uprm.adaptation.verdict import BETTER, MIXED, NOT_MEASURED, SAME, WORSE, metric_verdict, row_verdict
from uprm.errors import ConfigError

from .conftest import SETTINGS, cli_flags, hashes, invoke


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _video_ids(records_file: Path) -> set[str]:
    return {r["video_id"] for r in _json(records_file)}


# --------------------------------------------------------------------------- the run
def test_adapt_writes_the_run_folder(run: Path):
    for name in ("adapt.json", "adapt.md", "split.json", "comparison.json", "comparison.md", "data/labels.json",
                 "data/held_out.json", "data/adapt_train.json", "data/adapt_test.json", "model/config.json",
                 "model/model.safetensors", "model/log.jsonl", "eval_base/report.json", "eval_base/videos.json",
                 "eval_adapted/report.json", "eval_adapted/videos.json"):
        assert (run / name).is_file(), name
    assert any((run / "cache").rglob("*.safetensors"))
    state = _json(run / "adapt.json")
    assert list(state["stages"]) == ["labels", "windows", "features", "train", "eval_base", "eval_adapted", "report"]
    assert [r["step"] for r in map(json.loads, (run / "model" / "log.jsonl").read_text().splitlines())] == [1, 2, 3, 4]
    report = _json(run / "eval_base" / "report.json")
    assert report["ci"]["fnr"] is not None  # intervals on
    # scored with the taxonomy: its categories, in its order (Normal last), not sorted by name
    assert report["settings"]["taxonomy"] == "uprm/taxonomies/ucf_crime.yaml"
    assert list(report["per_category"]) == ["Fighting", "Stealing", "Normal"]


def test_split_is_by_video_stratified_and_kept_apart_from_training(run: Path, labels: Path):
    split = _json(run / "split.json")
    everything = set(_json(labels)["database"])
    train, held = set(split["train"]), set(split["held_out"])
    assert not train & held and train | held == everything
    assert split["unit"] == "video" and split["seed"] == 0 and split["fraction"] == 0.3
    for category, videos in split["categories"].items():  # every category of >= 2 videos on both sides
        assert videos["train"] and videos["held_out"], category
    assert _video_ids(run / "data" / "adapt_train.json") == train  # no window of a held-out video is trained on
    assert _video_ids(run / "data" / "adapt_test.json") == held
    assert set(_json(run / "data" / "held_out.json")["database"]) == held
    # the same split from the same labels and seed, whatever their order
    categories = {c: v["train"] + v["held_out"] for c, v in split["categories"].items()}
    shuffled = {c: random.Random(7).sample(v, len(v)) for c, v in reversed(categories.items())}
    assert split_videos(shuffled, 0.3, seed=0).to_dict()["held_out"] == split["held_out"]


def test_comparison_pairs_the_two_models_by_held_out_video(run: Path):
    from uprm.evaluation import compare

    held = sorted(_json(run / "split.json")["held_out"])
    for name in ("eval_base", "eval_adapted"):
        assert sorted(v["video_id"] for v in _json(run / name / "videos.json")["videos"]) == held
    result = _json(run / "comparison.json")
    assert result["videos"] == len(held) and result["bootstrap"]["paired"] == "by video"
    assert (result["a"]["system"], result["b"]["system"]) == ("adapted", "base") and result["delta"] == "a - b"
    for key in ("fnr", "f2"):
        assert set(result["metrics"][key]) == {"a", "b", "delta", "ci", "p"}
    assert set(result["metrics"]["per_category"]) == {"Fighting", "Stealing", "Normal"}
    assert set(result["metrics"]["per_category"]["Fighting"]["fnr"]) == {"a", "b", "delta", "ci", "p"}
    # the same numbers `uprm eval compare` gives on the two evaluations
    again = compare(run / "eval_adapted", run / "eval_base", bootstrap=200, seed=0, names=("adapted", "base"))
    assert again["metrics"] == result["metrics"]


def test_adapt_md_gives_a_verdict_overall_and_per_category(run: Path):
    text = (run / "adapt.md").read_text(encoding="utf-8")
    words = (BETTER, SAME, WORSE, MIXED, NOT_MEASURED)
    state = _json(run / "adapt.json")
    assert state["verdicts"]["overall"]["verdict"] in words
    assert f"**Overall: {state['verdicts']['overall']['verdict']}**" in text
    for category in ("Fighting", "Stealing", "Normal"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {category} |"))
        assert row.rstrip(" |").endswith(state["verdicts"]["per_category"][category]["verdict"])
    assert "lower is better" in text and "split.json" in text


def test_checkpoint_files_are_untouched(run: Path, checkpoint: Path, checkpoint_hashes: dict[str, str]):
    assert hashes(checkpoint) == checkpoint_hashes
    assert _json(run / "model" / "train_config.json")["config"]["init"] == str(checkpoint.resolve())


def test_a_finished_run_is_kept_and_another_setting_is_refused(run: Path, world: Path, labels: Path,
                                                               checkpoint: Path):
    args = ["adapt", "--checkpoint", checkpoint, "--labels", labels, "--videos", world / "videos", "--keypoints",
            world / "keypoints", "--scene-graphs", world / "scene_graphs", "--out", run]
    before = (run / "model" / "model.safetensors").stat().st_mtime_ns
    again = invoke(*args, *cli_flags(SETTINGS))
    assert "train: done earlier, kept" in again.output
    assert (run / "model" / "model.safetensors").stat().st_mtime_ns == before
    other = invoke(*args, *cli_flags({**SETTINGS, "steps": 3}), ok=False)
    assert other.exit_code == 1 and "steps: 4 -> 3" in other.output and "adapt.json" in other.output


def test_a_killed_run_resumes_where_it_stopped(run: Path, world: Path, labels: Path, checkpoint: Path,
                                               checkpoint_hashes: dict[str, str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch):
    import torch
    from safetensors.torch import load_file

    import uprm
    import uprm.data.features.extract
    import uprm.evaluation.api

    out = tmp_path / "run"
    kwargs = {"videos": world / "videos", "keypoints": str(world / "keypoints"),
              "scene_graphs": str(world / "scene_graphs"), "quiet": True, "progress": False, **SETTINGS}

    def killed_at_step_3(_trainer, record):
        if record["step"] == 3:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        uprm.adapt(checkpoint, labels, out, callbacks=[killed_at_step_3], **kwargs)
    assert list(_json(out / "adapt.json")["stages"]) == ["labels", "windows", "features"]
    assert (out / "model" / "checkpoints" / "step-00000002").is_dir() and not (out / "eval_base").exists()

    # the second run continues: no feature extracted again, training from its step-2 checkpoint; it dies in eval
    def no_extraction(*args, **kwargs):
        raise AssertionError("the features were cached by the first run")

    real_evaluate = uprm.evaluation.api.evaluate

    def evaluate_dying_on(system):
        def evaluate(*args, **kwargs):
            if kwargs["system"] == system:
                raise RuntimeError(f"killed while evaluating {system}")
            return real_evaluate(*args, **kwargs)
        return evaluate

    monkeypatch.setattr(uprm.data.features.extract, "extract_features", no_extraction)
    monkeypatch.setattr(uprm.evaluation.api, "evaluate", evaluate_dying_on("adapted"))
    with pytest.raises(RuntimeError, match="killed while evaluating adapted"):
        uprm.adapt(checkpoint, labels, out, **kwargs)
    assert _json(out / "model" / "summary.json")["steps_this_session"] == 2
    assert list(_json(out / "adapt.json")["stages"])[-2:] == ["train", "eval_base"]

    # the third run only evaluates the adapted model and compares
    monkeypatch.setattr(uprm.evaluation.api, "evaluate", evaluate_dying_on("base"))
    result = uprm.adapt(checkpoint, labels, out, **kwargs)
    assert list(_json(out / "adapt.json")["stages"])[-2:] == ["eval_adapted", "report"]
    # it ends as the uninterrupted run did: the same model, the same comparison
    resumed, uninterrupted = (load_file(str(r / "model" / "model.safetensors")) for r in (out, run))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert result["comparison"]["metrics"] == _json(run / "comparison.json")["metrics"]
    assert result["verdict"] == _json(run / "adapt.json")["verdicts"]["overall"]["verdict"]
    assert hashes(checkpoint) == checkpoint_hashes


def test_a_threat_labelled_without_a_cause_is_attributed_with_the_taxonomys_phrasing(
        world: Path, labels: Path, checkpoint: Path, tmp_path: Path):
    from uprm.adaptation import AdaptSettings
    from uprm.adaptation.pipeline import Adaptation
    from uprm.taxonomy import load_taxonomy

    data = _json(labels)
    for item in data["database"].values():
        item.pop("causes", None)  # as a review or a labelling tool may leave them
    bare = tmp_path / "labels.json"
    bare.write_text(json.dumps(data))
    run = Adaptation(AdaptSettings(checkpoint=str(checkpoint), labels=str(bare), out=str(tmp_path / "run"),
                                   videos=str(world / "videos"), **SETTINGS), echo=None)
    run._open()
    run._labels()
    run._windows()  # the first two stages only: no model runs
    attribute = [r for f in ("adapt_train", "adapt_test") for r in _json(tmp_path / "run" / "data" / f"{f}.json")
                 if r["task"] == "attribute"]
    assert attribute and all(r["cause_source"] == "taxonomy" for r in attribute)
    phrasings = {c: load_taxonomy().causes(c) for c in ("Fighting", "Stealing")}
    assert all(any(p in r["conversations"][-1]["value"] for p in phrasings[r["category"]]) for r in attribute)


# --------------------------------------------------------------------------- bad input
def _adapt(checkpoint: Path, labels: Path, videos: Path, out: Path, *extra: object):
    result = invoke("adapt", "--checkpoint", checkpoint, "--labels", labels, "--videos", videos, "--out", out,
                    "--no-sbert", "--quiet", *extra, ok=False)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    return " ".join(result.output.split())


def test_a_labelled_video_without_a_file_is_named(world: Path, labels: Path, checkpoint: Path, tmp_path: Path):
    data = _json(labels)
    data["database"]["Ghost001_site"] = {"annotations": [{"segment": [1.0, 2.0], "label": "Fighting"}],
                                         "duration": 6.0}
    bad = tmp_path / "labels.json"
    bad.write_text(json.dumps(data))
    text = _adapt(checkpoint, bad, world / "videos", tmp_path / "run")
    assert str(bad) in text and "Ghost001_site" in text and "no file" in text


def test_a_label_not_in_the_taxonomy_is_named(world: Path, labels: Path, checkpoint: Path, tmp_path: Path):
    site = tmp_path / "site.yaml"
    site.write_text("categories:\n  - name: Fighting\n    description: people fight\n    severity: high\n"
                    "    causes: [a fight]\n")
    text = _adapt(checkpoint, labels, world / "videos", tmp_path / "run", "--taxonomy", site)
    assert "'Stealing'" in text and str(labels) in text and "not a category of the taxonomy" in text
    # a run that stopped at bad input is no run yet: fixed input into the same folder is not "another run"
    empty = tmp_path / "empty"
    empty.mkdir()
    text = _adapt(checkpoint, labels, empty, tmp_path / "run")
    assert "no file in" in text and "made differently" not in text


def test_a_folder_that_is_not_a_checkpoint_is_named(world: Path, labels: Path, tmp_path: Path):
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    text = _adapt(empty, labels, world / "videos", tmp_path / "run")
    assert str(empty) in text and "not a checkpoint" in text


def test_the_run_folder_may_not_lie_inside_the_checkpoint(world: Path, labels: Path, checkpoint: Path,
                                                          checkpoint_hashes: dict[str, str]):
    text = _adapt(checkpoint, labels, world / "videos", checkpoint / "run")
    assert "inside the checkpoint" in text
    assert hashes(checkpoint) == checkpoint_hashes


def test_help_explains_the_run():
    result = invoke("adapt", "--help")
    text = " ".join(result.output.split())
    for words in ("BY VIDEO", "RUN/split.json", "RUN/comparison.json", "RUN/adapt.md", "never written to",
                  "lower is better", "--held-out", "default: 0.3", "--steps", "default: 300"):
        assert words in text, words


def test_uprm_adapt_is_the_python_api():
    import uprm
    import uprm.adaptation

    assert uprm.adapt is uprm.adaptation.adapt and "adapt" in dir(uprm)


# --------------------------------------------------------------------------- the split, the verdicts
def test_split_holds_out_a_share_of_each_category_and_keeps_a_lone_video_in_training():
    categories = {"Fighting": [f"F{i}" for i in range(10)], "Stealing": ["S1", "S2", "S3", "S4"], "Trespassing": ["T1"]}
    split = split_videos(categories, 0.3, seed=0)
    assert {c: len(v["held_out"]) for c, v in split.categories.items()} == {"Fighting": 3, "Stealing": 1,
                                                                           "Trespassing": 0}
    assert split.categories["Trespassing"]["train"] == ["T1"]
    assert len(split.notes) == 1 and "Trespassing" in split.notes[0] and "kept for training" in split.notes[0]
    assert split_videos(categories, 0.3, seed=0) == split  # seeded: reproducible
    assert split_videos(categories, 0.3, seed=1).held_out_videos != split.held_out_videos
    with pytest.raises(ConfigError, match="no video can be held out"):
        split_videos({"Fighting": ["F1"], "Normal": ["N1"]}, 0.3)


def test_metric_verdicts_read_the_interval_and_p_with_fnr_lower_is_better():
    def numbers(low, high, p=0.01):
        return {"a": 1.0, "b": 2.0, "delta": (low + high) / 2, "ci": [low, high], "p": p}

    assert metric_verdict(numbers(-30, -5), lower_is_better=True) == BETTER  # FNR went down
    assert metric_verdict(numbers(-30, -5), lower_is_better=False) == WORSE  # F2 went down
    assert metric_verdict(numbers(5, 30), lower_is_better=True) == WORSE
    assert metric_verdict(numbers(-10, 20), lower_is_better=False) == SAME  # the interval holds 0
    assert metric_verdict(numbers(5, 30, p=0.3), lower_is_better=False) == SAME  # too few videos to say
    assert metric_verdict({"a": None, "b": None, "delta": None, "ci": None, "p": None}, True) == NOT_MEASURED
    assert row_verdict([BETTER, SAME]) == BETTER and row_verdict([WORSE, SAME]) == WORSE
    assert row_verdict([BETTER, WORSE]) == MIXED and row_verdict([SAME, NOT_MEASURED]) == SAME
    assert row_verdict([NOT_MEASURED, NOT_MEASURED]) == NOT_MEASURED


def test_without_videos_the_folders_beside_the_labels_are_taken(tmp_path: Path):
    """``uprm adapt --checkpoint CK --labels LABELS --out RUN`` (the documented form) finds a
    synthetic world's videos and sidecars from where its labels file lies, and a folder
    given wins."""
    from uprm.adaptation import AdaptSettings

    world = tmp_path / "world"
    for name in ("annotations", "videos", "keypoints", "scene_graphs"):
        (world / name).mkdir(parents=True)
    labels = world / "annotations" / "activitynet.json"
    labels.write_text("{}")
    found = AdaptSettings(checkpoint="ck", labels=str(labels), out="run").resolved()
    assert (found.videos, found.keypoints, found.scene_graphs) == (
        str(world / "videos"), str(world / "keypoints"), str(world / "scene_graphs"))
    given = AdaptSettings(checkpoint="ck", labels=str(labels), out="run", videos=str(tmp_path)).resolved()
    assert (given.videos, given.keypoints) == (str(tmp_path), None)
    alone = tmp_path / "export" / "activitynet.json"
    alone.parent.mkdir()
    alone.write_text("{}")
    only = AdaptSettings(checkpoint="ck", labels=str(alone), out="run").resolved()
    assert (only.videos, only.keypoints) == (str(alone.parent), None)


def test_the_command_runs_without_videos(tmp_path: Path, monkeypatch):
    """The CLI form of DESIGN §4 (no --videos) reaches uprm.adapt with videos left to it."""
    import uprm.adaptation

    seen = {}
    monkeypatch.setattr(uprm.adaptation, "adapt", lambda *a, **k: seen.update(args=a, **k))
    labels = tmp_path / "labels.json"
    labels.write_text("{}")
    invoke("adapt", "--checkpoint", tmp_path, "--labels", labels, "--out", tmp_path / "run", "--no-sbert")
    assert seen["args"][1] == str(labels) and seen["videos"] is None
