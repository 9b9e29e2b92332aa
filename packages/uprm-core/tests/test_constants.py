"""Shared constants are defined once and used by everyone: the instruction templates,
the COCO skeleton and the time parser."""

from __future__ import annotations

import importlib.util

import pytest

import uprm.data
import uprm.prompts
from uprm.coco import COCO_KEYPOINTS, COCO_SKELETON, NUM_JOINTS, skeleton_1based
from uprm.timeparse import parse_mmss, parse_time


def test_the_instruction_templates_are_one_set_of_objects():
    from uprm.modeling import model

    assert uprm.data.QUESTIONS is uprm.prompts.QUESTIONS and uprm.data.ANSWERS is uprm.prompts.ANSWERS
    assert uprm.data.STAGE2_TASKS is uprm.prompts.STAGE2_TASKS
    assert model.question_for is uprm.prompts.question_for and model.format_prompt is uprm.prompts.format_prompt
    # the builders' answers and the model's parsing of them agree
    assert uprm.data.attribute_answer(["a fire"]).startswith(uprm.prompts.CAUSE_PREFIX)
    assert uprm.prompts.strip_cause(uprm.data.attribute_answer(["A man hits a car"])) == "a man hits a car"
    assert uprm.data.locate_answer([(1, 2)]).startswith(uprm.prompts.LOCATE_PREFIX)
    assert uprm.data.identify_answer(True) == uprm.prompts.YES_ANSWER


def test_one_coco_skeleton_zero_based():
    assert NUM_JOINTS == len(COCO_KEYPOINTS) == 17 and len(COCO_SKELETON) == 19
    assert all(0 <= a < 17 and 0 <= b < 17 for a, b in COCO_SKELETON)
    assert (COCO_KEYPOINTS[15], COCO_KEYPOINTS[13]) == ("left_ankle", "left_knee")
    assert COCO_SKELETON[0] == (15, 13) and skeleton_1based()[0] == [16, 14]  # COCO's files are 1-based


@pytest.mark.skipif(importlib.util.find_spec("uprm_expert_pose") is None, reason="uprm-expert-pose is not installed")
def test_the_pose_plugin_uses_the_core_skeleton():
    from uprm_expert_pose import skeleton

    assert skeleton.COCO_SKELETON is COCO_SKELETON and skeleton.COCO_JOINTS is COCO_KEYPOINTS


def test_the_synthetic_world_writes_cocos_1based_skeleton():
    from uprm.synthetic import make_video

    video = make_video(0, seed=1, category="Normal")
    video.duration = 0.25  # one or two frames are enough
    category = video.keypoints_json()["categories"][0]
    assert category["skeleton"] == skeleton_1based() and category["keypoints"] == list(COCO_KEYPOINTS)


def test_one_time_parser_for_readers_and_answers():
    from uprm.data import annotations
    from uprm.inference import segments

    assert segments.parse_time is parse_time and annotations.parse_time is parse_time
    assert annotations.parse_mmss is parse_mmss and segments.parse_mmss is parse_mmss
    assert parse_time("00:01.2") == pytest.approx(1.2) and parse_time("1:02:03.5") == 3723.5
    assert parse_time("2", default_unit="min") == 120 and parse_time("2 s", default_unit="min") == 2
    assert parse_mmss("0114") == 74 and parse_mmss("010203") == 3723
    with pytest.raises(ValueError, match="below 60"):
        parse_mmss("0075")
    # a CUVA answer with an invalid code is skipped by parse_segments (which never raises)
    assert [(s.start, s.end) for s in uprm.parse_segments("[0052,0114] [0075,0080]", 200)] == [(52.0, 74.0)]
