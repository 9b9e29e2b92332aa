"""Interop with UPRM's own data path: a synthetic-world video (H.264) and its keypoint
file (COCO dataset layout), sampled by uprm.data.load_clip, read by the pose expert."""

import json

import torch

from uprm.data import load_clip
from uprm.synthetic import make_video, write_mp4
from uprm.testing import tiny_context
from uprm_expert_pose import PoseExpert


def test_synthetic_world_video_and_keypoints(tmp_path):
    video = make_video(0, 0, "Fighting")
    write_mp4(tmp_path / "v.mp4", video.frames(), video.fps)
    truth = video.keypoints_json()
    (tmp_path / "v.json").write_text(json.dumps(truth))

    clip = load_clip(tmp_path / "v.mp4", 8)
    clip.meta["keypoints"] = str(tmp_path / "v.json")
    features = PoseExpert(tiny_context(), max_people=8).extract(clip)

    width, height = video.size
    for f, frame in enumerate(clip.meta["frame_indices"]):
        people = [a for a in truth["annotations"] if a["image_id"] == frame]  # image id = frame index here
        assert int(features["person_mask"][f].sum()) == min(8, len(people))
        if people:  # all scores are 1.0: file order is kept
            kp = torch.tensor(people[0]["keypoints"], dtype=torch.float32).view(17, 3)
            expected = kp.clone()
            expected[:, 0] /= width
            expected[:, 1] /= height
            torch.testing.assert_close(features["keypoints"][f, 0], expected)
    assert features["person_mask"].any()
