"""Stage-1 pre-tuning builders (RefCOCO, HumanML3D, RSI-CB) on files in the published
layouts, and the restricted unpickler."""

from __future__ import annotations

import collections
import json
import os
import pickle

import numpy as np
import pytest

from uprm.data import (
    PRETUNE_TEMPLATES,
    AnnotationError,
    build_humanml3d,
    build_refcoco,
    build_rsicb,
    read_humanml3d,
    read_refcoco,
    restricted_pickle_load,
)


def _png(path, size=(8, 6)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)
    return path


# -- the restricted unpickler -------------------------------------------------------------


class _Evil:
    def __init__(self, victim):
        self.victim = victim

    def __reduce__(self):
        return (os.remove, (self.victim,))


def test_restricted_unpickler_loads_plain_data(tmp_path):
    data = {
        "refs": [{"a": 1, "b": [1.5, None, True], "c": ("x", b"y")}],
        "s": {1, 2},
        "o": collections.OrderedDict(k=1),
    }
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"p{protocol}.p"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert restricted_pickle_load(path) == data


def test_restricted_unpickler_refuses_code(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "x": _Evil(str(victim))}], protocol=2))
    with pytest.raises(AnnotationError, match=r"refs\(unc\).p: refusing to unpickle the global (posix|nt|os)\.remove"):
        restricted_pickle_load(path)
    assert victim.read_text() == "still here"
    path.write_bytes(pickle.dumps(collections.Counter(a=1)))
    with pytest.raises(AnnotationError, match=r"refusing to unpickle the global collections\.Counter"):
        restricted_pickle_load(path)
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(AnnotationError, match="not a readable pickle"):
        restricted_pickle_load(path)


# -- RefCOCO ------------------------------------------------------------------------------


def _refcoco(tmp_path):
    refs = [
        {
            "sent_ids": [10, 11],
            "file_name": "COCO_train2014_000000000042_7.jpg",
            "ann_id": 7,
            "ref_id": 1,
            "image_id": 42,
            "split": "train",
            "sentences": [
                {"tokens": ["man", "in", "red"], "raw": "Man in red", "sent_id": 10, "sent": "man in red"},
                {"tokens": ["left", "guy"], "raw": "left guy", "sent_id": 11, "sent": "left guy"},
            ],
            "category_id": 1,
        },
        {
            "sent_ids": [12],
            "file_name": "COCO_train2014_000000000043_8.jpg",
            "ann_id": 8,
            "ref_id": 2,
            "image_id": 43,
            "split": "testA",
            "sentences": [{"tokens": ["cup"], "raw": "cup", "sent_id": 12, "sent": "cup on the table"}],
            "category_id": 47,
        },
    ]
    instances = {
        "images": [
            {"id": 42, "file_name": "COCO_train2014_000000000042.jpg", "width": 640, "height": 480},
            {"id": 43, "file_name": "COCO_train2014_000000000043.jpg", "width": 100, "height": 200},
        ],
        "annotations": [
            {"id": 7, "image_id": 42, "bbox": [64.0, 48.0, 320.0, 240.0], "category_id": 1},
            {"id": 8, "image_id": 43, "bbox": [10, 20, 30, 40], "category_id": 47},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 47, "name": "cup"}],
    }
    root = tmp_path / "refcoco"
    root.mkdir()
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    (root / "refs.json").write_text(json.dumps(refs))
    (root / "instances.json").write_text(json.dumps(instances))
    _png(tmp_path / "train2014" / "COCO_train2014_000000000042.jpg")
    return root


def test_read_refcoco_pickle_and_json(tmp_path):
    root = _refcoco(tmp_path)
    from_pickle = read_refcoco(root / "refs(unc).p", root / "instances.json")
    from_json = read_refcoco(root / "refs.json", root / "instances.json")
    assert from_pickle == from_json
    first, second, third = from_pickle
    assert (first.ref_id, first.sent_id, first.sentence) == (1, 10, "man in red")
    assert first.box == (64.0, 48.0, 384.0, 288.0) and (first.width, first.height) == (640, 480)
    assert first.file_name == "COCO_train2014_000000000042.jpg" and first.category == "person"
    assert second.sentence == "left guy" and third.split == "test"


def test_build_refcoco(tmp_path):
    root = _refcoco(tmp_path)
    out = tmp_path / "out" / "refcoco.json"
    records = build_refcoco(root / "refs(unc).p", tmp_path / "train2014", out, instances=root / "instances.json")
    assert [r["id"] for r in records] == ["refcoco/1/10", "refcoco/1/11"]
    assert records.skipped == [("2/12", "no image file")]
    r = records[0]
    assert r["task"] == "relation" and r["image"] == "../train2014/COCO_train2014_000000000042.jpg"
    assert (out.parent / r["image"]).is_file()
    question = r["conversations"][0]["value"]
    assert question.startswith("<image>\n") and "[0.10, 0.10, 0.60, 0.60]" in question
    assert question[len("<image>\n") :] in [
        t.format(region="[0.10, 0.10, 0.60, 0.60]") for t in PRETUNE_TEMPLATES["relation"]
    ]
    assert r["conversations"][1]["value"] == "Man in red."
    assert r["region"] == [64.0, 48.0, 384.0, 288.0] and r["split"] == "train"
    assert json.loads(out.read_text()) == [dict(x) for x in records]
    one = build_refcoco(
        root / "refs.json",
        tmp_path / "train2014",
        instances=root / "instances.json",
        one_sentence_per_ref=True,
        missing="keep",
    )
    assert [x["id"] for x in one] == ["refcoco/1/10", "refcoco/2/12"]


def test_refcoco_missing_instances_is_reported(tmp_path):
    root = _refcoco(tmp_path)
    with pytest.raises(
        AnnotationError, match=r"refs.json: refs\[0\]: annotation 7 / image 42 not in the instances file"
    ):
        read_refcoco(root / "refs.json")


# -- HumanML3D ----------------------------------------------------------------------------


def _humanml3d(tmp_path, write_video):
    root = tmp_path / "HumanML3D"
    (root / "texts").mkdir(parents=True)
    (root / "texts" / "000021.txt").write_text(
        "a person walks forward and waves.#a/DET person/NOUN walk/VERB#0.0#0.0\n"
        "someone kicks with the left leg#someone/PRON kick/VERB#1.5#3.0\n"
    )
    (root / "texts" / "M000021.txt").write_text("a person walks forward and waves.#a/DET#nan#nan\n")
    (root / "texts" / "000022.txt").write_text("a man jumps#a/DET man/NOUN#0.0#0.0\n")
    (root / "train.txt").write_text("000021\nM000021\n")
    (root / "test.txt").write_text("000022\n")
    videos = tmp_path / "renders"
    write_video(videos / "000021.mp4", num_frames=10, fps=5.0)
    write_video(videos / "M000021.mp4", num_frames=10, fps=5.0)
    return root, videos


def test_build_humanml3d(tmp_path, write_video):
    root, videos = _humanml3d(tmp_path, write_video)
    texts = read_humanml3d(root)
    assert [(t.motion_id, t.start, t.end, t.split) for t in texts] == [
        ("000021", None, None, "train"),
        ("000021", 1.5, 3.0, "train"),
        ("000022", None, None, "test"),
        ("M000021", None, None, "train"),
    ]
    out = tmp_path / "inst"
    records = build_humanml3d(root, videos, out)
    assert [r["id"] for r in records] == ["humanml3d/000021/0", "humanml3d/000021/1", "humanml3d/M000021/0"]
    assert records.skipped == [("humanml3d/000022/0", "no video file")]
    first, part, _ = records
    assert first["task"] == "pose" and first["video"] == "../renders/000021.mp4"
    assert first["conversations"][0]["value"].startswith("<video>\n")
    assert first["conversations"][1]["value"] == "A person walks forward and waves."
    assert "window" not in first and part["window"] == [1.5, 3.0]
    assert part["conversations"][1]["value"] == "Someone kicks with the left leg."
    assert set(records.files) == {"train"} and records.files["train"] == out / "humanml3d_train.json"
    assert [r["id"] for r in build_humanml3d(root, videos, mirrored=False)] == [
        "humanml3d/000021/0",
        "humanml3d/000021/1",
    ]


def test_humanml3d_bad_line(tmp_path, write_video):
    root, _ = _humanml3d(tmp_path, write_video)
    (root / "texts" / "000023.txt").write_text("fine#tok#0.0#0.0\na man runs#tok#2.0\n")
    with pytest.raises(AnnotationError, match=r"000023.txt:2: expected 'caption#tokens#start#end'"):
        read_humanml3d(root)
    (root / "texts" / "000023.txt").write_text("a man runs#tok#3.0#1.0\n")
    with pytest.raises(AnnotationError, match=r"000023.txt:1: the caption ends \(1.0\) before it starts \(3.0\)"):
        read_humanml3d(root)


# -- RSI-CB -------------------------------------------------------------------------------


def test_build_rsicb(tmp_path):
    root = tmp_path / "RSI-CB256"
    for i in range(5):
        _png(root / "construction land" / "city_building" / f"city_building({i}).tif")
    for i in range(2):
        _png(root / "woodland" / "artificial_grassland" / f"ag{i}.jpg")
    (root / "readme.txt").write_text("not an image")
    records = build_rsicb(root, tmp_path / "rsicb.json")
    assert len(records) == 7
    city = next(r for r in records if "city_building(0)" in r["id"])
    assert (
        city["task"] == "background"
        and city["image"] == "RSI-CB256/construction land/city_building/city_building(0).tif"
    )
    assert city["conversations"][1]["value"] == "The scene is a city building, a kind of construction land."
    assert city["conversations"][0]["value"][len("<image>\n") :] in PRETUNE_TEMPLATES["background"]
    grass = next(r for r in records if r["category"] == "artificial grassland")
    assert grass["conversations"][1]["value"] == "The scene is an artificial grassland, a kind of woodland."
    again = build_rsicb(root)
    assert [r["split"] for r in again] == [r["split"] for r in records]
    capped = build_rsicb(root, max_per_class=2)
    assert sorted(r["category"] for r in capped) == ["artificial grassland"] * 2 + ["city building"] * 2
    flat = tmp_path / "RSI-CB128"
    _png(flat / "river" / "r1.png")
    assert build_rsicb(flat)[0]["conversations"][1]["value"] == "The scene is a river."
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no images"):
        build_rsicb(tmp_path / "empty")
