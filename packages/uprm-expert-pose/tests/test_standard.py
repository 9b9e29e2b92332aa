"""UPRM's standard expert tests, run twice: poses from keypoint JSON the test writes
(both layouts, people varying per frame, frames with nobody, more people than K), and
poses from a real YOLO-pose architecture with random weights."""

import pytest
import torch

from uprm.testing import ExpertTests, synthetic_clip
from uprm_expert_pose import PoseExpert
from uprm_expert_pose.testing import pose_clip

SMALL = dict(joint_dim=8, pose_dim=16, num_heads=2, ffn_mult=2, max_people=3)


def people_counts(seed: int, num_frames: int) -> list[int]:
    """0-4 people a frame; every clip has empty frames and frames with more than K = 3."""
    return [(seed * 3 + f * 2) % 5 for f in range(num_frames)]


class TestPoseExpert(ExpertTests):
    expert_class = PoseExpert
    expert_options = SMALL

    @pytest.fixture(autouse=True)
    def _keypoint_dir(self, tmp_path):
        self.keypoint_dir = tmp_path

    def make_clip(self, ctx, seed, num_frames):
        layout = "dataset" if seed % 2 == 0 else "results"
        return pose_clip(self.keypoint_dir, people_counts(seed, num_frames), seed=seed, layout=layout)

    def test_clips_are_what_this_suite_claims(self, expert, clips):
        k = expert.max_people
        for seed, clip in zip((0, 1), clips):
            counts = expert.extract(clip)["person_mask"].sum(dim=1).tolist()
            assert counts == [min(c, k) for c in people_counts(seed, clip.num_frames)]
            assert 0 in counts
        assert any(c > 3 for c in people_counts(1, 4))  # more people than K = 3 in SMALL
        layouts = {clip.meta["keypoints"].rsplit("-", 1)[-1] for clip in clips}
        assert layouts == {"dataset.json", "results.json"}


class TestPoseExpertDefaults(TestPoseExpert):
    """Built with no options at all, as the demo and ``uprm.testing`` build experts."""

    expert_options = {}


class TestPoseExpertResidualTemporal(TestPoseExpert):
    """The options of the ablation: the residual form and the temporal layer over frames."""

    expert_options = dict(SMALL, residual=True, temporal_layers=1)


class TestPoseExpertYolo(ExpertTests):
    """The same contract with poses from ultralytics YOLO-pose: the real yolo11n-pose
    architecture with random weights, loaded from a .pt in safe mode, with a confidence
    threshold low enough that people appear."""

    expert_class = PoseExpert
    expert_options = dict(SMALL, conf=1e-6, imgsz=64)
    # at conf=1e-6 every frame has people, so the "nobody here" frame token is never used
    # (the JSON suite above covers it)
    no_grad_params = (r"tokenizer\.empty_frame$",)

    @pytest.fixture(autouse=True)
    def _weights(self, pose_pt):
        self.weights = pose_pt

    def make_expert(self, ctx):
        return PoseExpert(ctx, weights=self.weights, **self.expert_options)

    def make_clip(self, ctx, seed, num_frames):
        return synthetic_clip(num_frames=num_frames, size=64, seed=seed)

    def test_people_appear(self, expert, clips):
        features = expert.extract(clips[0])
        assert features["person_mask"].all()
        assert torch.all(features["scores"][:, :-1] >= features["scores"][:, 1:])
