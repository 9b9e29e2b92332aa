"""The adapter: eq.4 on a hand-made graph, object masking, empty graphs, predicates."""

import math

import pytest
import torch

from uprm.testing import random_video_tokens, tiny_context
from uprm_expert_relation import RelationExpert
from uprm_expert_relation.graph import FrameGraph, GraphObject, Relation, encode_graphs

CTX = tiny_context()  # D = 32, 4 frames of 1 + 4x4 tokens


def make(grid="scatter", **options):
    torch.manual_seed(0)
    return RelationExpert(CTX, node_dim=16, ffn_dim=32, max_objects=4, grid=grid, **options).eval()


def features(expert, graphs, size=(64, 64)):
    """One clip's graphs → a batch of one."""
    out = encode_graphs(graphs, expert.labels, expert.predicates, expert.max_objects, expert.max_relations, size)
    return {k: v.unsqueeze(0) for k, v in out.items()}


def hand_graph():
    """person —holding(1.0)→ bag, bag —near(0.5)→ door: a path of three nodes (+ one padding slot)."""
    objects = [
        GraphObject("person", (0.0, 0.0, 0.5, 0.5), 0.9),
        GraphObject("bag", (0.5, 0.0, 1.0, 0.5), 0.8),
        GraphObject("door", (0.0, 0.5, 0.5, 1.0), 0.7),
    ]
    return FrameGraph(objects, [Relation(0, "holding", 1, 1.0), Relation(1, "near", 2, 0.5)])


def test_normalised_adjacency_matches_eq4_on_a_hand_made_graph():
    expert = make()
    feats = features(expert, [hand_graph()])
    c = expert.adjacency(feats["relations"][0, 0], feats["relation_scores"][0, 0])
    # C without self-loops: the relations' scores (every predicate's strength is 1 at start), both ways
    expected_c = torch.tensor([[0, 1, 0, 0], [1, 0, 0.5, 0], [0, 0.5, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(c, expected_c)
    # eq.4 with C + I: degrees 2, 2.5, 1.5, so D^-1/2 C D^-1/2 is, entry by entry:
    a_hat = torch.tensor(
        [
            [1 / 2, 1 / math.sqrt(5), 0],
            [1 / math.sqrt(5), 1 / 2.5, 0.5 / math.sqrt(3.75)],
            [0, 0.5 / math.sqrt(3.75), 1 / 1.5],
        ]
    )
    layer = expert.layers[0]
    x = torch.randn(1, 4, 16)
    mask = torch.tensor([[True, True, True, False]])
    with torch.no_grad():
        out = layer(x, c.unsqueeze(0), mask, add_loop=True)
        expected = a_hat @ x[0, :3] @ layer.lin.weight.T  # eq.5 before σ: Z W, no bias
    torch.testing.assert_close(out[0, :3], expected, atol=1e-5, rtol=1e-5)
    assert out[0, 3].eq(0).all()  # the padding slot stays empty
    assert layer.bias is None


def test_learned_predicate_strength_weights_the_edges():
    expert = make()
    with torch.no_grad():
        expert.predicate_strength[expert.predicates.id("near")] = math.log(math.e**2 - 1)  # softplus = 2
    feats = features(expert, [hand_graph()])
    c = expert.adjacency(feats["relations"][0, 0], feats["relation_scores"][0, 0])
    assert c[1, 2].item() == pytest.approx(1.0) and c[0, 1].item() == pytest.approx(1.0)


def test_object_masking_keeps_only_what_is_under_the_boxes():
    expert = make()
    graphs = [FrameGraph([GraphObject("person", (0.0, 0.0, 0.5, 0.5))])] * CTX.num_frames
    feats = features(expert, graphs)
    h = random_video_tokens(CTX, 1, seed=1)
    tpf = CTX.tokens_per_frame
    inside = [1 + r * 4 + c for r in (0, 1) for c in (0, 1)]  # the top-left 2x2 patches of each frame
    outside = [t for t in range(tpf) if t not in inside]  # the CLS slot and the other patches
    with torch.no_grad():
        delta = expert(feats, h) - h
        concealed = h.clone().view(1, CTX.num_frames, tpf, -1)
        concealed[:, :, outside] = torch.randn_like(concealed[:, :, outside]) * 5
        concealed = concealed.view_as(h)
        delta_concealed = expert(feats, concealed) - concealed
        torch.testing.assert_close(delta_concealed, delta)  # nothing outside the box reaches the graph
        shown = h.clone().view(1, CTX.num_frames, tpf, -1)
        shown[:, :, inside[0]] += 3.0
        delta_shown = expert(feats, shown.view_as(h)) - shown.view_as(h)
    assert not torch.allclose(delta_shown, delta)
    # scatter: the object's tokens carry it, the rest of the frame its mean (here the same object)
    d = delta.view(CTX.num_frames, tpf, -1)
    torch.testing.assert_close(d[:, inside[0]], 2 * d[:, outside[0]])


def test_frames_without_objects_or_edges_work():
    expert = make()
    empty = features(expert, [FrameGraph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=2)
    with torch.no_grad():
        assert torch.equal(expert(empty, h), h)  # no object: nothing added
    lonely = [FrameGraph(), FrameGraph([GraphObject("person", (0, 0, 1, 1)), GraphObject("car", (0, 0, 0.2, 0.2))])]
    lonely += [FrameGraph()] * (CTX.num_frames - 2)
    feats = features(expert, lonely)
    assert feats["relations"].eq(0).all()
    with torch.no_grad():
        out = expert(feats, h)
    assert torch.isfinite(out).all()
    per_frame = (out - h).view(CTX.num_frames, CTX.tokens_per_frame, -1).abs().sum((1, 2))
    assert per_frame[0] == 0 and per_frame[1] > 0 and per_frame[2:].eq(0).all()
    attention = make(grid="attention", num_heads=4)
    with torch.no_grad():
        delta = attention(empty, h) - h
    assert torch.isfinite(delta).all()
    torch.testing.assert_close(delta, delta[:, :1].expand_as(delta))  # the null key: the same for every token


def test_the_predicate_reaches_the_tokens():
    expert = make()
    h = random_video_tokens(CTX, 1, seed=3)
    outs = []
    for predicate in ("holding", "hitting", "glorping"):
        graph = hand_graph()
        graph.relations[0] = Relation(0, predicate, 1, 1.0)
        with torch.no_grad():
            outs.append(expert(features(expert, [graph] * CTX.num_frames), h))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


def test_output_follows_the_tokens_dtype():
    expert = make()
    feats = features(expert, [hand_graph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=4).to(torch.bfloat16)
    with torch.no_grad():
        out = expert(feats, h)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_mismatched_inputs_are_clear_errors():
    expert = make()
    feats = features(expert, [hand_graph()] * 2)
    with pytest.raises(ValueError, match=r"features are for \(1, 2\) \(batch, frames\), the video tokens for \(1, 4\)"):
        expert(feats, random_video_tokens(CTX, 1))
    with pytest.raises(KeyError, match="lack \\['relations'\\]"):
        expert({k: v for k, v in feats.items() if k != "relations"}, random_video_tokens(CTX, 1, num_frames=2))
    with pytest.raises(ValueError, match="needs the coarse video tokens"):
        expert(feats, None)


def test_default_expert_builds_without_files_and_checkpoints_only_the_adapter():
    expert = RelationExpert(CTX)
    assert expert.perception_names == ()
    state = expert.trainable_state_dict()
    assert "predicate_strength" in state and any(k.startswith("layers.1.") for k in state)
    assert len(expert.layers) == 2 and expert.grid == "scatter"
