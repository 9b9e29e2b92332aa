"""Synthetic stage-1 instructions: three physical-world records per training video, with
the sidecars and window of the stage-2 records, and never a test video."""

from __future__ import annotations

import json

from uprm.ablation.stage1 import main, motion_caption, relation_caption


def test_three_records_per_training_video(world, files):
    summary = json.loads((world / "world.json").read_text())
    train = {v["video_id"]: v for v in summary["videos"] if v["split"] == "train"}
    records = json.loads(files["stage1"].read_text())
    assert len(records) == 3 * len(train)
    assert {r["video_id"] for r in records} == set(train)  # no test video
    assert [r["task"] for r in records[:3]] == ["pose", "relation", "background"]
    for rec in records:
        video = train[rec["video_id"]]
        assert rec["window"] == [0.0, video["duration"]] and rec["split"] == "train"
        for key in ("video", "keypoints", "scene_graph"):
            assert (files["stage1"].parent / rec[key]).resolve().is_file()
    background = next(r for r in records if r["task"] == "background")
    scene = train[background["video_id"]]["scene"].replace("_", " ")
    assert background["conversations"][1]["value"] == f"The scene is a {scene}."


def test_captions_and_the_command(world, tmp_path, capsys):
    assert motion_caption(["jogging", "walking", "fight"]) == "Jogging, walking and fight."
    assert motion_caption([]) == "Standing."
    graph = {"frames": [{"triplets": [{"subject": {"label": "person"}, "predicate": "near", "object": {"label": "car"}},
                                      {"subject": {"label": "person"}, "predicate": "near", "object": {"label": "car"}}],
                         "objects": []}]}
    assert relation_caption(graph) == "A person near a car."
    assert relation_caption({"frames": [{"objects": [{"label": "bin"}]}]}) == "No related objects; bin."
    assert main([str(world), str(tmp_path / "s1.json")]) == 0
    assert "s1.json (" in capsys.readouterr().out
