"""The coarse video expert runs the standard expert tests, and a few of its own."""

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

import uprm
from uprm.experts.coarse import CoarseExpert, Projector
from uprm.testing import ExpertTests, synthetic_clip, tiny_context

#: why the coarse expert may ignore frame order (the standard test checks it is exactly so)
EQUIVARIANT = (
    "the coarse expert is Video-LLaVA's own video path: the frozen tower encodes each frame on its own and "
    "the projector maps each token on its own, so that a coarse-only model reproduces Video-LLaVA's features "
    "exactly; the LLM reads frame order from the token positions"
)


class TestCoarseExpert(ExpertTests):
    expert_class = CoarseExpert
    frame_order_equivariant = EQUIVARIANT


class TestCoarseExpertWithoutCLS(ExpertTests):
    expert_class = CoarseExpert
    frame_order_equivariant = EQUIVARIANT

    def make_context(self):
        return tiny_context(tokens_per_frame=16, num_prefix_tokens=0)


def test_extract_matches_the_tower_run_by_hand():
    ctx = tiny_context()
    torch.manual_seed(0)
    expert = CoarseExpert(ctx)
    clip = synthetic_clip(ctx.num_frames, size=(48, 80))
    features = expert.extract(clip)["vision_features"]
    assert features.shape == (ctx.num_frames, ctx.tokens_per_frame, expert.vision_hidden)
    pixels = expert.preprocess(clip.frames)
    assert pixels.shape == (ctx.num_frames, 3, ctx.image_size, ctx.image_size)
    with torch.no_grad():
        hidden = expert.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(features, hidden)


def test_the_builder_can_hand_in_the_backbones_tower_and_projector():
    config = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                              num_attention_heads=4, image_size=32, patch_size=8)
    tower = CLIPVisionModel(config)
    projector = Projector(48, 32)
    ctx = tiny_context(resources={"vision_tower": tower, "projector": projector, "vision_feature_layer": -1})
    expert = CoarseExpert(ctx)
    assert expert.tower is tower and expert.projector is projector
    assert expert.vision_feature_layer == -1
    assert not any(p.requires_grad for p in tower.parameters())
    out = expert(expert.collate([expert.extract(synthetic_clip(ctx.num_frames))]))
    assert out.shape == (1, ctx.num_tokens, 32)


def test_a_tower_that_does_not_fit_the_grid_is_refused():
    with pytest.raises(ValueError, match="gives 5 tokens per frame"):
        CoarseExpert(tiny_context(), vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                        num_attention_heads=2, image_size=32, patch_size=16))


def test_a_missing_vision_path_says_to_download_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local directory; download the weights"):
        CoarseExpert(tiny_context(), vision_path=str(tmp_path / "nope"))


def test_vision_path_loads_a_saved_tower(tmp_path):
    ctx = tiny_context()
    torch.manual_seed(1)
    source = CoarseExpert(ctx)
    source.tower.save_pretrained(tmp_path / "tower")
    loaded = CoarseExpert(ctx, vision_path=str(tmp_path / "tower"))
    clip = synthetic_clip(ctx.num_frames)
    torch.testing.assert_close(loaded.extract(clip)["vision_features"], source.extract(clip)["vision_features"])


def test_registered_as_the_builtin_coarse_expert():
    assert uprm.available_experts()["coarse"] is CoarseExpert


def test_extraction_config_names_the_tower_layer_really_used():
    """The cache key names the hidden state ``extract`` keeps, wherever it came from: a
    cache made from another layer is stale."""
    torch.manual_seed(0)
    own = CoarseExpert(tiny_context())
    tower, projector = own.tower, own.projector
    assert own.extraction_config()["vision_feature_layer"] == -2
    assert CoarseExpert(tiny_context(), vision_feature_layer=-1).extraction_config()["vision_feature_layer"] == -1

    def handed_in(layer):
        resources = {"vision_tower": tower, "projector": projector, "vision_feature_layer": layer}
        return CoarseExpert(tiny_context(resources=resources))

    last, second_last = handed_in(-1), handed_in(-2)
    assert last.options == second_last.options  # the options alone cannot tell them apart
    assert last.extraction_config()["vision_feature_layer"] == -1
    assert last.extraction_config() != second_last.extraction_config()
    assert second_last.extraction_config() == own.extraction_config()
    clip = synthetic_clip(4)
    assert not torch.equal(last.extract(clip)["vision_features"], second_last.extract(clip)["vision_features"])
