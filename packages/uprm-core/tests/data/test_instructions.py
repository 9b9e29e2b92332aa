"""The identify / locate / attribute instruction builder (docs/formats.md)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from uprm.data import (
    AnnotationError,
    VideoAnnotation,
    assign_split,
    attribute_answer,
    build_instructions,
    format_seconds,
    locate_answer,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5.5, "5.5"),
        (8.0, "8"),
        (8, "8"),
        (0.0, "0"),
        (0.04, "0"),
        (0.05, "0.1"),
        (12.25, "12.3"),
        (59.96, "60"),
        (100.0, "100"),
    ],
)
def test_format_seconds(value, text):
    assert format_seconds(value) == text


def test_answers():
    assert locate_answer([(5.5, 8.0)]) == "The threat occurs between 5.5 and 8 seconds."
    assert locate_answer([(3, 5), (9, 12)]) == "The threat occurs between 3 and 5 seconds and between 9 and 12 seconds."
    assert locate_answer([]) == "There is no threat in the video."
    assert attribute_answer(["The man wanted the bike."]) == "The threat is attributed to the man wanted the bike."
    assert (
        attribute_answer(["CCTV shows a fight", "a quarrel."])
        == "The threat is attributed to CCTV shows a fight; a quarrel."
    )
    with pytest.raises(ValueError, match="no cause"):
        attribute_answer([" "])


def _anns():
    return [
        VideoAnnotation("Abuse028_x264", "Abuse", [(5.5, 8.0)], duration=60.0),
        VideoAnnotation(
            "Stealing001", "Stealing", [(2.0, 4.0), (9.0, 12.0)], causes=["A thief wants the bag."], duration=20.0
        ),
        VideoAnnotation("Normal_Videos_003_x264", "Normal", [], duration=30.0),
    ]


def test_records_follow_the_documented_layout():
    records = build_instructions(_anns(), seed=3)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == [
        "Abuse028_x264/identify",
        "Abuse028_x264/locate",
        "Normal_Videos_003_x264/identify",
        "Normal_Videos_003_x264/locate",
        "Stealing001/attribute",
        "Stealing001/identify",
        "Stealing001/locate",
    ]
    loc = by_id["Abuse028_x264/locate"]
    assert loc["video"] == "Abuse028_x264.mp4" and loc["task"] == "locate"
    assert loc["conversations"] == [
        {"from": "human", "value": "<video>\nPlease locate the exact timestamps where the threats occur"},
        {"from": "gpt", "value": "The threat occurs between 5.5 and 8 seconds."},
    ]
    assert loc["video_id"] == "Abuse028_x264" and loc["category"] == "Abuse" and loc["duration"] == 60.0
    assert loc["segments"] == [[5.5, 8.0]] and loc["window"] == [0.0, 60.0]
    assert loc["split"] == assign_split("Abuse028_x264", 3)
    assert by_id["Stealing001/identify"]["conversations"][1]["value"] == "Yes, there exists a threat."
    assert by_id["Stealing001/identify"]["conversations"][0]["value"] == (
        "<video>\nPlease determine whether there exist threats in the video"
    )
    att = by_id["Stealing001/attribute"]
    assert (
        att["conversations"][0]["value"]
        == "<video>\nPlease give me a detailed explanation of the root causes of the threat"
    )
    assert att["conversations"][1]["value"] == "The threat is attributed to a thief wants the bag."
    assert att["causes"] == ["A thief wants the bag."]
    neg = by_id["Normal_Videos_003_x264/locate"]
    assert neg["conversations"][1]["value"] == "There is no threat in the video."
    assert neg["category"] == "Normal" and neg["segments"] == []
    assert by_id["Normal_Videos_003_x264/identify"]["conversations"][1]["value"] == "No, there is no threat."
    assert "causes" not in neg
    counts = records.counts()
    assert counts["task"] == Counter({"identify": 3, "locate": 3, "attribute": 1})


def test_tasks_negatives_and_ratio():
    records = build_instructions(_anns(), tasks=["identify"], negatives=False)
    assert [r["id"] for r in records] == ["Abuse028_x264/identify", "Stealing001/identify"]
    assert records.skipped == [("Normal_Videos_003_x264", "normal video (negatives off)")]
    many = _anns() + [VideoAnnotation(f"Normal_{i:03d}", "Normal", duration=5.0) for i in range(10)]
    capped = build_instructions(many, tasks=["identify"], negative_ratio=1.5)
    assert sum(r["category"] == "Normal" for r in capped) == 3  # 1.5 × 2 threat videos
    again = build_instructions(many, tasks=["identify"], negative_ratio=1.5)
    assert [r["id"] for r in capped] == [r["id"] for r in again]
    with pytest.raises(ValueError, match="unknown task"):
        build_instructions(_anns(), tasks=["describe"])


def test_splits_are_deterministic_and_respect_fractions():
    ids = [f"video{i:04d}" for i in range(2000)]
    splits = [assign_split(v, seed=0) for v in ids]
    assert splits == [assign_split(v, seed=0) for v in ids]
    counts = Counter(splits)
    assert 1520 < counts["train"] < 1680 and 140 < counts["val"] < 260 and 140 < counts["test"] < 260
    other = [assign_split(v, seed=1) for v in ids]
    assert sum(a != b for a, b in zip(splits, other)) > 300
    assert {assign_split(v, 0, (0, 0, 1)) for v in ids[:50]} == {"test"}
    # a split given by the source wins unless asked otherwise
    ann = VideoAnnotation("x", "Abuse", [(0, 1)], duration=2.0, split="val")
    assert {r["split"] for r in build_instructions([ann], splits=(1, 0, 0))} == {"val"}
    assert {r["split"] for r in build_instructions([ann], splits=(1, 0, 0), source_split=False)} == {"train"}


def test_windows_make_relative_segments_and_negative_windows():
    ann = VideoAnnotation("Fight", "Fighting", [(12.0, 14.0), (19.5, 23.0)], causes=["a push"], duration=25.0)
    records = build_instructions([ann], window_s=10.0)
    locate = {r["window"][0]: r for r in records if r["task"] == "locate"}
    assert sorted(locate) == [0.0, 10.0, 20.0]
    assert locate[0.0]["conversations"][1]["value"] == "There is no threat in the video."
    assert locate[0.0]["category"] == "Normal" and locate[0.0]["source_category"] == "Fighting"
    assert locate[10.0]["id"] == "Fight@10-20/locate" and locate[10.0]["window"] == [10.0, 20.0]
    assert locate[10.0]["conversations"][1]["value"] == (
        "The threat occurs between 2 and 4 seconds and between 9.5 and 10 seconds."
    )
    assert locate[20.0]["segments"] == [[0.0, 3.0]] and locate[20.0]["window"] == [20.0, 25.0]
    assert [r["window"][0] for r in records if r["task"] == "attribute"] == [10.0, 20.0]
    # a sliver shorter than min_overlap_s does not make a window a threat
    strict = build_instructions([ann], window_s=10.0, min_overlap_s=1.0, tasks=["locate"])
    assert [r["segments"] for r in strict] == [[], [[2.0, 4.0]], [[0.0, 3.0]]]


def test_written_files_use_paths_relative_to_the_json(tmp_path, write_video):
    videos = tmp_path / "data" / "videos"
    write_video(videos / "Abuse" / "Abuse028_x264.mp4", num_frames=10, fps=5.0)
    write_video(videos / "Normal" / "Normal_Videos_003_x264.mp4", num_frames=10, fps=5.0)
    kp = tmp_path / "data" / "keypoints"
    kp.mkdir()
    (kp / "Abuse028_x264.json").write_text("[]")
    out = tmp_path / "out" / "ucf.json"
    records = build_instructions(_anns(), out, videos=videos, keypoints=kp)
    assert records.files == {"all": out}
    assert records.skipped == [("Stealing001", "no video file")]
    written = json.loads(out.read_text())
    assert written == [dict(r) for r in records]
    abuse = next(r for r in written if r["id"] == "Abuse028_x264/identify")
    assert abuse["video"] == "../data/videos/Abuse/Abuse028_x264.mp4"
    assert (out.parent / abuse["video"]).is_file()
    assert abuse["keypoints"] == "../data/keypoints/Abuse028_x264.json"
    assert "keypoints" not in next(r for r in written if r["video_id"].startswith("Normal"))
    with pytest.raises(AnnotationError, match="no video file for 'Stealing001'"):
        build_instructions(_anns(), out, videos=videos, missing="error")


def test_folder_output_writes_one_file_per_split(tmp_path):
    anns = [VideoAnnotation(f"Theft{i:03d}", "Theft", [(1.0, 2.0)], duration=5.0) for i in range(40)]
    records = build_instructions(anns, tmp_path / "instructions", name="cuva", tasks=["identify", "locate"])
    assert set(records.files) == {"train", "val", "test"}
    total = 0
    for split, path in records.files.items():
        assert path == tmp_path / "instructions" / f"cuva_{split}.json"
        items = json.loads(path.read_text())
        assert {r["split"] for r in items} == {split}
        total += len(items)
    assert total == 80
    assert not list((tmp_path / "instructions").glob(".*"))  # no temporary files left behind


def test_a_duplicated_video_is_an_error():
    with pytest.raises(AnnotationError, match="annotated twice"):
        build_instructions([VideoAnnotation("a", "Abuse", [(0, 1)]), VideoAnnotation("a", "Normal")])


SITE = """\
categories:
  - name: Trespassing
    description: Someone climbs over the fence into the yard.
    severity: high
    causes: [a person climbing over the fence, a person jumping the gate]
    aliases: [Intrusion]
"""


def _site_annotations() -> list[VideoAnnotation]:
    return [VideoAnnotation("yard1", "Trespassing", [(2.0, 5.0)], duration=10.0),  # no cause
            VideoAnnotation("yard2", "intrusion", [(1.0, 3.0)], causes=["A man climbs the fence."], duration=10.0),
            VideoAnnotation("yard3", "Normal", [], duration=10.0)]


def test_a_taxonomy_gives_attribute_answers_only_where_the_labels_have_no_cause(tmp_path):
    from uprm.taxonomy import load_taxonomy

    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    plain = build_instructions(_site_annotations())
    assert "yard1/attribute" not in {r["id"] for r in plain}  # no cause, no taxonomy: no attribute record
    records = {r["id"]: r for r in build_instructions(_site_annotations(), taxonomy=path)}
    answer = records["yard1/attribute"]["conversations"][1]["value"]
    assert answer in {attribute_answer([c]) for c in load_taxonomy(path).causes("Trespassing")}
    assert records["yard1/attribute"]["cause_source"] == "taxonomy" and "causes" not in records["yard1/attribute"]
    # the labels' own cause wins, and every other record is as without a taxonomy
    assert records["yard2/attribute"]["conversations"][1]["value"] == "The threat is attributed to a man climbs the fence."
    assert [r for r in plain] == [r for r in records.values() if r["id"] != "yard1/attribute"]
    # the phrasing is the same for every window of a video, and from the seed and the video id only
    windowed = build_instructions(_site_annotations()[:1], taxonomy=path, window_s=3.0, stride_s=1.0)
    answers = {r["conversations"][1]["value"] for r in windowed if r["task"] == "attribute"}
    assert answers == {answer}
    assert build_instructions(_site_annotations()[:1], taxonomy=load_taxonomy(path))[-1] == records["yard1/attribute"]


def test_a_category_the_taxonomy_does_not_have_is_named(tmp_path):
    from uprm.taxonomy import UnknownCategoryError

    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    anns = [*_site_annotations(), VideoAnnotation("dock", "Loitering", [(0.0, 4.0)], duration=8.0)]
    with pytest.raises(UnknownCategoryError, match=r"video 'dock': label 'Loitering' is not a category") as caught:
        build_instructions(anns, tmp_path / "out", taxonomy=path)
    assert str(path) in str(caught.value) and not (tmp_path / "out").exists()  # nothing written
