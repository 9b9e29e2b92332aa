"""End to end with a really trained tiny checkpoint: the Python API and ``uprm detect``
find the threats where they are, with their cause, and write every file in its layout;
reruns resume, a bad file is reported while the others go on, and an expert without
its sidecar files fails clearly."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

import uprm
from uprm.cli import cli
from uprm.data import read_activitynet_predictions
from uprm.metrics import map_at_tiou

CAUSE = "a person grabbing a bag"


def run(*args):
    return CliRunner().invoke(cli, ["detect", *map(str, args)])


@pytest.fixture(scope="module")
def first_run(detector, threat_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("detect") / "out"
    result = run(threat_data / "videos", "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data,
                 "--format", "table", "--quiet")
    assert result.exit_code == 0, result.output
    return out, result


def test_python_api_finds_the_threat_with_its_cause(detector, threat_data):
    assert uprm.detect is uprm.detection.detect
    segments = uprm.detect(threat_data / "videos" / "shop.mp4", detector, window=8.0, stride=4.0,
                           sidecar_dir=threat_data)
    [seg] = segments
    assert isinstance(seg, uprm.Segment)
    assert (seg.start, seg.end, seg.cause) == (12.0, 32.0, CAUSE)  # threat 16-28 s; windows 12-20 ... 24-32 s
    assert seg.score > 0.5 and set(seg.expert_weights) == {"background", "coarse", "pose", "relation"}
    assert uprm.detect(threat_data / "videos" / "quiet.mp4", detector, sidecar_dir=threat_data) == []


def test_cli_writes_every_file_in_its_layout(first_run, threat_data):
    out, result = first_run
    assert {p.name for p in out.iterdir()} == {"results.json", "shop.json", "shop.png", "shop", "street.json",
                                               "street.png", "street", "quiet.json", "quiet.png"}
    shop = json.loads((out / "shop.json").read_text())
    assert shop["video"].endswith("shop.mp4") and shop["video_id"] == "shop" and shop["duration"] == 40.0
    [seg] = shop["segments"]
    assert set(seg) >= {"start", "end", "score", "cause", "expert_weights"}
    assert (seg["start"], seg["end"], seg["cause"], seg["evidence"]) == (12.0, 32.0, CAUSE, "shop/1.png")
    assert len(shop["windows"]) == 9 and shop["stats"]["frames_decoded"] == 10
    street = json.loads((out / "street.json").read_text())
    assert [(s["start"], s["end"]) for s in street["segments"]] == [(0.0, 16.0)]  # threat 4-12 s
    for data in (shop, street):
        assert all(0 <= s["start"] < s["end"] <= data["duration"] for s in data["segments"])
    for png in ("shop.png", "quiet.png", "shop/1.png", "street/1.png"):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and image.width >= 600
    rows = read_activitynet_predictions(out / "results.json")
    assert sorted((v, s, e) for v, s, e, _ in rows) == [("shop", 12.0, 32.0), ("street", 0.0, 16.0)]
    assert set(json.loads((out / "results.json").read_text())["results"]) == {"shop", "street", "quiet"}
    truth = [("shop", 16.0, 28.0), ("street", 4.0, 12.0)]
    assert map_at_tiou(rows, truth, (0.1, 0.3, 0.5))["average"] == pytest.approx(100.0)
    # the table
    text = result.output
    assert CAUSE in text and "0:12.0" in text and "0:32.0" in text and "no threat in 0:40.0" in text
    assert "3 detected, 0 already done, 0 failed" in text


def test_a_rerun_resumes_and_overwrite_redoes(first_run, detector, threat_data):
    out, _ = first_run
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "results.json"}
    result = run(threat_data / "videos", "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data,
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert "0 detected, 3 already done" in result.output
    assert {p: p.stat().st_mtime_ns for p in before} == before
    (out / "street" / "1.png").unlink()  # an incomplete video is redone
    result = run(threat_data / "videos", "--checkpoint", detector, "--out", out, "--sidecar-dir", threat_data,
                 "--quiet", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["done"] == ["street"] and sorted(report["skipped"]) == ["quiet", "shop"]
    assert (out / "street" / "1.png").is_file() and len(report["videos"]) == 3
    result = run(threat_data / "videos" / "quiet.mp4", "--checkpoint", detector, "--out", out, "--sidecar-dir",
                 threat_data, "--quiet", "--overwrite")
    assert "1 detected, 0 already done" in result.output
    assert (out / "quiet.json").stat().st_mtime_ns != before[out / "quiet.json"]


def test_a_bad_file_is_reported_and_the_others_go_on(detector, threat_data, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    quiet = threat_data / "videos" / "quiet.mp4"
    result = run(bad, quiet, tmp_path / "missing.mp4", "--checkpoint", detector, "--out", tmp_path / "out",
                 "--sidecar-dir", threat_data, "--quiet")
    assert result.exit_code == 1
    assert "failed: " in result.output and "broken.mp4" in result.output and "missing.mp4" in result.output
    assert "2 video(s) failed" in result.output
    assert (tmp_path / "out" / "quiet.json").is_file()
    assert list(json.loads((tmp_path / "out" / "results.json").read_text())["results"]) == ["quiet"]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback_of_each_failed_video(detector, threat_data, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    result = CliRunner().invoke(cli, ["--debug", "detect", str(bad), str(tmp_path / "missing.mp4"), "--checkpoint",
                                      str(detector), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.count("Traceback (most recent call last)") >= 2  # one per video (and chained causes)
    assert "VideoError" in result.output and "failed: " in result.output


def test_an_expert_without_its_sidecar_says_what_to_pass(detector, threat_data, tmp_path):
    video = shutil.copy(threat_data / "videos" / "shop.mp4", tmp_path / "raw.mp4")
    result = run(video, "--checkpoint", detector, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    assert "expert 'pose'" in result.output and "--sidecar-dir" in result.output
    assert "keypoints/<video_id>.json" in result.output


def test_two_videos_with_one_name_are_refused(detector, threat_data, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(threat_data / "videos" / "shop.mp4", other / "shop.mp4")
    result = run(threat_data / "videos" / "shop.mp4", other / "shop.mp4", "--checkpoint", detector, "--out",
                 tmp_path / "out")
    assert result.exit_code != 0 and "two videos named 'shop'" in result.output
