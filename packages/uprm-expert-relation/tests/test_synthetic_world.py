"""The relation expert on UPRM's synthetic surveillance world (uprm data synthetic)."""

import warnings

import pytest
import torch

from uprm.data import load_clip
from uprm.synthetic import generate_world
from uprm.testing import random_video_tokens, tiny_context
from uprm_expert_relation import RelationExpert
from uprm_expert_relation.scene_graph import read_scene_graph


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    generate_world(out, 3, seed=0, progress=False)
    return out


def test_the_world_speaks_the_expert_vocabulary(world):
    expert = RelationExpert(tiny_context(), node_dim=8)
    labels, predicates = set(), set()
    for path in sorted((world / "scene_graphs").glob("*.json")):
        for frame in read_scene_graph(path).frames.values():
            labels |= {o.label for o in frame.objects}
            labels |= {e.label for t in frame.triplets for e in (t.subject, t.object)}
            predicates |= {t.predicate for t in frame.triplets}
    assert labels and predicates
    assert [x for x in sorted(labels) if not expert.labels.is_known(x)] == []
    assert [x for x in sorted(predicates) if not expert.predicates.is_known(x)] == []


def test_a_world_clip_runs_from_video_and_scene_graph(world):
    ctx = tiny_context(num_frames=8)
    expert = RelationExpert(ctx, node_dim=16).eval()
    video = sorted((world / "videos").glob("*.mp4"))[0]
    clip = load_clip(video, num_frames=8)
    clip.meta["scene_graph"] = str(world / "scene_graphs" / f"{video.stem}.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the world's files need no repair
        feats = expert.extract(clip)
    assert feats["object_mask"].sum(1).min() > 0  # every sampled frame matched a graph with objects
    assert feats["relations"].gt(0).any()
    tokens = random_video_tokens(ctx, 1, num_frames=8)
    with torch.no_grad():
        out = expert(expert.collate([feats]), tokens)
    assert out.shape == tokens.shape and torch.isfinite(out).all()
