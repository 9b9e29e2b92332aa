"""What the Expert base class does for every expert: record options, keep perception
frozen and out of checkpoints, forbid gradients in extract."""

import pytest
import torch
from torch import nn

import uprm
from uprm.testing import ColourExpert, synthetic_clip, tiny_context


class Deep(ColourExpert):
    name = "deep"

    def __init__(self, ctx, depth=3, path=None, **extra):
        super().__init__(ctx, width=4)
        self.add_perception("frozen", nn.Linear(3, 3))
        self.depth = depth

    def extract(self, clip):
        colour = super().extract(clip)["colour"]
        return {"colour": self.frozen(colour)}


def test_options_are_recorded_with_defaults_by_the_most_derived_class(tmp_path):
    expert = Deep(tiny_context(), depth=5, path=tmp_path, flag=True)
    assert expert.options == {"depth": 5, "path": tmp_path, "flag": True}
    assert ColourExpert(tiny_context()).options == {"width": 8}
    assert expert.extraction_config()["options"] == {"depth": 5, "path": str(tmp_path), "flag": True}


def test_perception_is_frozen_kept_in_eval_and_not_checkpointed():
    expert = Deep(tiny_context()).train()
    assert expert.perception_names == ("frozen",)
    assert not expert.frozen.training and expert.training
    assert not any(p.requires_grad for p in expert.frozen.parameters())
    assert not any(k.startswith("frozen.") for k in expert.trainable_state_dict())
    with pytest.raises(KeyError, match=r"expert 'deep': state does not match the adapter \(missing: \['mix.bias'"):
        expert.load_trainable_state_dict({k: v for k, v in expert.trainable_state_dict().items() if k != "mix.bias"})


def test_extract_never_builds_a_graph_even_with_trainable_modules():
    expert = Deep(tiny_context())
    expert.frozen.requires_grad_(True)  # even if someone unfreezes it
    out = expert.extract(synthetic_clip(4))
    assert not out["colour"].requires_grad


def test_a_context_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"ctx must be an uprm\.ExpertContext"):
        ColourExpert({"hidden_size": 8})


def test_collate_names_the_expert_and_the_feature():
    expert = ColourExpert(tiny_context())
    with pytest.raises(ValueError, match="expert 'colour': feature 'colour' has different shapes"):
        expert.collate([{"colour": torch.zeros(4, 3)}, {"colour": torch.zeros(2, 3)}])
    with pytest.raises(ValueError, match="expert 'colour': item 1 has keys"):
        expert.collate([{"colour": torch.zeros(4, 3)}, {"other": torch.zeros(4, 3)}])


def test_frame_wise_is_declared_by_the_experts_that_perceive_frames_alone():
    """``Expert.frame_wise`` (default False) lets detection perceive a frame shared by
    overlapping windows once; the installed experts declare it truthfully."""
    from uprm.detection.perception import is_frame_wise

    assert uprm.Expert.frame_wise is False
    experts = uprm.available_experts()
    assert experts["coarse"].frame_wise is True
    expected = {"pose": True, "background": True, "relation": False}  # relation derives motion across frames
    for name, value in expected.items():
        if name in experts:
            assert experts[name].frame_wise is value, name

    class Tracker(uprm.Expert):
        name = "tracker"

    assert not is_frame_wise(Tracker.__new__(Tracker))
