"""A whole model with every installed real expert (pose, relation, background and the
coarse one, with whatever plugins this environment has) and a trained router, saved and
loaded: every trained tensor comes back key by key, and the logits are identical."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

import uprm
from uprm.data import clip_from_record, load_records
from uprm.synthetic import generate_world


@pytest.fixture(scope="module")
def world_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("full-model-world")
    world = generate_world(out, 2, seed=11, progress=False, min_duration=6.0, max_duration=6.0, normal_fraction=0.0)
    return [r for split in world["instructions"].values() for r in load_records(out / split)]


def _batch(model, records):
    clips = [clip_from_record(r, 2) for r in records]
    features = model.collate([model.extract(c) for c in clips])
    questions = [r["conversations"][0]["value"] for r in records]
    answers = [r["conversations"][1]["value"] for r in records]
    return features, model.tokenize(questions, answers, 2)


def test_every_installed_expert_round_trips_inside_a_model(world_records, tmp_path):
    installed = sorted(uprm.available_experts())
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2))
    assert sorted(model.expert_names) == installed  # None = every installed expert
    features, inputs = _batch(model, world_records[:2])
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    router_before = model.block.router.ffn[-1].weight.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).loss.backward()
        opt.step()
    assert not torch.equal(model.block.router.ffn[-1].weight, router_before)  # the router was trained
    model.eval()
    with torch.no_grad():
        expected = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).logits

    path = model.save_pretrained(tmp_path / "ckpt")
    saved = model.trainable_state_dict()
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == set(saved)
    for name in model.expert_names:  # every expert's adapter is in the checkpoint
        assert any(k.startswith(f"block.experts.{name}.") for k in keys), name
    assert any(k.startswith("block.router.") for k in keys)

    loaded = uprm.UPRMModel.from_pretrained(path).eval()
    assert loaded.expert_names == model.expert_names
    again = loaded.trainable_state_dict()
    assert set(again) == set(saved)
    for key, value in saved.items():
        assert torch.equal(again[key].cpu(), value.detach().cpu()), key
    with torch.no_grad():
        got = loaded(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


ADAPTER_ONLY = {  # an option that changes only the adapter, per installed expert
    "pose": {"residual": True, "temporal_layers": 1, "pose_dim": 32},
    "relation": {"residual": True, "node_dim": 32},
    "background": {"adapter_hidden": 16},
}


@pytest.mark.parametrize("name", [n for n in sorted(ADAPTER_ONLY) if n in uprm.available_experts()])
def test_adapter_only_options_keep_the_feature_cache_key(name):
    """The residual form, the adapter's widths and batch sizes never change what
    ``extract`` writes, so they stay out of the cache key (an ablation of the residual
    form reuses the cached features); an extraction option does change it."""
    from uprm.data import entry_spec
    from uprm.plugins import build_experts
    from uprm.testing import tiny_context

    ctx = tiny_context()
    base = build_experts([name], ctx)[name]
    other = build_experts([name], ctx, {name: ADAPTER_ONLY[name]})[name]
    assert set(ADAPTER_ONLY[name]) <= type(base).adapter_options
    assert entry_spec(base)["uprm.key"] == entry_spec(other)["uprm.key"]
    extraction_option = {"pose": {"max_people": 3}, "relation": {"max_objects": 5},
                         "background": {"cache_dtype": "float32"}}[name]
    changed = build_experts([name], ctx, {name: extraction_option})[name]
    assert entry_spec(base)["uprm.key"] != entry_spec(changed)["uprm.key"]
