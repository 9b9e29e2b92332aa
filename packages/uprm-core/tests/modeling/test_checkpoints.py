"""Checkpoint and config hygiene: overrides checked like the constructor, the caller's
config never changed, the router's column order guarded, newer keys dropped with a
warning, one CheckpointError for every malformed checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from uprm.errors import CheckpointError, ConfigError, MissingExpertError
from uprm.modeling import UPRMConfig, UPRMModel, build_model
from uprm.testing import synthetic_clip


@pytest.fixture
def saved(toy_plugins, tmp_path):
    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour", "shade"], num_frames=2))
    with torch.no_grad():  # a router that is not at its initial values
        model.block.router.ffn[-1].bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    path = model.save_pretrained(tmp_path / "ckpt")
    return model, path


def _logits(model):
    clip = synthetic_clip(2, size=32, seed=3)
    features = model.collate([model.extract(clip)])
    inputs = model.tokenize(["identify"], ["Yes, there exists a threat."], 2)
    model.eval()
    with torch.no_grad():
        return model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).logits


def test_build_model_never_changes_the_callers_config(toy_plugins):
    config = UPRMConfig.tiny(experts="colour", num_frames=2)
    before = config.to_dict()
    model = build_model(config)
    assert config.to_dict() == before and config.expert_names is None and config.experts == ["colour"]
    assert model.config is not config and model.config.expert_names == ["colour", "coarse"]


def test_overrides_are_checked_like_the_constructor(saved):
    _, path = saved
    # a comma string is a list of names, never the letters of one name
    model = UPRMModel.from_pretrained(path, experts="coarse,colour,shade", max_new_tokens=5)
    assert model.config.experts == ["coarse", "colour", "shade"] and model.config.max_new_tokens == 5
    with pytest.raises(CheckpointError, match=r"saved with the expert columns \['colour', 'shade', 'coarse'\]"):
        UPRMModel.from_pretrained(path, experts="coarse")
    with pytest.raises(ConfigError, match=r"num_frames: Input should be a valid integer \(got '8'\)"):
        UPRMModel.from_pretrained(path, num_frames="8")
    with pytest.raises(ConfigError, match=r"colour: unknown setting \(known settings: "):
        UPRMModel.from_pretrained(path, colour=1)
    with pytest.raises(ConfigError, match=r"router: Input should be 'tradeoff' or 'basic'"):
        UPRMModel.from_pretrained(path, router="sparse")


def test_a_router_saved_for_another_column_order_never_loads_permuted(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["expert_names"] = ["shade", "colour", "coarse"]  # as if the columns had been saved in another order
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"router was saved with the expert columns \['shade', 'colour', 'coarse'\]"
                       r".*columns are \['colour', 'shade', 'coarse'\]"):
        UPRMModel.from_pretrained(path)


def test_unknown_keys_from_a_newer_version_warn_and_are_dropped(saved):
    model, path = saved
    config = json.loads((path / "config.json").read_text())
    config["sparsity_schedule"] = {"kind": "cosine"}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"ignoring UPRMConfig field\(s\) \['sparsity_schedule'\]"):
        again = UPRMModel.from_pretrained(path)
    torch.testing.assert_close(_logits(again), _logits(model), rtol=0, atol=0)
    with pytest.raises(ConfigError, match=r"sparsity_schedule: unknown setting"):
        UPRMConfig.from_dict(config)  # a dict given by a program is strict


def _malformations(path, model):
    weights = path / "model.safetensors"
    good = weights.read_bytes()
    yield "truncated", lambda: weights.write_bytes(good[: len(good) // 2]), r"cannot read the weights"
    yield "missing", weights.unlink, r"model\.safetensors: missing"

    def other_expert_set():
        other = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=2))
        other.save_pretrained(path / "other")
        weights.write_bytes((path / "other" / "model.safetensors").read_bytes())

    yield "another expert set", other_expert_set, r"router was trained for 2 expert columns, this block has 3"

    def other_rank():
        from uprm.modeling.config import LoRASettings

        other = build_model(UPRMConfig.tiny(experts=["coarse", "colour", "shade"], num_frames=2,
                                            lora=LoRASettings(r=2, alpha=4)))
        other.save_pretrained(path / "rank2")
        weights.write_bytes((path / "rank2" / "model.safetensors").read_bytes())

    yield "another LoRA rank", other_rank, r"LoRA weights of another shape"
    yield "bad JSON", lambda: (path / "config.json").write_text("{"), r"config\.json: not valid JSON"
    yield "not a config", lambda: (path / "config.json").write_text("[1, 2]"), r"not a UPRM config"
    yield "wrong field type", lambda: (path / "config.json").write_text(
        json.dumps({**json.loads(config_text), "num_frames": "eight"})), r"config\.json: num_frames: Input should be a valid integer"


config_text = ""


def test_every_malformed_checkpoint_is_one_checkpoint_error(saved, tmp_path):
    global config_text
    model, path = saved
    config_text = (path / "config.json").read_text()
    weights = (path / "model.safetensors").read_bytes()
    for name, damage, message in _malformations(path, model):
        damage()
        with pytest.raises(CheckpointError, match=message):
            UPRMModel.from_pretrained(path)
        (path / "model.safetensors").write_bytes(weights)
        (path / "config.json").write_text(config_text)
        assert _logits(UPRMModel.from_pretrained(path)).shape == _logits(model).shape, name


def test_a_checkpoint_of_missing_experts_names_the_distribution(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["experts"] = config["expert_names"] = ["pose", "coarse"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(MissingExpertError, match=r"pip install uprm-expert-pose"):
        UPRMModel.from_pretrained(path)


def test_detect_runs_the_experts_and_the_router_once_per_clip(toy_plugins):
    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=2, max_new_tokens=4))
    calls = {"block": 0, "colour": 0}
    model.block.register_forward_hook(lambda *a: calls.__setitem__("block", calls["block"] + 1))
    model.block.experts["colour"].register_forward_hook(lambda *a: calls.__setitem__("colour", calls["colour"] + 1))
    clip = synthetic_clip(2, size=32, seed=1)
    model.detect(clip)
    assert calls == {"block": 1, "colour": 1}
