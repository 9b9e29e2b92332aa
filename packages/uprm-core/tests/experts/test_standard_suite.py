"""The standard expert tests themselves: they run on the core's small real expert, notice
an expert that cannot tell frame order, check exact equivariance where an expert declares
it with a reason, and cannot be dropped silently."""

import pytest
import torch

from uprm.experts.coarse import CoarseExpert
from uprm.experts.grid import broadcast_frames
from uprm.testing import ColourExpert, ExpertTests


class TestColourExpert(ExpertTests):
    expert_class = ColourExpert


class OrderBlindExpert(ColourExpert):
    """ColourExpert without frame positions: every frame is processed alike."""

    name = "order_blind"

    def forward(self, features, video_tokens):
        colour = features["colour"].to(self.mix.weight.dtype)
        return broadcast_frames(self.mlp(colour), self.ctx.tokens_per_frame) + self.mix(video_tokens)


def run(suite_cls, test_name: str) -> None:
    """Run one standard test of ``suite_cls`` by hand, with the fixtures it would get."""
    suite = suite_cls()
    ctx = suite.make_context()
    torch.manual_seed(0)
    expert = suite.make_expert(ctx)
    clips = [suite.make_clip(ctx, seed=s, num_frames=ctx.num_frames) for s in (0, 1)]
    getattr(suite, test_name)(expert=expert, ctx=ctx, clips=clips)


def test_an_expert_blind_to_frame_order_fails_the_frame_order_test():
    class Blind(ExpertTests):
        expert_class = OrderBlindExpert

    with pytest.raises(AssertionError, match=r"'order_blind' cannot tell frame order.*add_frame_positions"):
        run(Blind, "test_frame_order_matters")


def test_a_declared_equivariant_expert_must_be_exactly_equivariant():
    class BlindByDesign(ExpertTests):
        expert_class = OrderBlindExpert
        frame_order_equivariant = "processes every frame alike, on purpose"

    run(BlindByDesign, "test_frame_order_matters")

    class Claims(ExpertTests):  # frame-aware, but claims equivariance
        expert_class = ColourExpert
        frame_order_equivariant = "wrong claim"

    with pytest.raises(AssertionError, match=r"not equal|Mismatched"):
        run(Claims, "test_frame_order_matters")

    class NoReason(ExpertTests):
        expert_class = OrderBlindExpert
        frame_order_equivariant = "  "

    with pytest.raises(AssertionError, match="must be a reason"):
        run(NoReason, "test_frame_order_matters")


def test_a_swap_that_changes_no_feature_is_reported():
    class Coarse(ExpertTests):
        expert_class = CoarseExpert
        frame_order_equivariant = "per token"

        def swap_frames(self, features, i, j, num_frames):
            return dict(features)

    with pytest.raises(AssertionError, match="swap_frames\\(\\) changed no feature"):
        run(Coarse, "test_frame_order_matters")


def test_standard_tests_cannot_be_dropped_silently():
    class Dropped(ExpertTests):
        expert_class = ColourExpert
        test_frame_order_matters = None

    class NoOp(ExpertTests):
        expert_class = ColourExpert

        def test_gradients_reach_the_adapter_only(self, expert, ctx, clips):
            pass

    class SkippedWithoutReason(ExpertTests):
        expert_class = ColourExpert

        @pytest.mark.skip
        def test_batching_does_not_leak(self, expert, ctx, clips):
            pass

    for suite, problem in (
        (Dropped, "test_frame_order_matters was removed"),
        (NoOp, "test_gradients_reach_the_adapter_only is overridden without"),
        (SkippedWithoutReason, "test_batching_does_not_leak is overridden without"),
    ):
        with pytest.raises(AssertionError, match=problem):
            suite().test_standard_tests_are_kept()

    class ExpectedFailure(ExpertTests):
        expert_class = ColourExpert

        @pytest.mark.xfail(reason="this expert's output is float32 whatever the model's dtype (issue 99)")
        def test_output_follows_model_dtype(self, expert, ctx, clips):
            super().test_output_follows_model_dtype(expert, ctx, clips)

        @pytest.mark.skip("needs a GPU")
        def test_batching_does_not_leak(self, expert, ctx, clips):
            pass

    ExpectedFailure().test_standard_tests_are_kept()
    TestColourExpert().test_standard_tests_are_kept()

    with pytest.raises(TypeError, match="guards the standard tests"):

        class Sneaky(ExpertTests):
            expert_class = ColourExpert

            def test_standard_tests_are_kept(self):
                pass
