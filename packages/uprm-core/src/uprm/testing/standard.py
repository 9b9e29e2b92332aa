"""The standard expert tests: every expert — the core's, each plugin's, and yours —
runs the same contract checks by subclassing :class:`ExpertTests`::

    from uprm.testing import ExpertTests
    from my_plugin.expert import MotionExpert

    class TestMotionExpert(ExpertTests):
        expert_class = MotionExpert
        expert_options = {"hidden": 16}

Override :meth:`ExpertTests.make_clip` when the expert needs more than pixels (a
keypoint file in ``clip.meta``, say), and :meth:`ExpertTests.make_context` for other
dimensions. The checks: the class contract; ``extract`` is frozen, detached and
deterministic; the output lies on the token grid for ``F`` and ``2F`` frames; gradients
reach every trainable parameter and no frozen one; batching and padding do not leak
between clips; the features actually drive the output; the output follows the model's
dtype; the adapter's state survives a safetensors round trip.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import pytest
import torch

from uprm.experts.base import GRANULARITIES, Expert, ExpertContext
from uprm.testing.fixtures import random_video_tokens, synthetic_clip, tiny_context
from uprm.types import VideoClip

__all__ = ["ExpertTests"]


def _tokens_for(expert: Expert, ctx: ExpertContext, batch: int, frames: int, seed: int = 0):
    if expert.granularity == "coarse":
        return None
    return random_video_tokens(ctx, batch, frames, seed=seed)


class ExpertTests:
    """Subclass as ``Test<Something>`` and set :attr:`expert_class`."""

    expert_class: ClassVar[type[Expert]]
    #: keyword options the expert is built with
    expert_options: ClassVar[dict[str, Any]] = {}
    #: regexes of trainable parameter names allowed to get no gradient in one backward
    no_grad_params: ClassVar[tuple[str, ...]] = ()
    #: absolute tolerance for "the same output"
    atol: ClassVar[float] = 1e-5

    # ------------------------------------------------------------------ hooks to override
    def make_context(self) -> ExpertContext:
        return tiny_context()

    def make_expert(self, ctx: ExpertContext) -> Expert:
        return self.expert_class(ctx, **self.expert_options)

    def make_clip(self, ctx: ExpertContext, seed: int, num_frames: int) -> VideoClip:
        return synthetic_clip(num_frames=num_frames, size=64, seed=seed)

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture
    def ctx(self) -> ExpertContext:
        return self.make_context()

    @pytest.fixture
    def expert(self, ctx: ExpertContext) -> Expert:
        torch.manual_seed(0)
        return self.make_expert(ctx)

    @pytest.fixture
    def clips(self, ctx: ExpertContext) -> list[VideoClip]:
        return [self.make_clip(ctx, seed=s, num_frames=ctx.num_frames) for s in (0, 1)]

    def _run(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip], seed: int = 0, tokens=None):
        batch = expert.collate([expert.extract(c) for c in clips])
        if tokens is None:
            tokens = _tokens_for(expert, ctx, len(clips), clips[0].num_frames, seed)
        return expert(batch, tokens), tokens

    # ------------------------------------------------------------------ the contract
    def test_class_contract(self, expert: Expert) -> None:
        cls = type(expert)
        assert issubclass(cls, Expert)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.name), f"bad expert name {cls.name!r}"
        assert cls.granularity in GRANULARITIES
        assert isinstance(expert.ctx, ExpertContext)

    def test_extract_is_frozen_and_detached(self, expert: Expert, clips: list[VideoClip]) -> None:
        features = expert.extract(clips[0])
        assert isinstance(features, dict) and features, "extract() must return a non-empty dict"
        for key, value in features.items():
            assert isinstance(key, str)
            assert isinstance(value, torch.Tensor), f"feature {key!r} is {type(value).__name__}, not a tensor"
            assert not value.requires_grad, f"feature {key!r} carries a graph"
            if value.is_floating_point():
                assert torch.isfinite(value).all(), f"feature {key!r} has NaN/inf"

    def test_extract_is_deterministic(self, expert: Expert, clips: list[VideoClip]) -> None:
        expert.train()  # perception must not depend on the adapter's mode
        first = expert.extract(clips[0])
        expert.eval()
        second = expert.extract(clips[0])
        assert first.keys() == second.keys()
        for key in first:
            assert torch.equal(first[key], second[key]), f"feature {key!r} differs between two extractions"

    def test_extract_changes_no_state(self, expert: Expert, clips: list[VideoClip]) -> None:
        before = {k: v.clone() for k, v in expert.state_dict().items()}
        expert.train()
        expert.extract(clips[0])
        after = expert.state_dict()
        for key, value in before.items():
            assert torch.equal(value, after[key]), f"extract() changed {key!r}"

    def test_perception_is_frozen(self, expert: Expert) -> None:
        expert.train()
        for name in expert.perception_names:
            module = getattr(expert, name)
            assert not module.training, f"perception module {name!r} is in training mode"
            for pname, p in module.named_parameters():
                assert not p.requires_grad, f"perception parameter {name}.{pname} requires grad"
        assert any(p.requires_grad for p in expert.parameters()), "the expert has no trainable adapter"

    @pytest.mark.parametrize("frame_factor", [1, 2])
    def test_output_on_token_grid(self, expert: Expert, ctx: ExpertContext, frame_factor: int) -> None:
        frames = ctx.num_frames * frame_factor
        clips = [self.make_clip(ctx, seed=s, num_frames=frames) for s in (0, 1)]
        expert.eval()
        with torch.no_grad():
            out, _ = self._run(expert, ctx, clips)
        assert isinstance(out, torch.Tensor)
        assert out.shape == (2, frames * ctx.tokens_per_frame, ctx.hidden_size)
        assert torch.isfinite(out).all()

    def test_gradients_reach_the_adapter_only(self, expert: Expert, ctx: ExpertContext, clips) -> None:
        expert.train()
        out, _ = self._run(expert, ctx, clips)
        out.float().square().mean().backward()
        perception = {f"{n}." for n in expert.perception_names}
        missing = []
        for name, p in expert.named_parameters():
            frozen = any(name.startswith(prefix) for prefix in perception)
            if frozen:
                assert p.grad is None, f"frozen parameter {name} received a gradient"
                continue
            if not p.requires_grad:
                continue
            allowed = any(re.search(rx, name) for rx in self.no_grad_params)
            flowing = p.grad is not None and bool(torch.isfinite(p.grad).all()) and bool(p.grad.abs().sum() > 0)
            if not flowing and not allowed:
                missing.append(name)
        assert not missing, f"no (finite, non-zero) gradient reached: {missing}"

    def test_batching_does_not_leak(self, expert: Expert, ctx: ExpertContext, clips) -> None:
        expert.eval()
        tokens = _tokens_for(expert, ctx, 2, ctx.num_frames, seed=3)
        with torch.no_grad():
            both, _ = self._run(expert, ctx, clips, tokens=tokens)
            for i, clip in enumerate(clips):
                alone, _ = self._run(expert, ctx, [clip], tokens=None if tokens is None else tokens[i : i + 1])
                torch.testing.assert_close(both[i], alone[0], atol=self.atol, rtol=1e-4)

    def test_features_drive_the_output(self, expert: Expert, ctx: ExpertContext, clips) -> None:
        expert.eval()
        tokens = _tokens_for(expert, ctx, 1, ctx.num_frames, seed=5)
        with torch.no_grad():
            a, _ = self._run(expert, ctx, clips[:1], tokens=tokens)
            b, _ = self._run(expert, ctx, clips[1:], tokens=tokens)
        assert not torch.allclose(a, b, atol=self.atol), "two different clips gave the same tokens"

    def test_output_follows_model_dtype(self, expert: Expert, ctx: ExpertContext, clips) -> None:
        expert.to(torch.float64).eval()
        tokens = _tokens_for(expert, ctx, 2, ctx.num_frames)
        if tokens is not None:
            tokens = tokens.double()
        with torch.no_grad():
            out, _ = self._run(expert, ctx, clips, tokens=tokens)
        assert out.dtype == torch.float64

    def test_save_load_round_trip(self, ctx: ExpertContext, clips, tmp_path) -> None:
        from safetensors.torch import load_file, save_file

        torch.manual_seed(0)
        trained = self.make_expert(ctx).eval()
        with torch.no_grad():  # "training": move every adapter parameter
            for _name, p in trained.named_parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p) * 0.1)
        state = trained.trainable_state_dict()
        assert state, "trainable_state_dict() is empty"
        assert not any(
            k.startswith(f"{n}.") for k in state for n in trained.perception_names
        ), "frozen perception leaked into the trainable state"
        path = tmp_path / "expert.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))

        torch.manual_seed(0)
        fresh = self.make_expert(ctx).eval()
        tokens = _tokens_for(fresh, ctx, 2, ctx.num_frames, seed=7)
        with torch.no_grad():
            expected, _ = self._run(trained, ctx, clips, tokens=tokens)
            before, _ = self._run(fresh, ctx, clips, tokens=tokens)
            assert not torch.allclose(before, expected), "perturbing the adapter did not change the output"
            fresh.load_trainable_state_dict(load_file(str(path)))
            after, _ = self._run(fresh, ctx, clips, tokens=tokens)
        torch.testing.assert_close(after, expected, atol=self.atol, rtol=1e-5)

    def test_extraction_config_is_json(self, expert: Expert) -> None:
        config = expert.extraction_config()
        assert config["expert"] == expert.name
        json.dumps(config)
