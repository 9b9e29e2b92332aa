"""The example plugin runs UPRM's standard expert tests — every custom expert should."""

import torch
from uprm_expert_motion import MotionExpert

from uprm.testing import ExpertTests, synthetic_clip, tiny_context


class TestMotionExpert(ExpertTests):
    expert_class = MotionExpert
    expert_options = {"width": 16}


def test_a_still_clip_has_no_motion_and_a_moving_one_does():
    expert = MotionExpert(tiny_context())
    still = synthetic_clip(4, seed=0)
    still.frames[:] = still.frames[:1]
    assert expert.extract(still)["motion"].abs().sum() == 0
    moving = synthetic_clip(4, seed=0)
    motion = expert.extract(moving)["motion"]
    assert motion[1:, :, 0].sum() > 0
    assert torch.equal(motion[0], torch.zeros_like(motion[0]))  # frame 0 has no previous frame
