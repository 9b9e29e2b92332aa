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
between clips; the features actually drive the output; frame order matters (swapping
two frames changes the output, not merely permutes it); the output follows the model's
dtype; the adapter's state survives a safetensors round trip.

Frame order. A fine expert must know which frame is which — a fight and the same
frames played backwards are different clips — so the standard test swaps two frames in
the features and in the video tokens together and requires ``out(swapped) !=
swap(out)``. :func:`uprm.experts.grid.add_frame_positions` gives an adapter that
notion in one line. An expert that is frame-order-equivariant *by design* (the coarse
expert is Video-LLaVA's per-token projector) says so with a reason::

    class TestMyExpert(ExpertTests):
        frame_order_equivariant = "a per-token projector, as Video-LLaVA's"

and the test then checks exact equivariance instead — it never silently skips. Features
whose frames are not on dim 1 after ``collate`` need :meth:`ExpertTests.swap_frames`.

The standard tests cannot be dropped silently: a subclass that overrides one (or sets
it to ``None``) fails :meth:`ExpertTests.test_standard_tests_are_kept` unless the
override is marked ``@pytest.mark.xfail(reason=...)`` (or ``skip``/``skipif`` with a
reason), as LangChain's standard tests require. Add your own checks as new tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from uprm.experts.base import GRANULARITIES, Expert, ExpertContext
from uprm.testing.fixtures import random_video_tokens, synthetic_clip, tiny_context
from uprm.types import VideoClip

__all__ = ["ExpertTests"]


def _tokens_for(expert: Expert, ctx: ExpertContext, batch: int, frames: int, seed: int = 0) -> torch.Tensor | None:
    if expert.granularity == "coarse":
        return None
    return random_video_tokens(ctx, batch, frames, seed=seed)


def _swap(x: torch.Tensor, dim: int, i: int, j: int) -> torch.Tensor:
    order = list(range(x.shape[dim]))
    order[i], order[j] = j, i
    return x.index_select(dim, torch.tensor(order, device=x.device))


def swap_token_frames(tokens: torch.Tensor, tokens_per_frame: int, i: int, j: int) -> torch.Tensor:
    """``[B, F × tokens_per_frame, D]`` with the tokens of frames ``i`` and ``j`` swapped."""
    b, t, d = tokens.shape
    return _swap(tokens.reshape(b, t // tokens_per_frame, tokens_per_frame, d), 1, i, j).reshape(b, t, d)


def _marked_with_reason(test: Any) -> bool:
    """Whether ``test`` carries an ``xfail``/``skip``/``skipif`` mark with a non-empty reason."""
    for mark in getattr(test, "pytestmark", []):
        if mark.name not in ("xfail", "skip", "skipif"):
            continue
        reason = mark.kwargs.get("reason")
        if reason is None and mark.name == "skip" and mark.args:
            reason = mark.args[0]
        if isinstance(reason, str) and reason.strip():
            return True
    return False


def _standard_tests() -> dict[str, Any]:
    return {k: v for k, v in vars(ExpertTests).items() if k.startswith("test_")}


class ExpertTests:
    """Subclass as ``Test<Something>`` and set :attr:`expert_class`."""

    expert_class: ClassVar[type[Expert]]
    #: keyword options the expert is built with
    expert_options: ClassVar[dict[str, Any]] = {}
    #: regexes of trainable parameter names allowed to get no gradient in one backward
    no_grad_params: ClassVar[tuple[str, ...]] = ()
    #: absolute tolerance for "the same output"
    atol: ClassVar[float] = 1e-5
    #: ``None``: the output must depend on frame order. An expert equivariant to frame
    #: order by design sets the reason here (a non-empty string); the frame-order test
    #: then checks that swapping two frames only swaps their output tokens.
    frame_order_equivariant: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "test_standard_tests_are_kept" in vars(cls):
            raise TypeError(f"{cls.__qualname__}: test_standard_tests_are_kept guards the standard tests; do not override it")

    # ------------------------------------------------------------------ hooks to override
    def make_context(self) -> ExpertContext:
        return tiny_context()

    def make_expert(self, ctx: ExpertContext) -> Expert:
        return self.expert_class(ctx, **self.expert_options)

    def make_clip(self, ctx: ExpertContext, seed: int, num_frames: int) -> VideoClip:
        return synthetic_clip(num_frames=num_frames, size=64, seed=seed)

    def swap_frames(self, features: Mapping[str, torch.Tensor], i: int, j: int, num_frames: int) -> dict:
        """Batched features with frames ``i`` and ``j`` swapped. The default swaps dim 1
        (``[B, F, ...]``, what ``collate`` gives) of every tensor with ``num_frames``
        there; override it for features laid out otherwise."""
        return {
            k: _swap(v, 1, i, j) if isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[1] == num_frames else v
            for k, v in features.items()
        }

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

    def _run(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip], seed: int = 0,
             tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
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

    def test_gradients_reach_the_adapter_only(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip]) -> None:
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

    def test_batching_does_not_leak(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip]) -> None:
        expert.eval()
        tokens = _tokens_for(expert, ctx, 2, ctx.num_frames, seed=3)
        with torch.no_grad():
            both, _ = self._run(expert, ctx, clips, tokens=tokens)
            for i, clip in enumerate(clips):
                alone, _ = self._run(expert, ctx, [clip], tokens=None if tokens is None else tokens[i : i + 1])
                torch.testing.assert_close(both[i], alone[0], atol=self.atol, rtol=1e-4)

    def test_features_drive_the_output(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip]) -> None:
        expert.eval()
        tokens = _tokens_for(expert, ctx, 1, ctx.num_frames, seed=5)
        with torch.no_grad():
            a, _ = self._run(expert, ctx, clips[:1], tokens=tokens)
            b, _ = self._run(expert, ctx, clips[1:], tokens=tokens)
        assert not torch.allclose(a, b, atol=self.atol), "two different clips gave the same tokens"

    def test_frame_order_matters(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip]) -> None:
        """Swap the first and last frame in the features and the video tokens together:
        the output must not merely be the swapped output (``frame_order_equivariant``
        experts: it must be exactly that)."""
        expert.eval()
        f, tpf = ctx.num_frames, ctx.tokens_per_frame
        features = expert.collate([expert.extract(c) for c in clips])
        tokens = _tokens_for(expert, ctx, len(clips), f, seed=11)
        swapped = self.swap_frames(features, 0, f - 1, f)
        moved = [k for k in features if not torch.equal(features[k], swapped[k])]
        assert moved or tokens is not None, "swap_frames() changed no feature: override it for this layout"
        with torch.no_grad():
            out = expert(features, tokens)
            out_swapped = expert(swapped, None if tokens is None else swap_token_frames(tokens, tpf, 0, f - 1))
        expected = swap_token_frames(out, tpf, 0, f - 1)
        reason = self.frame_order_equivariant
        if reason is None:
            assert not torch.allclose(out_swapped, expected, atol=self.atol), (
                f"expert {expert.name!r} cannot tell frame order: swapping frames 0 and {f - 1} only swapped its "
                "output; give its per-frame tokens positions (uprm.experts.grid.add_frame_positions), or set "
                "frame_order_equivariant = '<why>' on the test class if that is by design"
            )
            return
        assert isinstance(reason, str) and reason.strip(), "frame_order_equivariant must be a reason (a string)"
        torch.testing.assert_close(out_swapped, expected, atol=0.0, rtol=0.0)

    def test_output_follows_model_dtype(self, expert: Expert, ctx: ExpertContext, clips: list[VideoClip]) -> None:
        expert.to(torch.float64).eval()
        tokens = _tokens_for(expert, ctx, 2, ctx.num_frames)
        if tokens is not None:
            tokens = tokens.double()
        with torch.no_grad():
            out, _ = self._run(expert, ctx, clips, tokens=tokens)
        assert out.dtype == torch.float64

    def test_save_load_round_trip(self, ctx: ExpertContext, clips: list[VideoClip], tmp_path: Path) -> None:
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

    def test_standard_tests_are_kept(self) -> None:
        """No standard test is dropped or replaced silently: an override (or ``None``)
        must be marked ``xfail``/``skip``/``skipif`` with a ``reason``."""
        cls = type(self)
        problems = []
        for name, standard in _standard_tests().items():
            mine = getattr(cls, name, None)
            if mine is None:
                problems.append(f"{name} was removed")
            elif mine is not standard and not _marked_with_reason(mine):
                problems.append(f"{name} is overridden without @pytest.mark.xfail(reason=...)")
        assert not problems, (
            f"{cls.__qualname__}: {'; '.join(problems)}. Standard tests keep every expert to one contract; "
            "customise them through make_context/make_expert/make_clip/swap_frames and the class attributes, "
            "add your own checks as new tests, and mark an expected failure with a reason"
        )
