"""Keypoint JSON: both layouts of docs/formats.md, frame matching, K most confident,
normalisation, and bad input reported with the file and the field."""

import json
import os

import numpy as np
import pytest
import torch

from uprm.testing import synthetic_clip, tiny_context
from uprm_expert_pose import KeypointFileError, PoseExpert, PoseSourceError
from uprm_expert_pose.keypoints import match_frames, pose_features, read_keypoint_file
from uprm_expert_pose.skeleton import COCO_JOINTS, COCO_SKELETON
from uprm_expert_pose.testing import (
    pose_clip,
    synthetic_people,
    write_dataset_json,
    write_results_json,
)

SIZE = (320, 240)


def person(x=100.0, y=50.0, score=0.9, c=1.0, bbox=None):
    """A standing person with every joint at (x + 2j, y + 3j)."""
    kp = []
    for j in range(17):
        kp += [x + 2 * j, y + 3 * j, c]
    entry = {"keypoints": kp, "score": score}
    if bbox is not None:
        entry["bbox"] = bbox
    return entry


def clip_for(indices, fps=10.0, **meta):
    clip = synthetic_clip(num_frames=len(indices), size=32, seed=0, fps=fps)
    clip.timestamps = torch.tensor(indices, dtype=torch.float64) / fps
    clip.duration = 10.0
    clip.meta.update(frame_indices=list(indices), fps=fps, source_size=list(SIZE), **meta)
    return clip


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


# ---------------------------------------------------------------------------- layouts
def test_both_layouts_give_the_same_features(tmp_path):
    indices = [0, 5, 10, 15]
    people = synthetic_people([2, 0, 1, 3], size=SIZE, seed=4)
    results = write_results_json(tmp_path / "r.json", {f: p for f, p in zip(indices, people) if p})
    all_frames = [[] for _ in range(20)]
    for f, p in zip(indices, people):
        all_frames[f] = p
    dataset = write_dataset_json(tmp_path / "d.json", range(20), all_frames, size=SIZE, fps=10.0)
    a = PoseExpert(tiny_context(), max_people=4).extract(clip_for(indices, keypoints=str(results)))
    b = PoseExpert(tiny_context(), max_people=4).extract(clip_for(indices, keypoints=str(dataset)))
    assert a.keys() == b.keys() == {"keypoints", "boxes", "scores", "person_mask"}
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a["person_mask"].sum(dim=1).tolist() == [2, 0, 1, 3]


def test_values_are_normalised_to_the_source_frame(tmp_path):
    entry = person(x=32.0, y=24.0, score=0.7)
    entry["keypoints"][3 * 4 + 2] = 0  # right_ear absent
    entry["keypoints"][3 * 5 + 2] = 2  # COCO visibility 2 ("visible") → confidence 1
    path = write_results_json(tmp_path / "r.json", {3: [entry]})
    f = PoseExpert(tiny_context()).extract(clip_for([3], keypoints=str(path)))
    kp = f["keypoints"][0, 0]
    assert kp[0].tolist() == pytest.approx([32 / 320, 24 / 240, 1.0])
    assert kp[16, :2].tolist() == pytest.approx([(32 + 32) / 320, (24 + 48) / 240])
    assert kp[4].tolist() == [0.0, 0.0, 0.0]  # absent joint: no position
    assert kp[5, 2] == 1.0
    # no bbox in the file: the extent of the visible joints
    assert f["boxes"][0, 0].tolist() == pytest.approx([32 / 320, 24 / 240, 64 / 320, 72 / 240])
    assert f["scores"][0, 0] == pytest.approx(0.7)


def test_bbox_and_size_from_dataset_images(tmp_path):
    # the image's own width/height win over meta['source_size']
    path = write_dataset_json(tmp_path / "d.json", [7], [[person(bbox=[10, 20, 100, 50])]], size=(640, 480))
    f = PoseExpert(tiny_context()).extract(clip_for([7], keypoints=str(path)))
    assert f["boxes"][0, 0].tolist() == pytest.approx([10 / 640, 20 / 480, 110 / 640, 70 / 480])
    assert f["keypoints"][0, 0, 0, 0] == pytest.approx(100 / 640)


def test_the_k_most_confident_people_are_kept_in_order(tmp_path):
    scores = [0.3, 0.9, 0.1, 0.6, 0.8]
    path = write_results_json(tmp_path / "r.json", {0: [person(x=10 * i, score=s) for i, s in enumerate(scores)]})
    f = PoseExpert(tiny_context(), max_people=3).extract(clip_for([0], keypoints=str(path)))
    assert f["scores"][0].tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert f["keypoints"][0, :, 0, 0].tolist() == pytest.approx([10 / 320, 40 / 320, 30 / 320])
    assert f["person_mask"][0].tolist() == [True, True, True]


def test_people_without_a_score_rank_by_joint_confidence_and_invisible_people_are_dropped(tmp_path):
    low, high, ghost = person(x=1, c=0.2), person(x=2, c=0.8), person(x=3, c=0.0)
    for entry in (low, high, ghost):
        del entry["score"]
    path = write_results_json(tmp_path / "r.json", {0: [low, ghost, high]})
    f = PoseExpert(tiny_context(), max_people=4).extract(clip_for([0], keypoints=str(path)))
    assert f["person_mask"][0].tolist() == [True, True, False, False]
    assert f["scores"][0, :2].tolist() == pytest.approx([0.8, 0.2])


# ---------------------------------------------------------------------------- matching
def test_nearest_frame_within_half_the_sampling_interval(tmp_path):
    # sampled every 10 frames: frame 20 takes frame 24's people, frame 30 finds none
    # within 5 frames (36 is 6 away), frame 0 matches exactly
    path = write_results_json(
        tmp_path / "r.json", {0: [person(score=0.5)], 24: [person(score=0.6)], 36: [person(score=0.7)]}
    )
    kf = read_keypoint_file(path)
    clip = clip_for([0, 10, 20, 30], keypoints=str(path))
    assert match_frames(kf, clip) == [0, None, 24, None]
    f = pose_features(kf, clip, max_people=2)
    assert f["person_mask"][:, 0].tolist() == [True, False, True, False]
    assert f["scores"][2, 0] == pytest.approx(0.6)


def test_frames_from_fps_when_the_clip_has_no_frame_indices(tmp_path):
    path = write_results_json(tmp_path / "r.json", {30: [person()]})
    clip = clip_for([10, 30], fps=15.0, keypoints=str(path))
    del clip.meta["frame_indices"]
    assert match_frames(read_keypoint_file(path), clip) == [None, 30]


def test_frames_from_image_timestamps_when_the_clip_has_no_frame_meta(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", [0, 6, 12], [[], [person()], []], size=SIZE, fps=3.0)
    clip = clip_for([0, 6, 12], fps=3.0, keypoints=str(path))
    del clip.meta["frame_indices"], clip.meta["fps"]
    assert match_frames(read_keypoint_file(path), clip) == [0, 6, 12]
    f = PoseExpert(tiny_context()).extract(clip)
    assert f["person_mask"][:, 0].tolist() == [False, True, False]


def test_pose_clip_helper_attaches_what_load_clip_would(tmp_path):
    clip = pose_clip(tmp_path, [1, 0, 2], layout="dataset")
    assert clip.meta["frame_indices"] == [0, 5, 10] and clip.meta["fps"] == 10.0
    f = PoseExpert(tiny_context()).extract(clip)
    assert f["person_mask"].sum(dim=1).tolist() == [1, 0, 2]


def test_the_coco_skeleton_written_to_files_is_the_one_eq1_uses(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", [0], [[]])
    category = json.loads(path.read_text())["categories"][0]
    assert category["keypoints"] == list(COCO_JOINTS)
    assert {tuple(sorted(e)) for e in category["skeleton"]} == {tuple(sorted((a + 1, b + 1))) for a, b in COCO_SKELETON}


def test_a_changed_file_is_read_again(tmp_path):
    path = write_results_json(tmp_path / "r.json", {0: [person(score=0.5)]})
    clip = clip_for([0], keypoints=str(path))
    assert PoseExpert(tiny_context()).extract(clip)["scores"][0, 0] == pytest.approx(0.5)
    write_results_json(path, {0: [person(score=0.25), person(score=0.125)]})
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert PoseExpert(tiny_context()).extract(clip)["scores"][0, :2].tolist() == pytest.approx([0.25, 0.125])


# ---------------------------------------------------------------------------- bad input
def expect(path, field, *words, exc=KeypointFileError):
    """The error names the file and the field, and says what is wrong."""

    def check(err):
        message = str(err.value)
        assert str(path) in message or path.name in message, message
        assert field in message, message
        for word in words:
            assert word in message, message

    return exc, check


def run_bad(path, clip=None):
    clip = clip or clip_for([0, 5], keypoints=str(path))
    return PoseExpert(tiny_context()).extract(clip)


@pytest.mark.parametrize(
    ("layout", "field"),
    [("results", "[1].keypoints[4]"), ("dataset", "annotations[1].keypoints[4]")],
)
def test_nan_coordinates(tmp_path, layout, field):
    bad = person()
    bad["keypoints"][4] = float("nan")  # joint 1 (left_eye), y
    path = tmp_path / "nan.json"
    if layout == "results":
        write_results_json(path, {0: [person(), bad]})
    else:
        write_dataset_json(path, [0, 5], [[person(), bad], []])
    assert "NaN" in path.read_text()
    exc, check = expect(path, field, "left_eye", "finite")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)
    assert err.value.field == field


def test_wrong_joint_count(tmp_path):
    short = person()
    short["keypoints"] = short["keypoints"][: 14 * 3]
    path = write_results_json(tmp_path / "r.json", {0: [short]})
    exc, check = expect(path, "[0].keypoints", "42 values", "14 joints", "17")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_wrong_joint_names_in_categories(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", [0, 5], [[], []])
    data = json.loads(path.read_text())
    data["categories"][0]["keypoints"] = data["categories"][0]["keypoints"][:13]
    write_json(path, data)
    exc, check = expect(path, "categories[0].keypoints", "13 joints")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_frames_the_video_does_not_have(tmp_path):
    # a 10-s video at 10 fps has ~100 frames; frame 4000 belongs to another video
    path = write_results_json(tmp_path / "r.json", {0: [person()], 4000: [person()]})
    exc, check = expect(path, "[1].image_id", "frame 4000", "100 frames")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_dataset_frames_the_video_does_not_have(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", [0, 5, 300], [[], [], [person()]])
    exc, check = expect(path, "images[2].frame_index", "frame 300", "another video")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_dataset_file_that_does_not_cover_the_clip(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", range(0, 20), [[] for _ in range(20)])
    exc, check = expect(path, "images", "frame 40", "frames 0–19")
    with pytest.raises(exc) as err:
        run_bad(path, clip_for([40, 60], keypoints=str(path)))
    check(err)


def test_annotation_for_an_unlisted_image(tmp_path):
    path = write_dataset_json(tmp_path / "d.json", [0, 5], [[person()], []])
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 99
    write_json(path, data)
    exc, check = expect(path, "annotations[0].image_id", "99")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_coordinates_for_another_frame_size(tmp_path):
    path = write_results_json(tmp_path / "r.json", {0: [person(x=1500.0, y=900.0)]})
    exc, check = expect(path, "[0].keypoints[0]", "320×240", "source_size")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d[0]["keypoints"].__setitem__(2, -0.5), "[0].keypoints[2]", ["nose", ">= 0"]),
        (lambda d: d[0].__setitem__("image_id", "frame-3"), "[0].image_id", ["frame index"]),
        (lambda d: d[0].pop("image_id"), "[0].image_id", ["missing"]),
        (lambda d: d[0].pop("keypoints"), "[0].keypoints", ["missing"]),
        (lambda d: d[0].__setitem__("score", float("inf")), "[0].score", ["finite"]),
        (lambda d: d[0].__setitem__("bbox", [1, 2, -3, 4]), "[0].bbox", [">= 0"]),
    ],
)
def test_bad_fields_of_a_results_list(tmp_path, mutate, field, words):
    data = [{"image_id": 0, "category_id": 1, **person()}]
    mutate(data)
    path = write_json(tmp_path / "r.json", data)
    exc, check = expect(path, field, *words)
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


@pytest.mark.parametrize(
    ("text", "field", "word"),
    [
        ('[{"image_id": 0,', "line 1 column", "not valid JSON"),
        ('{"people": []}', "top level", "results list"),
        ('{"annotations": []}', "images", "missing"),
    ],
)
def test_unreadable_files(tmp_path, text, field, word):
    path = tmp_path / "k.json"
    path.write_text(text)
    exc, check = expect(path, field, word)
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.json"
    exc, check = expect(path, "file", "cannot be read")
    with pytest.raises(exc) as err:
        run_bad(path)
    check(err)


def test_clip_meta_that_cannot_be_matched(tmp_path):
    path = write_results_json(tmp_path / "r.json", {0: [person()]})
    clip = clip_for([0, 5], keypoints=str(path))
    clip.meta["frame_indices"] = [0]  # one index for two frames
    with pytest.raises(PoseSourceError, match=r"synthetic-0.*frame_indices"):
        PoseExpert(tiny_context()).extract(clip)
    del clip.meta["frame_indices"], clip.meta["fps"]
    with pytest.raises(PoseSourceError, match=r"synthetic-0.*'frame_indices' nor 'fps'"):
        PoseExpert(tiny_context()).extract(clip)


def test_no_pose_source_names_the_clip_and_what_to_pass():
    expert = PoseExpert(tiny_context())  # builds without any file
    clip = synthetic_clip(4, seed=2, video_id="Robbery042")
    with pytest.raises(PoseSourceError, match=r"Robbery042.*keypoints.*weights="):
        expert.extract(clip)
    with pytest.raises(PoseSourceError, match=r"Robbery042.*meta\['keypoints'\]"):
        PoseExpert(tiny_context(), source="json").extract(clip)


def test_empty_frames_are_normal(tmp_path):
    path = write_results_json(tmp_path / "r.json", {})
    f = run_bad(path)
    assert not f["person_mask"].any()
    assert torch.count_nonzero(f["keypoints"]) == 0
    # and the adapter turns a clip with nobody in it into finite tokens
    expert = PoseExpert(tiny_context(), joint_dim=8, pose_dim=16)
    batch = expert.collate([f])
    tokens = torch.randn(1, 2 * expert.ctx.tokens_per_frame, expert.ctx.hidden_size, requires_grad=True)
    out = expert(batch, tokens)
    out.square().mean().backward()
    assert torch.isfinite(out).all() and torch.isfinite(tokens.grad).all()
    assert np.isfinite(expert.adapter.tokenizer.empty_frame.grad.numpy()).all()
