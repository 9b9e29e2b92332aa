"""The one expert factory: names become experts in the plugin layer, one seed stream per
expert name, clear errors for unknown names and bad options."""

from __future__ import annotations

import pytest
import torch

import uprm
from uprm.errors import ConfigError
from uprm.plugins.factory import build_experts, expert_seed, parse_expert_options, resolve_expert_names
from uprm.testing import ColourExpert, isolated_plugins, tiny_context


class AlphaExpert(ColourExpert):
    name = "alpha"


class BetaExpert(ColourExpert):
    name = "beta"


class _Plugin:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [AlphaExpert, BetaExpert]


@pytest.fixture
def plugins():
    with isolated_plugins(plugins={"toy": _Plugin}, load_entry_points=False) as host:
        yield host


def _state(expert):
    return {k: v.clone() for k, v in expert.state_dict().items()}


def test_names_become_the_installed_experts(plugins):
    experts = build_experts(["coarse", "alpha"], tiny_context())
    assert list(experts) == ["coarse", "alpha"]
    assert isinstance(experts["alpha"], AlphaExpert) and experts["coarse"].granularity == "coarse"
    assert uprm.build_experts is build_experts
    with pytest.raises(uprm.UnknownExpertError, match=r"no expert named 'pose'.*pip install uprm-expert-pose"):
        build_experts(["coarse", "pose"], tiny_context())


def test_one_seed_stream_per_expert_name(plugins):
    """An expert is the same whatever is built beside it and in whatever order, and the
    global RNG is left as it was."""
    ctx = tiny_context()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    alone = build_experts(["alpha"], ctx, seed=5)["alpha"]
    assert torch.equal(torch.random.get_rng_state(), before)
    with_others = build_experts(["beta", "coarse", "alpha"], ctx, seed=5)["alpha"]
    for key, value in _state(alone).items():
        assert torch.equal(value, with_others.state_dict()[key]), key
    other_seed = build_experts(["alpha"], ctx, seed=6)["alpha"]
    assert any(not torch.equal(v, other_seed.state_dict()[k]) for k, v in _state(alone).items())
    beta = build_experts(["beta"], ctx, seed=5)["beta"]  # another name: another stream
    assert any(not torch.equal(v, beta.state_dict()[k]) for k, v in _state(alone).items())
    assert expert_seed(5, "alpha") != expert_seed(5, "beta") != expert_seed(6, "beta")


def test_options_reach_the_expert_and_bad_ones_are_named(plugins):
    experts = build_experts(["alpha"], tiny_context(), {"alpha": {"width": 4}})
    assert experts["alpha"].options["width"] == 4
    with pytest.raises(ConfigError, match=r"expert\(s\) listed twice: \['alpha'\]"):
        build_experts(["alpha", "alpha"], tiny_context())
    with pytest.raises(ConfigError, match=r"options given for expert\(s\) \['beta'\] that are not being built"):
        build_experts(["alpha"], tiny_context(), {"beta": {"width": 2}})
    with pytest.raises(ConfigError, match=r"expert 'alpha' \(.*\): .*unexpected keyword argument 'colour'"):
        build_experts(["alpha"], tiny_context(), {"alpha": {"colour": 2}})
    with pytest.raises(ConfigError, match="no experts to build"):
        build_experts([], tiny_context())


def test_the_model_and_extract_use_the_factory(plugins, monkeypatch):
    """build_model and `uprm extract` make their experts through build_experts only."""
    from uprm.plugins import factory

    calls = []
    real = factory.build_experts

    def spy(names, *args, **kwargs):
        calls.append(list(names))
        return real(names, *args, **kwargs)

    monkeypatch.setattr(factory, "build_experts", spy)
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["alpha"]))
    assert calls == [["alpha", "coarse"]] and model.expert_names == ("alpha", "coarse")


def test_resolve_adds_a_coarse_expert_and_defaults_to_every_installed_one(plugins):
    assert resolve_expert_names(["alpha"]) == ["alpha", "coarse"]
    assert resolve_expert_names(None) == ["alpha", "beta", "coarse"]


def test_expert_options_from_the_command_line():
    assert parse_expert_options(["pose.max_people=4", "pose.flag=true", "coarse.vision_path=/m/t"]) == {
        "pose": {"max_people": 4, "flag": True}, "coarse": {"vision_path": "/m/t"}}
    with pytest.raises(ConfigError, match=r"is not NAME\.KEY=VALUE"):
        parse_expert_options(["max_people=4"])
