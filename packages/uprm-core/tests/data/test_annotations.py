"""Readers of the real annotation formats, on small files in the same layouts."""

from __future__ import annotations

import json

import pytest

import uprm
from uprm.data import (
    AnnotationError,
    VideoAnnotation,
    parse_mmss_moments,
    read_activitynet,
    read_activitynet_predictions,
    read_cuva,
    read_cuva_categories,
    read_uca,
    read_ucf_crime,
    write_activitynet,
    write_activitynet_predictions,
)

UCF_LINES = (
    "Abuse028_x264.mp4  Abuse  165  240  -1  -1\n"
    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
    "\n"
    "Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1\n"  # 7 columns, class folder
    "Explosion002_x264\tExplosion\t1500   2100 4500\t4800 \t\n"  # no .mp4, tabs, trailing
    "Burglary005_x264.mp4   Burglary  4710  5040  -1  -1   \n"
)


def test_ucf_crime_variants(tmp_path):
    path = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    path.write_text(UCF_LINES)
    anns = read_ucf_crime(path)
    assert [a.video_id for a in anns] == [
        "Abuse028_x264",
        "Normal_Videos_003_x264",
        "Arson022_x264",
        "Explosion002_x264",
        "Burglary005_x264",
    ]
    by_id = {a.video_id: a for a in anns}
    assert by_id["Abuse028_x264"].category == "Abuse"
    assert by_id["Abuse028_x264"].segments == [(5.5, 8.0)]
    assert by_id["Normal_Videos_003_x264"].category == "Normal"
    assert by_id["Normal_Videos_003_x264"].segments == [] and not by_id["Normal_Videos_003_x264"].is_threat
    arson = by_id["Arson022_x264"]
    assert arson.segments == [(3500 / 30, 4000 / 30)]
    assert arson.duration == pytest.approx(8640 / 30) and arson.extra["num_frames"] == 8640
    assert arson.video == "Arson/Arson022_x264.mp4"
    assert by_id["Explosion002_x264"].segments == [(50.0, 70.0), (150.0, 160.0)]
    assert all(a.split == "test" for a in anns)
    # another frame rate
    assert read_ucf_crime(path, fps=25.0)[0].segments == [(6.6, 9.6)]


def test_ucf_crime_prefers_the_video_files_fps(tmp_path, write_video):
    path = tmp_path / "ann.txt"
    path.write_text("Abuse028_x264.mp4  Abuse  20  40  -1  -1\nRobbery001_x264.mp4  Robbery  3  6  -1  -1\n")
    write_video(tmp_path / "videos" / "Abuse" / "Abuse028_x264.mp4", num_frames=50, fps=10.0)
    anns = read_ucf_crime(path, videos=tmp_path / "videos")
    abuse, robbery = anns
    assert abuse.segments == [(2.0, 4.0)] and abuse.extra["fps_source"] == "video"
    assert abuse.duration == pytest.approx(5.0)
    assert abuse.video.endswith("videos/Abuse/Abuse028_x264.mp4")
    assert robbery.segments == [(0.1, 0.2)] and robbery.extra["fps_source"] == "default"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Abuse028_x264.mp4 Abuse 165 240 -1", r"ann.txt:2: expected 6 columns .* got 5"),
        ("Abuse028_x264.mp4 Abuse 165 abc -1 -1", r"ann.txt:2: column 4 must be a number, got 'abc'"),
        ("Abuse028_x264.mp4 Abuse 165 -1 -1 -1", r"ann.txt:2: segment 1 has one end missing"),
        ("Abuse028_x264.mp4 Abuse 240 165 -1 -1", r"ann.txt:2: segment 1 ends \(165\) before it starts \(240\)"),
        ("Normal_Videos_001_x264.mp4 Normal 1 2 -1 -1", r"ann.txt:2: a Normal video cannot have threat segments"),
        ("Fighting003_x264 Fighting 1 2 -1 -1", r"ann.txt:2: video 'Fighting003_x264' is listed twice \(also line 1\)"),
    ],
)
def test_ucf_crime_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "ann.txt"
    path.write_text("Fighting003_x264.mp4 Fighting 10 20 -1 -1\n" + line + "\n")
    with pytest.raises(AnnotationError, match=message) as info:
        read_ucf_crime(path)
    assert info.value.line == 2 and isinstance(info.value, uprm.UPRMError)


def test_uca_json_and_text(tmp_path):
    data = {
        "Abuse037_x264": {
            "duration": 59.88,
            "timestamps": [[1.2, 8.2], [8.4, 25.3]],
            "sentences": ["A white car stops.", " A man hits a woman. "],
        },
        "Normal_Videos_015_x264": {"duration": 30.0, "timestamps": [[0.0, 5.0]], "sentences": ["People walk."]},
    }
    path = tmp_path / "UCFCrime_Train.json"
    path.write_text(json.dumps(data))
    abuse, normal = read_uca(path)
    assert abuse.video_id == "Abuse037_x264" and abuse.category == "Abuse"
    assert abuse.segments == [(1.2, 8.2), (8.4, 25.3)]
    assert abuse.descriptions == ["A white car stops.", "A man hits a woman."]
    assert abuse.duration == 59.88 and abuse.split == "train"
    assert (
        normal.category == "Normal"
        and normal.segments == []
        and normal.extra["events"][0]["sentence"] == "People walk."
    )

    text = tmp_path / "UCFCrime_Test.txt"
    text.write_text("Abuse037_x264 00:01.2 00:08.2 ##A white car stops.\nAbuse037_x264 01:02.5 01:10 ##A man runs.\n")
    (ann,) = read_uca(text)
    assert ann.segments == [(1.2, 8.2), (62.5, 70.0)] and ann.split == "test"
    assert ann.descriptions == ["A white car stops.", "A man runs."]


def test_uca_errors(tmp_path):
    path = tmp_path / "UCFCrime_Val.json"
    path.write_text(json.dumps({"Abuse001_x264": {"timestamps": [[1, 2]], "sentences": ["a", "b"]}}))
    with pytest.raises(AnnotationError, match=r"UCFCrime_Val.json: Abuse001_x264: 1 timestamps but 2 sentences"):
        read_uca(path)
    path.write_text('{"Abuse001_x264": {"timestamps": [[1, 2]],\n "sentences": ["a"],}}')
    with pytest.raises(AnnotationError, match=r"UCFCrime_Val.json:2: invalid JSON"):
        read_uca(path)
    text = tmp_path / "uca.txt"
    text.write_text("Abuse001_x264 00:01 00:02 ##ok\nAbuse001_x264 00:01 ##missing the end\n")
    with pytest.raises(AnnotationError, match=r"uca.txt:2: expected 'video start end ##sentence'"):
        read_uca(text)


def test_mmss_moments():
    assert parse_mmss_moments("[0052,0114][0118,0144]") == [(52.0, 74.0), (78.0, 104.0)]
    assert parse_mmss_moments(" [0001, 0005] ") == [(1.0, 5.0)]
    assert parse_mmss_moments("【0100，0130】") == [(60.0, 90.0)]
    assert parse_mmss_moments("[010203,010210]") == [(3723.0, 3730.0)]
    for bad in ("0052,0114", "[0052]", "[0075,0080]", "[0114,0052]", "[52,114]", "[0052,0114] extra"):
        with pytest.raises(ValueError):
            parse_mmss_moments(bad)


def _cuva_sheet(path, rows):
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "CUVA"
    ws.append(["video_id", "X1", "X2 - reason", "X2 - result", "X3 - moment", "X3 - description", "X4 - key sentences"])
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def test_cuva_sheet(tmp_path):
    path = _cuva_sheet(
        tmp_path / "CUVA.xlsx",
        [
            [
                "00001",
                "[7-1,5]",
                "The man wanted to steal the bike.",
                "The bike was stolen.",
                "[0052,0114][0118,0144]",
                "[A man walks to the bike][He rides away]",
                "[steal][bike]",
            ],
            [None, None, None, None, None, None, None],  # an empty row is skipped
            ["00002.mp4", "[ 1-2 , 3 ]", "[A quarrel about money]", "", "[0003,0010]", "", None],
        ],
    )
    first, second = read_cuva(path)
    assert first.video_id == "00001" and first.category == "Theft"
    assert first.extra["subclass"] == "7-1" and first.extra["importance"] == 5
    assert first.segments == [(52.0, 74.0), (78.0, 104.0)]
    assert first.causes == ["The man wanted to steal the bike."]
    assert first.results == ["The bike was stolen."]
    assert first.descriptions == ["A man walks to the bike", "He rides away"]
    assert first.extra["key_sentences"] == ["steal", "bike"]
    assert second.video_id == "00002" and second.category == "Fighting" and second.causes == ["A quarrel about money"]
    assert second.video == "00002.mp4"


def test_cuva_sheet_errors_name_the_row_and_column(tmp_path):
    good = ["00001", "[7-1,5]", "why", "how", "[0052,0114]", "", ""]
    path = _cuva_sheet(tmp_path / "bad.xlsx", [good, ["00002", "[7-1,5]", "why", "how", "[0052,0175]", "", ""]])
    with pytest.raises(AnnotationError, match=r"bad.xlsx: sheet 'CUVA' row 3, column X3 - moment: bad time '0175'"):
        read_cuva(path)
    _cuva_sheet(path, [["00003", "[12-1,5]", "why", "how", "[0052,0114]", "", ""]])
    with pytest.raises(AnnotationError, match=r"row 2, column X1: unknown CUVA class '12-1'"):
        read_cuva(path)
    _cuva_sheet(path, [["00003", "theft", "why", "how", "[0052,0114]", "", ""]])
    with pytest.raises(AnnotationError, match=r"X1 must look like \[7-1,5\]"):
        read_cuva(path)


def test_cuva_category_file(tmp_path):
    cats = tmp_path / "Category.txt"
    cats.write_text("1-Fighting\n1-1 Street\n7-Theft\n7-1 Residential\n7-2 Vehicle\n")
    names = read_cuva_categories(cats)
    assert names == {
        "1": "Fighting",
        "1-1": "Fighting/Street",
        "7": "Theft",
        "7-1": "Theft/Residential",
        "7-2": "Theft/Vehicle",
    }
    path = _cuva_sheet(tmp_path / "c.xlsx", [["00001", "[7-2,1]", "why", "how", "[0000,0010]", "", ""]])
    (ann,) = read_cuva(path, categories=cats)
    assert ann.category == "Theft" and ann.extra["subclass"] == "7-2"


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_cuva_instruction_rows(tmp_path, suffix):
    rows = [
        {
            "instruction": "Is there any unusual event?",
            "visual_input": "00001.mp4",
            "output": "Yes",
            "task": "Detection",
            "ID": 1,
        },
        {"instruction": "Classify", "visual_input": "00001.mp4", "output": "[7]", "task": "Classification", "ID": 2},
        {
            "instruction": "Why?",
            "visual_input": "00001.mp4",
            "output": "The man wanted the bike.",
            "task": "Cause",
            "ID": 3,
        },
        {
            "instruction": "Effect?",
            "visual_input": "00001.mp4",
            "output": "The bike is gone.",
            "task": "Result",
            "ID": 4,
        },
        {"instruction": "When?", "visual_input": "00001.mp4", "output": "[0052,0114]", "task": "Timestamp", "ID": 5},
        {
            "instruction": "Describe",
            "visual_input": "00001.mp4",
            "output": "A man takes a bike.",
            "task": "Description",
            "ID": 6,
        },
        {
            "instruction": "When?",
            "visual_input": "00002.mp4",
            "output": "from 3.5 to 9 seconds",
            "task": "Timestamp",
            "ID": 7,
        },
    ]
    path = tmp_path / f"cuva{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        import csv

        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    first, second = read_cuva(path)
    assert first.video_id == "00001" and first.video == "00001.mp4"
    assert first.category == "Theft" and first.causes == ["The man wanted the bike."]
    assert first.results == ["The bike is gone."] and first.descriptions == ["A man takes a bike."]
    assert first.segments == [(52.0, 74.0)] and first.extra["detection"] == "Yes"
    assert second.segments == [(3.5, 9.0)]


def test_cuva_instruction_rows_bad_line(tmp_path):
    path = tmp_path / "cuva.jsonl"
    good = {"visual_input": "00001.mp4", "output": "x", "task": "Cause"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task": "Guess"}) + "\n")
    with pytest.raises(AnnotationError, match=r"cuva.jsonl:2: unknown task 'Guess'"):
        read_cuva(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({"visual_input": "00001.mp4", "task": "Cause"}) + "\n")
    with pytest.raises(AnnotationError, match=r"cuva.jsonl:2: missing field 'output'"):
        read_cuva(path)


def test_activitynet_round_trip(tmp_path):
    anns = [
        VideoAnnotation("v1", "Theft", [(1.0, 2.5), (4.0, 6.0)], causes=["greed"], duration=10.0, split="val"),
        VideoAnnotation("v2", "Normal", [], duration=5.0, split="train"),
    ]
    path = tmp_path / "gt.json"
    write_activitynet(anns, path)
    raw = json.loads(path.read_text())
    assert raw["database"]["v1"]["annotations"][0] == {"segment": [1.0, 2.5], "label": "Theft"}
    assert raw["database"]["v1"]["subset"] == "validation"
    back = read_activitynet(path)
    assert [(a.video_id, a.category, a.segments, a.duration, a.split, a.causes) for a in back] == [
        ("v1", "Theft", [(1.0, 2.5), (4.0, 6.0)], 10.0, "val", ["greed"]),
        ("v2", "Normal", [], 5.0, "train", []),
    ]
    preds = tmp_path / "pred.json"
    write_activitynet_predictions(
        [("v1", 1.0, 2.0, 0.9), {"video_id": "v2", "start": 0, "end": 1, "score": 0.1}], preds
    )
    assert read_activitynet_predictions(preds) == [("v1", 1.0, 2.0, 0.9), ("v2", 0.0, 1.0, 0.1)]
    assert read_activitynet_predictions(preds, labels=True)[0] == ("v1", 1.0, 2.0, 0.9, "Anomaly")


def test_activitynet_errors(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"database": {"v1": {"annotations": [{"segment": [1.0]}]}}}))
    with pytest.raises(
        AnnotationError, match=r"gt.json: database.v1.annotations\[0\]: 'segment' must be \[start, end\]"
    ):
        read_activitynet(path)
    path.write_text(json.dumps({"results": {"v1": [{"segment": [0, 1], "score": "high"}]}}))
    with pytest.raises(AnnotationError, match=r"results.v1\[0\]: 'score' must be a number"):
        read_activitynet_predictions(path)
    with pytest.raises(AnnotationError, match=r"nothing.json: no such file"):
        read_activitynet(tmp_path / "nothing.json")
