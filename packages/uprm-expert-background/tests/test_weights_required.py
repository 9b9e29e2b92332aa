"""A SAM checkpoint is required outside the tiny/test configuration: a real model never
learns, without a word, from the features of a random encoder. A random encoder there is
one explicit option away (``random_encoder=True``), and the tiny configuration (the tiny
backbone, ``uprm.testing.tiny_context``, ``uprm extract`` without a model) builds one
silently, as before."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import uprm
from uprm.errors import ConfigError
from uprm.testing import tiny_context
from uprm_expert_background import BackgroundExpert

from .conftest import SMALL_ENCODER

#: the dims of ``tiny_context`` without ``tiny=True``: what a real backbone's context looks like to the expert
REAL = {"hidden_size": 32, "num_frames": 4, "tokens_per_frame": 17, "num_prefix_tokens": 1, "image_size": 32}


def _encoder_state(expert):
    return {k: v.clone() for k, v in expert.encoder.state_dict().items()}


def test_a_real_context_without_a_checkpoint_is_an_error_naming_the_option():
    ctx = uprm.ExpertContext(**REAL)
    assert not ctx.tiny
    with pytest.raises(ConfigError) as info:
        BackgroundExpert(ctx)
    message = str(info.value)
    assert "background.checkpoint" in message
    assert "--expert-option background.checkpoint=/path/sam_vit_b.pth" in message
    assert "background.random_encoder=true" in message
    # a SAM size without weights is still no checkpoint
    with pytest.raises(ConfigError, match=r"background\.checkpoint"):
        BackgroundExpert(ctx, variant="vit_b")


def test_the_explicit_option_builds_a_random_encoder_in_a_real_context_with_the_tiny_cache_key():
    from uprm.data import entry_spec

    explicit = BackgroundExpert(uprm.ExpertContext(**REAL), random_encoder=True)
    tiny = BackgroundExpert(tiny_context())
    assert explicit.options["random_encoder"] is True
    assert explicit.encoder_info["weights"] == {"random_init_seed": 0}
    # the same seeded encoder as the tiny configuration's, and the same feature-cache key:
    # the option says where the weights come from, the weights themselves are named by init_seed
    state = _encoder_state(tiny)
    assert all(torch.equal(v, state[k]) for k, v in _encoder_state(explicit).items())
    assert entry_spec(explicit)["uprm.key"] == entry_spec(tiny)["uprm.key"]


def test_random_encoder_and_a_checkpoint_contradict(sam_checkpoint):
    ctx = uprm.ExpertContext(**REAL)
    with pytest.raises(ConfigError, match="ask for two encoders"):
        BackgroundExpert(ctx, checkpoint=sam_checkpoint, random_encoder=True)
    with pytest.raises(ConfigError, match="random_encoder must be true or false, got 'yes'"):
        BackgroundExpert(ctx, random_encoder="yes")
    # with its checkpoint, a real context builds (the real use)
    loaded = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL_ENCODER)
    assert "sha256" in loaded.extraction_config()["weights"]
    assert loaded.encoder_info["config"]["embed_dim"] == SMALL_ENCODER["embed_dim"]


def test_the_tiny_configuration_builds_a_random_encoder_silently():
    for ctx in (tiny_context(), uprm.data.default_context(4)):
        assert ctx.tiny
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expert = BackgroundExpert(ctx)
        assert expert.encoder_info["weights"] == {"random_init_seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["background", "coarse"], num_frames=4))
    assert model.block.experts["background"].ctx.tiny
    assert "background" not in model.config.expert_options  # nothing to record: the tiny backbone says it


def _round_trip(model, path):
    model.save_pretrained(path)
    again = uprm.UPRMModel.from_pretrained(path)
    state = _encoder_state(model.block.experts["background"])
    assert all(torch.equal(v, state[k]) for k, v in _encoder_state(again.block.experts["background"]).items())
    saved = model.trainable_state_dict()
    for key, value in again.trainable_state_dict().items():
        assert torch.equal(value, saved[key]), key
    return json.loads((path / "config.json").read_text())


def test_the_tiny_model_round_trips_without_the_option(tmp_path):
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["background", "coarse"], num_frames=4,
                                                  expert_options={"background": {"adapter_hidden": 16}}))
    config = _round_trip(model, tmp_path / "tiny")
    assert config["backbone"] is None and config["expert_options"] == {"background": {"adapter_hidden": 16}}


def test_a_model_on_a_real_backbone_needs_the_checkpoint_or_the_recorded_option(tmp_path):
    """A local Video-LLaVA directory is a real backbone: without SAM's weights the model
    is refused at build time; with ``random_encoder`` it builds, ``config.json`` records
    the option, and ``from_pretrained`` rebuilds the same model."""
    from uprm.modeling.backbone import build_tiny_backbone

    vlm, tokenizer = build_tiny_backbone(uprm.UPRMConfig.tiny().tiny_backbone, seed=0)
    vlm.save_pretrained(tmp_path / "video-llava")
    tokenizer.save_pretrained(tmp_path / "video-llava")
    config = uprm.UPRMConfig(backbone=str(tmp_path / "video-llava"), experts=["background", "coarse"], num_frames=4,
                             lora={"r": 4, "alpha": 8})
    with pytest.raises(ConfigError, match=r"background\.checkpoint"):
        uprm.build_model(config)
    options = {"background": {"random_encoder": True, "adapter_hidden": 16}}
    model = uprm.build_model(config.replace(expert_options=options))
    assert not model.block.experts["background"].ctx.tiny
    saved = _round_trip(model, tmp_path / "real")
    assert saved["expert_options"] == options
