"""The instruction dataset (features from the cache, else extracted online) and the
collator that builds the model's batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from uprm.data import (
    CacheError,
    FeatureCache,
    InstructionDataset,
    UPRMCollator,
    default_context,
    extract_features,
    split_conversation,
)
from uprm.errors import RecordError
from uprm.moe.block import UPEBlock
from uprm.plugins.factory import build_experts
from uprm.synthetic import generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("ds-world")
    summary = generate_world(out, 4, seed=4, progress=False, min_duration=8.0, max_duration=8.0, normal_fraction=0.25,
                             splits=(1.0, 0.0, 0.0))
    return out, out / summary["instructions"]["train"]


@pytest.fixture(scope="module")
def block() -> UPEBlock:
    return UPEBlock(list(build_experts(["coarse"], default_context(4)).values()))


def _no_decoding(*_args, **_kwargs):
    raise AssertionError("a video was decoded although its features are cached")


def test_items_come_from_the_cache_without_decoding(world, block, tmp_path, monkeypatch):
    _, train = world
    cache = FeatureCache(tmp_path / "cache")
    online = InstructionDataset(train, block, None, num_frames=4)
    extract_features(online.clip_keys(), dict(block.experts), cache, progress=False)
    cached = InstructionDataset(train, block, cache, num_frames=4)
    monkeypatch.setattr("uprm.data.features.dataset.load_clip_for", _no_decoding)
    records = json.loads(train.read_text())
    assert len(cached) == len(records) == len(online)
    for i in range(len(cached)):
        item = cached[i]
        assert item["source"] == {"coarse": "cache"}
        rec = records[i]
        assert item["id"] == rec["id"] and item["task"] == rec["task"] and item["video_id"] == rec["video_id"]
        assert item["question"] == rec["conversations"][0]["value"].split("\n", 1)[1]
        assert item["answer"] == rec["conversations"][1]["value"]
        assert item["window"] == rec["window"] and item["duration"] == rec["duration"]
        assert item["segments"] == rec["segments"] and item["media"] == "video"
        assert item["num_frames"] == 4 and item["timestamps"].shape == (4,)
    monkeypatch.undo()
    for i in (0, len(online) - 1):  # the cache holds exactly what online extraction gives
        a, b = cached[i], online[i]
        assert b["source"] == {"coarse": "online"}
        assert torch.equal(a["features"]["coarse"]["vision_features"], b["features"]["coarse"]["vision_features"])
        assert torch.allclose(a["timestamps"], b["timestamps"])


def test_missing_or_stale_entries_are_extracted_online_and_written_back(world, block, tmp_path):
    _, train = world
    cache = FeatureCache(tmp_path / "cache")
    ds = InstructionDataset(train, block, cache, num_frames=4, write_back=True)
    first = ds[0]
    assert first["source"] == {"coarse": "online"}
    assert ds[0]["source"] == {"coarse": "cache"}  # written back by the first read
    reseeded = UPEBlock(list(build_experts(["coarse"], default_context(4), seed=7).values()))
    other = InstructionDataset(train, reseeded, cache, num_frames=4)
    item = other[0]  # another tower: the entry is stale for it
    assert item["source"] == {"coarse": "online"}
    assert not torch.equal(item["features"]["coarse"]["vision_features"], first["features"]["coarse"]["vision_features"])


def test_names_only_read_the_cache_as_it_is(world, block, tmp_path):
    _, train = world
    cache = FeatureCache(tmp_path / "cache")
    by_name = InstructionDataset(train, ["coarse"], cache, num_frames=4)
    with pytest.raises(CacheError, match=r"no valid cache entry for \['coarse'\].*run `uprm extract` first"):
        by_name[0]
    extract_features(by_name.clip_keys(), dict(block.experts), cache, progress=False)
    assert by_name[0]["features"]["coarse"]["vision_features"].shape == (4, 17, 64)
    with pytest.raises(ValueError, match="a cache is needed"):
        InstructionDataset(train, ["coarse"], None)


def test_filters_and_bad_records(world, block, tmp_path):
    _, train = world
    ds = InstructionDataset(train, block, None, num_frames=4, tasks=["locate"])
    assert len(ds) == 4 and {ds.items[i][0]["task"] for i in range(len(ds))} == {"locate"}
    assert len(InstructionDataset(train, block, None, split="test")) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "video": "x.mp4", "conversations": [{"from": "gpt", "value": "hi"}]}]))
    with pytest.raises(RecordError, match=r"bad\.json: record 0 \('x'\): no human turn"):
        InstructionDataset(bad, block)
    assert split_conversation({"conversations": [{"from": "human", "value": "<image>\nWhat?"}]}) == ("What?", None)


def _tiny_model():
    from uprm.modeling import UPRMConfig, build_model

    return build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=4))


def test_collator_builds_a_batch_the_model_trains_on(world, tmp_path):
    _, train = world
    model = _tiny_model()
    cache = FeatureCache(tmp_path / "cache")
    ds = InstructionDataset(train, model.block, cache, num_frames=4)
    extract_features(ds.clip_keys(), dict(model.block.experts), cache, progress=False)
    collate = UPRMCollator(model.collate, model.tokenize)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["features"]["coarse"]["vision_features"].shape == (3, 4, 17, 64)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["input_ids"].shape[0] == 3 and batch["num_frames"].tolist() == [4, 4, 4]
    assert batch["windows"].shape == (3, 2) and batch["ids"] == [ds[i]["id"] for i in range(3)]
    video_tokens = (batch["input_ids"] == model.video_token_id).sum(1)
    assert video_tokens.tolist() == [4 * 17] * 3
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                features=batch["features"], labels=batch["labels"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    generation = UPRMCollator(model.collate, model.tokenize, with_answers=False)([ds[0], ds[1]])
    assert "labels" not in generation and generation["answers"] == [ds[0]["answer"], ds[1]["answer"]]


def test_collator_errors_name_the_problem(world, block):
    _, train = world
    ds = InstructionDataset(train, block, None, num_frames=4)
    items = [ds[0], ds[1]]
    one_frame = dict(items[1], num_frames=1)
    with pytest.raises(ValueError, match=r"mixes clips of \[1, 4\] frames"):
        UPRMCollator(block.collate)([items[0], one_frame])
    unanswered = dict(items[1], answer=None)
    with pytest.raises(ValueError, match="have no answer to train on"):
        UPRMCollator(block.collate, lambda q, a, f: {})([items[0], unanswered])

    def bad_tokenize(questions, answers, frames):
        return {"input_ids": torch.zeros(5, 3, dtype=torch.long)}

    with pytest.raises(ValueError, match=r"'input_ids' of shape \(5, 3\); expected a batch dimension of 2"):
        UPRMCollator(block.collate, bad_tokenize)(items)
    plain = UPRMCollator(block.collate)(items)
    assert set(plain) >= {"features", "ids", "questions", "answers", "num_frames", "durations", "windows"}
    assert block(plain["features"]).z.shape == (2, 4 * 17, 32)
