"""`uprm data …`: the commands write the instruction JSON and print counts."""

from __future__ import annotations

import json
import sys
import types

import click
import numpy as np
import pytest
from click.testing import CliRunner

from uprm.cli import cli


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["data", *args], catch_exceptions=False)


@pytest.fixture
def ucf(tmp_path, write_video):
    ann = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    ann.write_text(
        "Abuse028_x264.mp4  Abuse  20  40  -1  -1\n"
        "Arson/Arson022_x264.mp4 60 Arson 10 30 40 50\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
        "Robbery009_x264.mp4  Robbery  1  2  -1  -1\n"
    )
    videos = tmp_path / "Videos"
    write_video(videos / "Abuse" / "Abuse028_x264.mp4", num_frames=60, fps=10.0)
    write_video(videos / "Arson" / "Arson022_x264.mp4", num_frames=60, fps=10.0)
    write_video(videos / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4", num_frames=30, fps=10.0)
    return ann, videos


def test_ucf_crime_command(tmp_path, ucf):
    ann, videos = ucf
    out = tmp_path / "instructions"
    gt = tmp_path / "gt.json"
    result = run("ucf-crime", str(ann), "--videos", str(videos), "--out", str(out), "--tasks", "identify,locate",
                 "--activitynet", str(gt))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 records from 4 annotated videos" in result.output
    assert "by task:     identify 3  locate 3" in result.output
    assert "Abuse 2" in result.output and "Normal 2" in result.output
    assert "skipped:    1 (1 no video file)" in result.output
    records = [r for f in sorted(out.glob("ucf_crime_*.json")) for r in json.loads(f.read_text())]
    assert len(records) == 6
    by_id = {r["id"]: r for r in records}
    # the video's own 10 fps turns frames 20-40 into 2-4 s
    assert by_id["Abuse028_x264/locate"]["conversations"][1]["value"] == "The threat occurs between 2 and 4 seconds."
    assert by_id["Arson022_x264/locate"]["conversations"][1]["value"] == (
        "The threat occurs between 1 and 3 seconds and between 4 and 5 seconds."
    )
    for r in records:
        assert (out / r["video"]).is_file()
    truth = json.loads(gt.read_text())["database"]
    assert sorted(truth) == ["Abuse028_x264", "Arson022_x264", "Normal_Videos_003_x264"]
    assert truth["Abuse028_x264"]["annotations"] == [{"segment": [2.0, 4.0], "label": "Abuse"}]


def test_ucf_crime_windows_and_single_file(tmp_path, ucf):
    ann, videos = ucf
    out = tmp_path / "ucf.json"
    result = run("ucf-crime", str(ann), "--videos", str(videos), "-o", str(out), "--window", "3", "--tasks", "locate")
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    abuse = [r for r in records if r["video_id"] == "Abuse028_x264"]
    assert [r["window"] for r in abuse] == [[0.0, 3.0], [3.0, 6.0]]
    assert [r["segments"] for r in abuse] == [[[2.0, 3.0]], [[0.0, 1.0]]]


def test_a_bad_line_is_a_clean_error(tmp_path):
    ann = tmp_path / "ann.txt"
    ann.write_text("Abuse028_x264.mp4  Abuse  20  40  -1  -1\nAbuse029_x264.mp4 Abuse 20 forty -1 -1\n")
    result = CliRunner().invoke(cli, ["data", "ucf-crime", str(ann), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "Error: " in result.output and "ann.txt:2: column 4 must be a number, got 'forty'" in result.output
    assert not (tmp_path / "o").exists()
    bad = CliRunner().invoke(cli, ["data", "ucf-crime", str(ann), "--out", str(tmp_path / "o"), "--splits", "1,2"])
    assert bad.exit_code == 2 and "expected three non-negative numbers" in bad.output


def test_uca_command_with_temporal_segments_and_captions(tmp_path):
    uca = tmp_path / "UCFCrime_Test.json"
    uca.write_text(
        json.dumps(
            {
                "Abuse028_x264": {"duration": 20.0, "timestamps": [[1.0, 3.0]], "sentences": ["A man hits a dog."]},
                "Normal_Videos_003_x264": {"duration": 10.0, "timestamps": [[0.0, 2.0]], "sentences": ["People walk."]},
            }
        )
    )
    temporal = tmp_path / "temporal.txt"
    temporal.write_text("Abuse028_x264.mp4  Abuse  150  240  -1  -1\n")
    out = tmp_path / "uca.json"
    result = run("uca", str(uca), "--temporal", str(temporal), "--captions-as-causes", "--out", str(out))
    assert result.exit_code == 0, result.output
    by_id = {r["id"]: r for r in json.loads(out.read_text())}
    assert by_id["Abuse028_x264/locate"]["segments"] == [[5.0, 8.0]]
    assert (
        by_id["Abuse028_x264/attribute"]["conversations"][1]["value"] == "The threat is attributed to a man hits a dog."
    )
    assert {r["split"] for r in by_id.values()} == {"test"}  # UCA's own split is kept


def test_cuva_command(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["video_id", "X1", "X2 - reason", "X2 - result", "X3 - moment", "X3 - description", "X4 - key sentences"])
    ws.append(
        ["00001", "[9-1,4]", "A cigarette was thrown on the sofa.", "The room burned.", "[0005,0012]", "[fire]", ""]
    )
    book.save(tmp_path / "CUVA.xlsx")
    out = tmp_path / "cuva"
    result = run("cuva", str(tmp_path / "CUVA.xlsx"), "--out", str(out), "--splits", "0,0,1")
    assert result.exit_code == 0, result.output
    assert "3 records from 1 annotated videos" in result.output and "Fire 3" in result.output
    records = json.loads((out / "cuva_test.json").read_text())
    answers = {r["task"]: r["conversations"][1]["value"] for r in records}
    assert answers == {
        "identify": "Yes, there exists a threat.",
        "locate": "The threat occurs between 5 and 12 seconds.",
        "attribute": "The threat is attributed to a cigarette was thrown on the sofa.",
    }
    assert records[0]["video"] == "00001.mp4"


def test_stage1_commands(tmp_path, write_video):
    from PIL import Image

    root = tmp_path / "rsi"
    (root / "forest").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "forest" / "f1.png")
    result = run("rsicb", str(root), "--out", str(tmp_path / "rsi.json"))
    assert result.exit_code == 0, result.output
    assert "1 records" in result.output and "background 1" in result.output
    assert json.loads((tmp_path / "rsi.json").read_text())[0]["conversations"][1]["value"] == "The scene is a forest."

    hml = tmp_path / "HumanML3D"
    (hml / "texts").mkdir(parents=True)
    (hml / "texts" / "000001.txt").write_text("a person jumps#a/DET#0.0#0.0\n")
    write_video(tmp_path / "renders" / "000001.mp4", num_frames=5, fps=5.0)
    result = run("humanml3d", str(hml), "--videos", str(tmp_path / "renders"), "--out", str(tmp_path / "hml.json"))
    assert result.exit_code == 0, result.output
    assert "pose 1" in result.output

    import pickle

    refs = [{"ann_id": 1, "image_id": 2, "ref_id": 3, "split": "val", "category_id": 1,
             "sentences": [{"sent": "dog on the left", "sent_id": 4}]}]  # fmt: skip
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    (tmp_path / "instances.json").write_text(
        json.dumps(
            {
                "images": [{"id": 2, "file_name": "img.jpg", "width": 10, "height": 10}],
                "annotations": [{"id": 1, "image_id": 2, "bbox": [0, 0, 5, 5]}],
                "categories": [{"id": 1, "name": "dog"}],
            }
        )
    )
    (tmp_path / "coco").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "coco" / "img.jpg")
    result = run("refcoco", str(tmp_path / "refs(unc).p"), "--images", str(tmp_path / "coco"),
                 "--instances", str(tmp_path / "instances.json"), "--out", str(tmp_path / "ref.json"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "relation 1" in result.output and "val 1" in result.output


def test_every_command_explains_itself():
    result = run("--help")
    for name in ("ucf-crime", "uca", "cuva", "refcoco", "humanml3d", "rsicb", "synthetic"):
        assert name in result.output
    for name, words in [
        ("ucf-crime", "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"),
        ("uca", "--temporal"),
        ("cuva", "MMSS"),
        ("refcoco", "restricted unpickler"),
        ("humanml3d", "caption#tokens#start#end"),
        ("rsicb", "RSI-CB256"),
    ]:
        help_text = run(name, "--help").output
        assert words in help_text, name


def test_synthetic_is_loaded_lazily(monkeypatch):
    @click.command("synthetic")
    @click.option("--videos", type=int, default=1)
    def fake(videos: int) -> None:
        click.echo(f"rendering {videos} videos")

    module = types.ModuleType("uprm.cli._synthetic")
    module.synthetic_command = fake
    monkeypatch.setitem(sys.modules, "uprm.cli._synthetic", module)
    result = run("synthetic", "--videos", "3")
    assert result.exit_code == 0 and result.output == "rendering 3 videos\n"
    assert "--videos" in run("synthetic", "--help").output


def test_synthetic_without_the_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "uprm.cli._synthetic", None)  # import fails
    result = CliRunner().invoke(cli, ["data", "synthetic", "--videos", "2"])
    assert result.exit_code == 1
    assert (
        "`uprm data synthetic` is not available: uprm.cli._synthetic:synthetic_command could not be loaded"
        in result.output
    )
