"""``uprm extract --model``: a cache made with a model's own perception, read back by
the dataset for that model, and a training step on it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from uprm.cli import cli
from uprm.data import FeatureCache, InstructionDataset, UPRMCollator, clip_keys_from_records, entry_spec, load_clip_for
from uprm.modeling import UPRMConfig, build_model
from uprm.synthetic import generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("model-world")
    summary = generate_world(out, 2, seed=4, progress=False, min_duration=6.0, max_duration=6.0,
                             normal_fraction=0.5, splits=(1.0, 0.0, 0.0))
    return out / summary["instructions"]["train"]


def test_the_cache_of_a_saved_model_holds_that_models_features(world, tmp_path, toy_plugins):
    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=4, seed=3))
    model.save_pretrained(tmp_path / "ckpt")
    result = CliRunner().invoke(cli, ["extract", "--data", str(world), "--model", str(tmp_path / "ckpt"),
                                      "--out", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "entries written" in result.output

    key = clip_keys_from_records([world], 4)[0]
    clip = load_clip_for(key)
    expected = model.extract(clip)
    cache = FeatureCache(tmp_path / "cache")
    for name in ("coarse", "colour"):
        entry = cache.read(key, name, entry_spec(model.block.experts[name]))
        assert entry is not None, name
        for k, v in expected[name].items():
            torch.testing.assert_close(entry.features[k], v)

    # the dataset takes every feature from that cache and the model trains on the batch
    dataset = InstructionDataset(world, model.block, tmp_path / "cache", num_frames=4)
    items = [dataset[i] for i in range(2)]
    assert all(set(it["source"].values()) == {"cache"} for it in items)
    batch = UPRMCollator(model.collate, model.tokenize)(items)
    out = model(batch["input_ids"], batch["attention_mask"], batch["features"], batch["labels"])
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_tiny_model_and_unknown_experts(world, tmp_path, toy_plugins):
    result = CliRunner().invoke(cli, ["extract", "--data", str(world), "--model", "tiny", "--experts", "coarse,pose",
                                      "--out", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code != 0
    assert "the model has no expert(s) ['pose']" in result.output
    result = CliRunner().invoke(cli, ["extract", "--data", str(world), "--model", "tiny", "--experts", "coarse",
                                      "--num-frames", "2", "--out", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.safetensors"))[0] == "coarse.safetensors"
    assert all("_f2" in p.parent.name for p in (tmp_path / "cache").rglob("*.safetensors"))
