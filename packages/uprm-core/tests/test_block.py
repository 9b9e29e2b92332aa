"""The UPE block: expert order, shape checks that name the expert, router kinds, the
z-loss and per-expert weights, and end-to-end gradients."""

import pytest
import torch

import uprm
from uprm.experts.coarse import CoarseExpert
from uprm.testing import ColourExpert, synthetic_clip, tiny_context


class AlphaExpert(ColourExpert):
    name = "alpha"


class ZetaExpert(ColourExpert):
    name = "zeta"


class BadShapeExpert(ColourExpert):
    name = "bad_shape"

    def forward(self, features, video_tokens):
        return super().forward(features, video_tokens)[:, :-1]


class BadDtypeExpert(ColourExpert):
    name = "bad_dtype"

    def forward(self, features, video_tokens):
        return super().forward(features, video_tokens).double()


class NotATensorExpert(ColourExpert):
    name = "not_a_tensor"

    def forward(self, features, video_tokens):
        return [super().forward(features, video_tokens)]


class SecondCoarse(ColourExpert):
    name = "second_coarse"
    granularity = "coarse"


@pytest.fixture
def ctx():
    return tiny_context()


def make_block(ctx, fine_classes, router="tradeoff"):
    torch.manual_seed(0)
    experts = [cls(ctx) for cls in fine_classes] + [CoarseExpert(ctx)]
    return uprm.UPEBlock(experts, router=router)


def batch_for(block, clips):
    return block.collate([block.extract(c) for c in clips])


def test_expert_order_is_sorted_fine_then_coarse(ctx):
    block = make_block(ctx, [ZetaExpert, ColourExpert, AlphaExpert])
    assert block.expert_names == ("alpha", "colour", "zeta", "coarse")
    assert list(block.experts) == list(block.expert_names)
    assert block.router.num_fine == 3


@pytest.mark.parametrize("fine", [[], [AlphaExpert], [AlphaExpert, ColourExpert, ZetaExpert]])
def test_forward_shapes_weights_and_z_loss(ctx, fine):
    block = make_block(ctx, fine)
    clips = [synthetic_clip(ctx.num_frames, seed=s) for s in (0, 1)]
    out = block(batch_for(block, clips))
    n = len(fine)
    t = ctx.num_frames * ctx.tokens_per_frame
    assert out.z.shape == (2, t, ctx.hidden_size)
    assert out.router_logits.shape == (2, t, n + 1)
    assert out.expert_weights.shape == (2, t, n + 1)
    assert out.expert_names == block.expert_names
    # weights as eq.6 reads them: fine R_i = p_i, coarse 1 - max R_i
    p = torch.softmax(out.router_logits.float(), -1)
    gate = p[..., :n].max(-1).values if n else torch.zeros_like(p[..., 0])
    torch.testing.assert_close(out.expert_weights[..., :n], p[..., :n])
    torch.testing.assert_close(out.expert_weights[..., -1], 1 - gate)
    torch.testing.assert_close(out.z_loss, uprm.tradeoff_z_loss(out.router_logits))


def test_z_loss_is_masked_to_real_tokens(ctx):
    block = make_block(ctx, [AlphaExpert])
    clips = [synthetic_clip(ctx.num_frames, seed=s) for s in (0, 1)]
    batch = batch_for(block, clips)
    t = ctx.num_frames * ctx.tokens_per_frame
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, t // 2 :] = False
    out = block(batch, token_mask=mask)
    torch.testing.assert_close(out.z_loss, uprm.tradeoff_z_loss(out.router_logits, mask))
    assert not torch.allclose(out.z_loss, uprm.tradeoff_z_loss(out.router_logits))


def test_basic_router_has_no_z_loss_and_weights_sum_to_one(ctx):
    block = make_block(ctx, [AlphaExpert, ZetaExpert], router="basic")
    out = block(batch_for(block, [synthetic_clip(ctx.num_frames)]))
    assert out.z_loss is None
    torch.testing.assert_close(out.expert_weights.sum(-1), torch.ones(out.z.shape[:2]))


def test_z_is_the_weighted_mix_of_the_expert_outputs(ctx):
    block = make_block(ctx, [AlphaExpert, ZetaExpert]).eval()
    batch = batch_for(block, [synthetic_clip(ctx.num_frames)])
    out = block(batch)
    h = out.coarse_tokens
    e = [block.experts[n](batch[n], h) for n in ("alpha", "zeta")]
    w = out.expert_weights
    expected = w[..., 0:1] * e[0] + w[..., 1:2] * e[1] + w[..., 2:3] * h
    torch.testing.assert_close(out.z, expected)


def test_unknown_router_kind(ctx):
    with pytest.raises(ValueError, match="unknown router 'sparse'"):
        make_block(ctx, [], router="sparse")


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (BadShapeExpert, r"expert 'bad_shape' \(.*\) returned shape \(1, 67, 32\)"),
        (BadDtypeExpert, r"expert 'bad_dtype' \(.*\) returned dtype torch.float64"),
        (NotATensorExpert, r"expert 'not_a_tensor' \(.*\) returned list"),
    ],
)
def test_a_wrong_output_is_an_error_naming_the_expert(ctx, cls, message):
    block = make_block(ctx, [AlphaExpert, cls])
    with pytest.raises(uprm.ExpertOutputError, match=message):
        block(batch_for(block, [synthetic_clip(ctx.num_frames)]))


def test_a_block_needs_exactly_one_coarse_expert(ctx):
    with pytest.raises(ValueError, match="exactly one coarse expert, got 0"):
        uprm.UPEBlock([AlphaExpert(ctx)])
    with pytest.raises(ValueError, match=r"got 2: \['coarse', 'second_coarse'\]"):
        uprm.UPEBlock([CoarseExpert(ctx), SecondCoarse(ctx)])


def test_missing_features_name_the_expert(ctx):
    block = make_block(ctx, [AlphaExpert])
    batch = batch_for(block, [synthetic_clip(ctx.num_frames)])
    del batch["alpha"]
    with pytest.raises(KeyError, match="no features for expert 'alpha'"):
        block(batch)


def test_gradients_reach_router_adapters_and_projector_but_not_the_tower(ctx):
    block = make_block(ctx, [AlphaExpert, ZetaExpert]).train()
    out = block(batch_for(block, [synthetic_clip(ctx.num_frames, seed=s) for s in (0, 1)]))
    (out.z.square().mean() + 0.05 * out.z_loss).backward()
    for name, p in block.named_parameters():
        if name.startswith("experts.coarse.tower."):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_block_never_looks_names_up():
    """The block is pure torch: it receives built experts (the plugin layer's
    build_experts turns names into experts)."""
    assert not hasattr(uprm.UPEBlock, "from_names")
    with pytest.raises(TypeError, match=r"is not an uprm\.Expert"):
        uprm.UPEBlock(["coarse"])


def test_variable_frame_count_in_one_model(ctx):
    block = make_block(ctx, [AlphaExpert])
    out = block(batch_for(block, [synthetic_clip(2 * ctx.num_frames)]))
    assert out.z.shape[1] == 2 * ctx.num_frames * ctx.tokens_per_frame
