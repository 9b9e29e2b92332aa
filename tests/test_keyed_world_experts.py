"""The keyed world (``uprm data synthetic --design keyed``) as the installed experts see it:
for every pair, the features each real expert extracts from the threat's clip and from
its twin's are identical except where design.json says the pair differs — the pose
expert alone tells Fighting from its dance, the relation expert alone tells Stealing from
picking up one's own bag, and the two pixel experts (background, coarse) tell Arson and
the car crash from their twins. So a coarse-only model sees the same inputs for a
pose- or relation-keyed threat and its twin."""

from __future__ import annotations

import json

import pytest
import torch

from uprm.data import clip_from_record, load_records
from uprm.plugins.factory import build_experts
from uprm.synthetic import generate_world
from uprm.testing import tiny_context

EXPERTS = ("pose", "relation", "background", "coarse")
#: which experts read each channel's input (the two pixel channels reach both pixel experts)
READERS = {"pose": {"pose"}, "relation": {"relation"}, "background": {"background", "coarse"},
           "coarse": {"background", "coarse"}}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    out = tmp_path_factory.mktemp("keyed-world")
    generate_world(out, 8, seed=0, progress=False, design="keyed", size=48, min_duration=6.0, max_duration=7.0,
                   splits=(0.0, 0.0, 1.0))
    records = {r["video_id"]: r for r in load_records(out / "instructions" / "synthetic_test.json")
               if r["task"] == "identify"}
    return json.loads((out / "design.json").read_text()), records


def test_each_pair_differs_only_in_the_features_of_the_experts_reading_its_channel(keyed):
    design, records = keyed
    experts = build_experts(EXPERTS, tiny_context(num_frames=8))
    assert len(design["pairs"]) == 4
    for pair in design["pairs"]:
        features = {role: {name: e.extract(clip_from_record(records[pair[role]], 8)) for name, e in experts.items()}
                    for role in ("threat", "twin")}
        differ = {name for name in EXPERTS
                  if any(not torch.equal(features["threat"][name][k], features["twin"][name][k])
                         for k in features["threat"][name])}
        assert differ == READERS[pair["channel"]], (pair["category"], differ)
