"""Instruction records and `uprm.data.clip_from_record`: the one public way to get what
the experts need from an instruction file."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

import uprm.data
from uprm.data import InstructionRecord, clip_from_record, load_records
from uprm.errors import RecordError, VideoError


def _write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def dataset(tmp_path, write_video):
    """``data/train.json`` with a windowed video record (keypoints + scene graph) and an
    image record; media and sidecars in folders beside it."""
    root = tmp_path / "data"
    write_video(root / "videos" / "v1.mp4", num_frames=40, fps=10.0)
    (root / "keypoints").mkdir()
    (root / "keypoints" / "v1.json").write_text("[]")
    (root / "scene_graphs").mkdir()
    (root / "scene_graphs" / "v1.json").write_text('{"frames": []}')
    from PIL import Image

    (root / "images").mkdir()
    Image.new("RGB", (20, 10), (200, 10, 10)).save(root / "images" / "a.png")
    conv = [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}]
    records = [
        {"id": "v1/locate", "video": "videos/v1.mp4", "video_id": "v1", "window": [1.0, 3.0],
         "keypoints": "keypoints/v1.json", "scene_graph": "scene_graphs/v1.json", "conversations": conv},
        {"id": "img/relation", "image": "images/a.png", "conversations": conv},
    ]
    return _write(root / "train.json", records)


def test_records_remember_their_file(dataset):
    records = load_records(dataset)
    assert all(isinstance(r, InstructionRecord) for r in records)
    assert records[0] == json.loads(dataset.read_text())[0]  # still the plain JSON object
    assert records[0].source == dataset and records[1].index == 1
    assert records[0].where == f"{dataset}: record 0 ('v1/locate')"
    again = pickle.loads(pickle.dumps(records[0]))  # DataLoader workers receive them
    assert again == records[0] and again.source == dataset


def test_the_clip_of_a_record_with_its_sidecars_from_any_working_directory(dataset, tmp_path, monkeypatch,
                                                                            frame_number):
    monkeypatch.chdir(tmp_path.parent)  # elsewhere: paths resolve against the JSON's folder
    record = load_records(dataset)[0]
    clip = uprm.data.clip_from_record(record, num_frames=4)
    root = dataset.parent
    assert clip.num_frames == 4 and clip.video_id == "v1"
    assert clip.meta["keypoints"] == str((root / "keypoints" / "v1.json").resolve())
    assert clip.meta["scene_graph"] == str((root / "scene_graphs" / "v1.json").resolve())
    assert tuple(clip.meta["window"]) == (1.0, 3.0)
    assert float(clip.timestamps.min()) >= 1.0 and float(clip.timestamps.max()) < 3.0
    # the frames really come from the window: indices 10..29 at 10 fps
    assert all(10 <= frame_number(f) < 30 for f in clip.frames)
    assert clip_from_record(record).num_frames == 8  # the default


def test_an_image_record_is_a_one_frame_clip(dataset):
    clip = clip_from_record(load_records(dataset)[1], num_frames=8)
    assert clip.num_frames == 1 and clip.frames.shape[1:] == (3, 10, 20)
    assert clip.frames[0, 0].float().mean() > 150  # red


def test_a_plain_dict_resolves_against_base_else_the_working_directory(dataset, tmp_path, monkeypatch):
    record = json.loads(dataset.read_text())[0]
    clip = clip_from_record(record, 2, base=dataset.parent)
    assert clip.num_frames == 2 and "keypoints" in clip.meta
    monkeypatch.chdir(dataset.parent)
    assert torch.equal(clip_from_record(record, 2).frames, clip.frames)
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(VideoError, match=r"videos/v1\.mp4"):
        clip_from_record(record, 2)


def test_bad_records_name_the_file_the_record_and_the_field(tmp_path):
    bad = _write(tmp_path / "bad.json", [{"id": "x", "video": 3}])
    with pytest.raises(RecordError, match=r"bad\.json: record 0 \('x'\): field 'video' must be a file path, got 3"):
        load_records(bad)
    bad = _write(tmp_path / "bad.json", [{"id": "x", "video": "a.mp4", "keypoints": ["k.json"]}])
    with pytest.raises(RecordError, match=r"record 0 \('x'\): field 'keypoints' must be a file path"):
        load_records(bad)
    with pytest.raises(RecordError, match="is a folder"):
        load_records(tmp_path)
    with pytest.raises(RecordError, match="needs a 'video' or an 'image' field"):
        clip_from_record({"id": "y"})
