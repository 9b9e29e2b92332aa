"""The adapter: eq.4 on a hand-made graph, object masking, empty graphs, predicates, the
paper form and the residual form, frame positions, the checkpoint layout."""

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
    c = expert.adapter.adjacency(feats["relations"][0, 0], feats["relation_scores"][0, 0])
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
    layer = expert.adapter.layers[0]
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
        expert.adapter.predicate_strength[expert.predicates.id("near")] = math.log(math.e**2 - 1)  # softplus = 2
    feats = features(expert, [hand_graph()])
    c = expert.adapter.adjacency(feats["relations"][0, 0], feats["relation_scores"][0, 0])
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
        out = expert(feats, h)  # the paper form: FFN(F^(L)) on the grid, nothing of h added
        concealed = h.clone().view(1, CTX.num_frames, tpf, -1)
        concealed[:, :, outside] = torch.randn_like(concealed[:, :, outside]) * 5
        torch.testing.assert_close(expert(feats, concealed.view_as(h)), out)  # nothing outside the box counts
        shown = h.clone().view(1, CTX.num_frames, tpf, -1)
        shown[:, :, inside[0]] += 3.0
        assert not torch.allclose(expert(feats, shown.view_as(h)), out)
    # scatter: the object's tokens carry it, the rest of the frame its mean (here the same object)
    d = out.view(CTX.num_frames, tpf, -1)
    torch.testing.assert_close(d[:, inside[0]], 2 * d[:, outside[0]])


def test_the_paper_form_is_the_default_and_the_residual_form_an_option():
    """Default: Y_s = FFN(F^(L)) on the grid (the coarse tokens are not in the output);
    residual=True: video_tokens + the same Y_s (same weights), for both grids."""
    feats = features(make(), [hand_graph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=6)
    for grid in ("scatter", "attention"):
        paper, residual = make(grid, num_heads=4), make(grid, num_heads=4, residual=True)
        assert paper.options["residual"] is False and residual.options["residual"] is True
        assert paper.trainable_state_dict().keys() == residual.trainable_state_dict().keys()
        with torch.no_grad():
            torch.testing.assert_close(residual(feats, h), h + paper(feats, h))
    empty = features(make(), [FrameGraph()] * CTX.num_frames)
    with torch.no_grad():
        assert make()(empty, h).eq(0).all()  # no object: the relation expert has nothing to say
        assert torch.equal(make(residual=True)(empty, h), h)


def test_each_node_knows_its_frame():
    """The same graph in every frame: the nodes differ only by their frame's position, and
    so does the output (uprm.experts.grid.add_frame_positions)."""
    from uprm.experts.grid import frame_positions

    expert = make()
    feats = features(expert, [hand_graph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=7).view(1, CTX.num_frames, CTX.tokens_per_frame, -1)[:, :1]
    h = h.expand(1, CTX.num_frames, -1, -1).reshape(1, -1, CTX.hidden_size)  # frame 0's tokens everywhere
    adapter = expert.adapter
    f = {k: v for k, v in feats.items()}
    with torch.no_grad():
        cover = adapter.cover(f["grid_boxes"], f["object_mask"])
        region = torch.bmm(cover / cover.sum(-1, keepdim=True).clamp(min=1), h.view(CTX.num_frames, 17, -1))
        nodes = adapter.nodes(f, region.view(1, CTX.num_frames, 4, -1))
        out = expert(feats, h).view(CTX.num_frames, CTX.tokens_per_frame, -1)
    real = f["object_mask"][0, 0]
    expected = (frame_positions(CTX.num_frames, 16) - frame_positions(CTX.num_frames, 16)[:1])[:, None]
    torch.testing.assert_close((nodes - nodes[:, :1])[0][:, real], expected.expand(-1, int(real.sum()), -1))
    assert not torch.allclose(out[1], out[0])


def test_frames_without_objects_or_edges_work():
    expert = make()
    empty = features(expert, [FrameGraph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=2)
    lonely = [FrameGraph(), FrameGraph([GraphObject("person", (0, 0, 1, 1)), GraphObject("car", (0, 0, 0.2, 0.2))])]
    lonely += [FrameGraph()] * (CTX.num_frames - 2)
    feats = features(expert, lonely)
    assert feats["relations"].eq(0).all()
    with torch.no_grad():
        out = expert(feats, h)
    assert torch.isfinite(out).all()
    per_frame = out.view(CTX.num_frames, CTX.tokens_per_frame, -1).abs().sum((1, 2))
    assert per_frame[0] == 0 and per_frame[1] > 0 and per_frame[2:].eq(0).all()
    attention = make(grid="attention", num_heads=4)
    with torch.no_grad():
        out = attention(empty, h)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, out[:, :1].expand_as(out))  # the null key: the same for every token


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
    assert all(k.startswith("adapter.") for k in state)
    assert "adapter.predicate_strength" in state and any(k.startswith("adapter.layers.1.") for k in state)
    assert len(expert.adapter.layers) == 2 and expert.adapter.grid == "scatter" and expert.adapter.cross is None
    assert {k.split(".")[1] for k in state} == {
        "region_proj", "label_embed", "box_embed", "subject_embed", "object_embed", "predicate_strength",
        "node_norm", "layers", "ffn",
    }  # fmt: skip


def test_a_checkpoint_of_the_adapter_round_trips(tmp_path):
    from safetensors.torch import load_file, save_file

    trained = make(grid="attention", num_heads=4)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_file({k: v.contiguous() for k, v in trained.trainable_state_dict().items()}, str(tmp_path / "r.safetensors"))
    fresh = make(grid="attention", num_heads=4)
    fresh.load_trainable_state_dict(load_file(str(tmp_path / "r.safetensors")))
    feats = features(fresh, [hand_graph()] * CTX.num_frames)
    h = random_video_tokens(CTX, 1, seed=8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(feats, h), trained(feats, h))
    assert any(k.startswith("adapter.cross.") for k in fresh.trainable_state_dict())


def test_bad_adapter_options_are_reported():
    with pytest.raises(ValueError, match="grid must be one of"):
        RelationExpert(CTX, grid="dense")
    with pytest.raises(ValueError, match="node_dim must be a positive int"):
        RelationExpert(CTX, node_dim=0)
