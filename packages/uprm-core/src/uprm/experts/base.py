"""The expert interface: what a physical-world expert is, for the core and for plugins.

An expert has two halves:

* **perception** (frozen): ``extract(clip)`` turns one :class:`~uprm.VideoClip` into a
  dict of tensors — keypoints, boxes, SAM embeddings, vision-tower features. It runs
  without gradients, is deterministic, and its result can be cached on disk
  (``uprm extract``), so the heavy frozen models run once per clip, not once per epoch.
* **adapter** (trainable): ``forward(features, video_tokens)`` maps a batch of those
  features (made by ``collate``) to tokens ``[B, T, D]`` on the coarse expert's token
  grid, ``T = frames × tokens_per_frame`` and ``D`` the LLM's hidden size, so the
  trade-off router can mix them token by token (paper eq.6).

Frozen modules are registered with :meth:`Expert.add_perception`; they never receive
gradients, stay in eval mode, and are left out of :meth:`Expert.trainable_state_dict`
(checkpoints hold only what was trained; the frozen weights come from their own files).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from uprm.types import VideoClip
from uprm.utils import jsonable

__all__ = ["GRANULARITIES", "Expert", "ExpertContext"]

GRANULARITIES = ("fine", "coarse")


@dataclass(frozen=True)
class ExpertContext:
    """What every expert is told about the model it is part of.

    Attributes:
        hidden_size: ``D``, the LLM's hidden size; every expert outputs ``[B, T, D]``.
        num_frames: frames sampled per clip by default (Video-LLaVA: 8).
        tokens_per_frame: tokens of one frame on the coarse grid (Video-LLaVA keeps the
            CLS token for video: ``1 + 16 × 16 = 257``).
        num_prefix_tokens: how many of a frame's tokens come before its patch grid
            (the CLS token: 1).
        image_size: the side, in pixels, of the square frames the coarse tower sees.
        resources: shared objects the builder offers to experts (for example the
            frozen vision tower under ``"vision_tower"``); never saved.
        tiny: ``True`` for the tiny/test configuration — the random tiny backbone of
            ``UPRMConfig.tiny()``, :func:`uprm.testing.tiny_context`, ``uprm extract``
            without a model — where an expert given no weights may build random frozen
            perception in their place without a word. ``False`` (a real backbone): an
            expert whose perception needs weights must be given them, or refuse with an
            error naming the option (a random stand-in only by an explicit option of its
            own). Not part of :meth:`to_dict`: it changes no feature an expert writes.
    """

    hidden_size: int
    num_frames: int = 8
    tokens_per_frame: int = 257
    num_prefix_tokens: int = 1
    image_size: int = 224
    resources: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    tiny: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.tiny, bool):
            raise ValueError(f"ExpertContext.tiny must be True or False, got {self.tiny!r}")
        for name in ("hidden_size", "num_frames", "tokens_per_frame", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ExpertContext.{name} must be a positive int, got {value!r}")
        if not 0 <= self.num_prefix_tokens < self.tokens_per_frame:
            raise ValueError(
                f"ExpertContext.num_prefix_tokens must be in [0, tokens_per_frame), got {self.num_prefix_tokens}"
            )

    @property
    def num_tokens(self) -> int:
        """``T`` for a clip of ``num_frames`` frames."""
        return self.num_frames * self.tokens_per_frame

    @property
    def grid_size(self) -> int:
        """The side of a frame's square patch grid (16 for Video-LLaVA)."""
        n = self.tokens_per_frame - self.num_prefix_tokens
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"tokens_per_frame - num_prefix_tokens = {n} is not a square patch grid"
            )
        return side

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe dims (without ``resources`` and ``tiny``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("resources", "tiny")}


def _no_grad_extract(fn: Callable[..., dict[str, torch.Tensor]]) -> Callable[..., dict[str, torch.Tensor]]:
    @functools.wraps(fn)
    def extract(self: Expert, clip: VideoClip, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return fn(self, clip, *args, **kwargs)

    extract.__uprm_no_grad__ = True  # type: ignore[attr-defined]
    return extract


def _recording_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass's ``__init__`` so that the options it was called with (defaults
    filled in) end up in ``self.options``; the most derived class records last."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Expert, ctx: ExpertContext, *args: Any, **kwargs: Any) -> None:
        init(self, ctx, *args, **kwargs)
        bound = signature.bind(self, ctx, *args, **kwargs)
        bound.apply_defaults()
        options: dict[str, Any] = {}
        for i, (name, value) in enumerate(bound.arguments.items()):
            if i < 2:  # self, ctx
                continue
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                options.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                options[name] = value
        self.options = options

    __init__.__uprm_records__ = True  # type: ignore[attr-defined]
    return __init__


class Expert(nn.Module):
    """Base class of every physical-world expert (coarse or fine).

    Subclasses set the class attributes ``name`` (lowercase, e.g. ``"pose"``) and
    ``granularity`` (``"fine"`` or ``"coarse"``), and implement ``extract`` and
    ``forward``. They are built as ``cls(ctx, **options)``; a subclass takes its
    options as keyword arguments of its ``__init__`` and calls ``super().__init__(ctx)``.
    The options it was built with (defaults filled in) are recorded in :attr:`options`
    automatically, for ``extraction_config()`` and the saved model config.

    Shapes:
        - ``extract(clip)``: ``clip.frames [F, 3, H, W]`` → ``dict[str, Tensor]`` (per clip)
        - ``collate(items)``: list of those dicts → ``dict[str, Tensor]`` with a batch dim
        - ``forward(features, video_tokens)``: ``video_tokens [B, T, D]`` (the coarse
          expert's output; ``None`` when the coarse expert itself runs) → ``[B, T, D]``

    Typing: a fine expert's ``forward`` takes ``video_tokens: torch.Tensor``, as the base
    declares; the coarse expert, which is called with ``None``, widens it to
    ``torch.Tensor | None``. Calling an expert (``expert(features, video_tokens)``) is
    typed to return a ``torch.Tensor``.
    """

    name: ClassVar[str] = ""
    granularity: ClassVar[str] = "fine"
    #: Bump when ``extract`` changes what it writes, so cached features are recomputed.
    feature_version: ClassVar[str] = "1"
    #: ``True`` when ``extract`` treats frames independently (frame ``f``'s features
    #: depend on frame ``f`` alone, and a clip's features are its frames' stacked), so a
    #: frame sampled by several overlapping windows is perceived once (``uprm detect``).
    #: ``False`` (the safe default) for experts that look across frames (motion, tracking).
    frame_wise: ClassVar[bool] = False
    #: Options that shape only the trainable adapter, or how fast extraction runs (a
    #: batch size) — never what ``extract`` writes. They stay out of
    #: :meth:`extraction_config`, the feature cache's key, so changing them (e.g. the
    #: residual form of an ablation) reuses the cached features.
    adapter_options: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Perception never builds a graph, whatever the subclass remembers to do.
        extract = cls.__dict__.get("extract")
        if extract is not None and not getattr(extract, "__uprm_no_grad__", False):
            cls.extract = _no_grad_extract(extract)  # type: ignore[method-assign]
        # The options an expert was built with are recorded without repeating them.
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__uprm_records__", False):
            cls.__init__ = _recording_init(init)  # type: ignore[method-assign]

    def __init__(self, ctx: ExpertContext, **options: Any) -> None:
        super().__init__()
        if not isinstance(ctx, ExpertContext):
            raise TypeError(f"expert {self.name!r}: ctx must be an uprm.ExpertContext, got {type(ctx).__name__}")
        self.ctx = ctx
        self.options: dict[str, Any] = dict(options)
        self._perception_names: list[str] = []

    # ------------------------------------------------------------------ perception
    def add_perception(self, name: str, module: nn.Module) -> nn.Module:
        """Register ``module`` as frozen perception under attribute ``name``.

        Its parameters stop requiring gradients, it is put (and kept) in eval mode,
        and it is left out of :meth:`trainable_state_dict`.
        """
        module.requires_grad_(False)
        module.eval()
        setattr(self, name, module)
        if name not in self._perception_names:
            self._perception_names.append(name)
        return module

    @property
    def perception_names(self) -> tuple[str, ...]:
        return tuple(self._perception_names)

    def train(self, mode: bool = True) -> Expert:
        super().train(mode)
        for name in self._perception_names:
            module = getattr(self, name, None)
            if isinstance(module, nn.Module):
                module.eval()
        return self

    def _is_perception_key(self, key: str) -> bool:
        return any(key == n or key.startswith(n + ".") for n in self._perception_names)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapter's state (parameters and buffers), without frozen perception."""
        return {k: v for k, v in self.state_dict().items() if not self._is_perception_key(k)}

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor], strict: bool = True) -> None:
        """Load what :meth:`trainable_state_dict` wrote. With ``strict``, a missing or
        unexpected key is an error naming the expert and the keys."""
        expected = set(self.trainable_state_dict())
        got = set(state)
        if strict and expected != got:
            missing = sorted(expected - got)
            unexpected = sorted(got - expected)
            raise KeyError(
                f"expert {self.name!r}: state does not match the adapter "
                f"(missing: {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                f"unexpected: {unexpected[:8]}{'...' if len(unexpected) > 8 else ''})"
            )
        self.load_state_dict(dict(state), strict=False)

    def extraction_config(self) -> dict[str, Any]:
        """What determines ``extract``'s output: cached features made under another
        config are stale. The options minus :attr:`adapter_options`. Subclasses whose
        extraction depends on more than their options (e.g. a weights file's hash)
        extend this."""
        options = {k: v for k, v in self.options.items() if k not in self.adapter_options}
        return {
            "expert": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "feature_version": self.feature_version,
            "options": jsonable(options),
        }

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ the contract
    def extract(self, clip: VideoClip) -> dict[str, torch.Tensor]:
        """Frozen perception of one clip → a dict of tensors (no batch dim).
        No gradients (enforced), deterministic, cacheable."""
        raise NotImplementedError(f"expert {self.name!r} does not implement extract()")

    def collate(self, items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Batch the features of several clips. The default stacks each key; experts
        with ragged features (people, objects) override it to pad and mask."""
        if not items:
            raise ValueError(f"expert {self.name!r}: collate() needs at least one item")
        keys = set(items[0])
        for i, item in enumerate(items):
            if set(item) != keys:
                raise ValueError(
                    f"expert {self.name!r}: item {i} has keys {sorted(item)}, item 0 has {sorted(keys)}"
                )
        out = {}
        for key in sorted(keys):
            shapes = {tuple(item[key].shape) for item in items}
            if len(shapes) != 1:
                raise ValueError(
                    f"expert {self.name!r}: feature {key!r} has different shapes across the batch {sorted(shapes)}; "
                    "override collate() to pad it"
                )
            out[key] = torch.stack([item[key] for item in items])
        return out

    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        """Batched features (+ the coarse tokens ``[B, T, D]``) → tokens ``[B, T, D]``."""
        raise NotImplementedError(f"expert {self.name!r} does not implement forward()")

    if TYPE_CHECKING:  # nn.Module.__call__ runs forward(); say what it returns

        def __call__(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor | None) -> torch.Tensor:
            ...

    # ------------------------------------------------------------------ helpers
    def frames_in(self, video_tokens: torch.Tensor) -> int:
        """The number of frames ``F`` behind ``video_tokens [B, F × tokens_per_frame, D]``."""
        tpf = self.ctx.tokens_per_frame
        if video_tokens.dim() != 3 or video_tokens.shape[1] % tpf:
            raise ValueError(
                f"expert {self.name!r}: video tokens of shape {tuple(video_tokens.shape)} are not "
                f"[B, F x {tpf}, D]"
            )
        return video_tokens.shape[1] // tpf

    def extra_repr(self) -> str:
        return f"name={self.name!r}, granularity={self.granularity!r}"
