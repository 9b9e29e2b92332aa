"""Small, offline building blocks for tests: a tiny expert context, synthetic clips,
an isolated plugin host, and a way to overfit a tiny model to a few answers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from uprm.experts.base import ExpertContext
from uprm.types import VideoClip

if TYPE_CHECKING:
    from uprm.modeling.model import UPRMModel

__all__ = ["isolated_plugins", "overfit", "random_video_tokens", "synthetic_clip", "tiny_context"]


def tiny_context(**overrides: Any) -> ExpertContext:
    """A small context: ``D = 32``, 4 frames of ``1 + 4 × 4`` tokens, 32-pixel frames;
    ``tiny=True`` (experts given no weights may build random perception)."""
    values: dict[str, Any] = dict(
        hidden_size=32, num_frames=4, tokens_per_frame=17, num_prefix_tokens=1, image_size=32, tiny=True
    )
    values.update(overrides)
    return ExpertContext(**values)


def synthetic_clip(
    num_frames: int = 4,
    size: int | tuple[int, int] = 64,
    seed: int = 0,
    video_id: str | None = None,
    fps: float = 2.0,
) -> VideoClip:
    """A deterministic clip of moving coloured rectangles on a gradient background.

    Different seeds give visibly different clips; the same seed gives identical frames.
    """
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, h).view(h, 1)
    xs = torch.linspace(0, 1, w).view(1, w)
    base = torch.rand(3, generator=g)
    background = torch.stack([(base[c] * 0.5 + 0.25 * ys + 0.25 * xs).expand(h, w) for c in range(3)])
    frames = background.unsqueeze(0).repeat(num_frames, 1, 1, 1)
    for _ in range(3):
        colour = torch.rand(3, generator=g)
        bh, bw = max(2, h // 4), max(2, w // 4)
        y0 = int(torch.randint(0, h - bh, (1,), generator=g))
        x0 = int(torch.randint(0, w - bw, (1,), generator=g))
        dy, dx = (torch.randint(-3, 4, (2,), generator=g)).tolist()
        for f in range(num_frames):
            y = min(max(0, y0 + dy * f), h - bh)
            x = min(max(0, x0 + dx * f), w - bw)
            frames[f, :, y : y + bh, x : x + bw] = colour.view(3, 1, 1)
    frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    timestamps = torch.arange(num_frames, dtype=torch.float64) / fps
    duration = num_frames / fps
    return VideoClip(frames, timestamps, video_id or f"synthetic-{seed}", duration)


def random_video_tokens(ctx: ExpertContext, batch: int, num_frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """Random coarse tokens ``[batch, frames × tokens_per_frame, hidden_size]``."""
    g = torch.Generator().manual_seed(seed)
    t = (num_frames or ctx.num_frames) * ctx.tokens_per_frame
    return torch.randn(batch, t, ctx.hidden_size, generator=g)


@contextlib.contextmanager
def isolated_plugins(
    plugins: Mapping[str, Any] | None = None,
    env: Mapping[str, str | None] | None = None,
    load_entry_points: bool = True,
) -> Iterator[Any]:
    """A fresh plugin host for the duration of the block.

    Args:
        plugins: throw-away plugins to register by name (objects or modules with
            ``@uprm.hookimpl`` functions).
        env: ``UPRM_*`` variables to set (``None`` removes one) while discovering.
        load_entry_points: ``False`` = only the built-in plugins and ``plugins``.

    Yields the :class:`~uprm.plugins.manager.PluginHost`; the previous host (and the
    environment) are restored afterwards.
    """
    from uprm.plugins import manager

    saved_env = {k: os.environ.get(k) for k in (env or {})}
    saved_host = manager._HOST
    try:
        for k, v in (env or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        host = manager.PluginHost(load_entry_points=load_entry_points)
        manager._HOST = host
        host.load()
        for name, plugin in (plugins or {}).items():
            host.register(plugin, name=name, distribution=f"test-{name}", version="0")
        yield host
    finally:
        manager._HOST = saved_host
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def overfit(
    model: UPRMModel,
    items: Sequence[tuple[Mapping[str, Any], str, str]],
    *,
    lr: float = 3e-3,
    max_steps: int = 200,
    target_loss: float = 0.05,
) -> UPRMModel:
    """Train ``model`` on ``items`` — ``(features, task, answer)`` with features from
    ``model.extract(clip)`` — as one batch with AdamW until the loss falls below
    ``target_loss`` or after ``max_steps`` steps; returns the model in eval mode. The
    quick way to a tiny checkpoint that answers a test's clips on purpose."""
    features = model.collate([f for f, _, _ in items])
    batch = model.tokenize([q for _, q, _ in items], [a for _, _, a in items])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(max_steps):
        loss = model(batch["input_ids"], batch["attention_mask"], features, batch["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if float(loss.detach()) < target_loss:
            break
    return model.eval()
