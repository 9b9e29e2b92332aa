"""The fine-grained visual-background expert (VBE) of UPRM, paper §3.1.

Perception (frozen): SAM's image encoder on every sampled frame, ``y_i^t = SAM(V_i)``;
the per-frame embeddings ``[256, h, w]`` are pooled onto the coarse expert's token grid
*before* they are cached, so a cached 8-frame clip at Video-LLaVA's grid is
``8 × 257 × 256`` numbers (1 MB in float16) instead of ``8 × 256 × 64 × 64`` (33 MB in
float32). Adapter (trainable): the paper's lightweight FFN, ``y_i^t' = FFN(y_i^t)``,
to the LLM's width, one token per grid position, with the frame's sinusoidal position
added inside it (after its LayerNorm) so that the tokens of frame ``i`` say they are.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn

import uprm
from uprm.errors import ConfigError
from uprm.experts.grid import add_frame_positions, pool_to_grid
from uprm_expert_background import sam

__all__ = ["CACHE_DTYPES", "MISSING_CHECKPOINT", "BackgroundExpert", "load_sam_image_encoder"]

#: dtypes a cached embedding may be stored in
CACHE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
GRID_ALIGNMENTS = ("center_crop", "frame")
#: the error of a real (non-tiny) model built without SAM weights
MISSING_CHECKPOINT = (
    "background expert: no SAM checkpoint (background.checkpoint). Outside the tiny/test configuration the "
    "encoder's weights must come from a file, or the model would learn from the features of a random encoder: "
    "pass --expert-option background.checkpoint=/path/sam_vit_b.pth (UPRMConfig.expert_options="
    '{"background": {"checkpoint": "/path/sam_vit_b.pth"}}); Meta publishes sam_vit_b_01ec64.pth, '
    "sam_vit_l_0b3195.pth and sam_vit_h_4b8939.pth. For a random encoder (benchmarks, tests; its features mean "
    "nothing) pass --expert-option background.random_encoder=true"
)
#: options that change how fast extraction runs, not what it writes
def load_sam_image_encoder(
    checkpoint: str | os.PathLike | None = None,
    variant: str | None = None,
    encoder_config: Mapping[str, Any] | None = None,
    input_size: int | None = None,
    init_seed: int = 0,
    default_config: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build SAM's image encoder and load its weights without unrestricted unpickling.

    Args:
        checkpoint: a SAM checkpoint (``sam_vit_b_01ec64.pth`` …, full-SAM layout or
            encoder only; ``.pth``/``.pt`` read with ``weights_only=True``, or
            ``.safetensors``). ``None``: random weights.
        variant: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``. With a checkpoint, ``None``
            detects it from the tensor shapes and a given one must match.
        encoder_config: encoder geometry (``embed_dim``, ``depth``, ``num_heads``,
            ``img_size``, ...; see :data:`sam.ENCODER_DEFAULTS`) on top of ``variant``'s,
            for encoders that are not one of the three (e.g. small ones in tests).
        input_size: the side of the square input; ``None`` = the encoder's own
            (1024 for SAM). Smaller is faster; the position embedding is resampled.
        init_seed: the seed of random weights (no checkpoint), so that an encoder built
            without a file is the same in every process and its cached features stay valid.
        default_config: the geometry used when there is neither a checkpoint, a variant
            nor an ``encoder_config``.

    Returns:
        ``(encoder, info)``: the frozen-ready ``ImageEncoderViT`` (eval mode, float32) and
        ``{"config", "variant", "input_size", "weights"}`` where ``weights`` is the
        checkpoint's fingerprint or ``{"random_init_seed": init_seed}``.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        state = sam.encoder_state(sam.read_state_dict(path), path)
        desc = sam.describe_encoder_state(state)
        detected = sam.match_variant(desc)
        if variant is None and encoder_config is None:
            if detected is None:
                raise sam.CheckpointError(
                    path,
                    f"is not one of the SAM variants {sorted(sam.SAM_VARIANTS)}: it looks like {sam.describe(desc)}. "
                    "Pass encoder_config={...} with its geometry to load a custom encoder",
                )
            variant = detected
        config = sam.resolve_encoder_config(variant, encoder_config)
        wanted = f"variant {variant!r}" if variant and not encoder_config else f"encoder_config {config}"
        differs = [k for k, v in desc.items() if k in config and not sam._same(config[k], v)]
        if differs:
            shown = ", ".join(f"{k}: checkpoint {desc[k]}, wanted {config[k]}" for k in differs)
            hint = f"; pass variant={detected!r}" if detected else ""
            raise sam.CheckpointError(
                path, f"does not fit {wanted} ({shown}). It looks like {sam.describe(desc)}{hint}"
            )
        encoder = sam.build_image_encoder(config, device="meta")
        sam.load_encoder_weights(encoder, state, path, expected=wanted)
        weights: dict[str, Any] = {"checkpoint": str(path)}
    else:
        if variant is None and encoder_config is None:
            config = sam.resolve_encoder_config(None, default_config or sam.tiny_encoder_config(4))
        else:
            config = sam.resolve_encoder_config(variant, encoder_config)
        if variant is not None:
            warnings.warn(
                f"background expert: SAM {variant} built with random weights (no checkpoint given); its features "
                "carry no meaning — pass checkpoint=<path to the SAM .pth> for real use",
                UserWarning,
                stacklevel=3,
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            encoder = sam.build_image_encoder(config)
            _init_positions(encoder)
        weights = {"random_init_seed": int(init_seed)}
    size = int(input_size) if input_size is not None else config["img_size"]
    if size <= 0:
        raise ValueError(f"background expert: input_size must be positive, got {input_size}")
    sam.resize_input(encoder, size)
    encoder.eval()
    if variant is None and checkpoint is None:
        variant = sam.match_variant(config)
    return encoder, {"config": config, "variant": variant, "input_size": size, "weights": weights}


def _init_positions(encoder: nn.Module) -> None:
    """Give a random encoder position-dependent embeddings (SAM initialises the absolute
    and relative position tables to zero; trained weights are not)."""
    for name, p in encoder.named_parameters():
        if name == "pos_embed" or name.endswith(("rel_pos_h", "rel_pos_w")):
            nn.init.trunc_normal_(p, std=0.02)


def _check_weights_source(ctx: uprm.ExpertContext, checkpoint: Any, random_encoder: Any) -> None:
    """A SAM checkpoint is required outside the tiny/test configuration; a random
    encoder there only when asked for (``random_encoder=True``)."""
    if not isinstance(random_encoder, bool):
        raise ConfigError(f"background expert: random_encoder must be true or false, got {random_encoder!r}")
    if checkpoint is not None and random_encoder:
        raise ConfigError(
            f"background expert: random_encoder=true and checkpoint={str(checkpoint)!r} ask for two encoders; "
            "give the checkpoint (SAM's weights) or random_encoder, not both"
        )
    if checkpoint is None and not random_encoder and not ctx.tiny:
        raise ConfigError(MISSING_CHECKPOINT)


class BackgroundAdapter(nn.Module):
    """The paper's lightweight FFN, ``y' = FFN(y)``: LayerNorm → + frame position → Linear
    → GELU → Linear.

    The frame's sinusoidal position (:func:`uprm.experts.grid.add_frame_positions`, no
    parameters) is added to the normalised embedding, so a background token says which
    frame it belongs to: without it the expert would give the same tokens for a clip and
    the clip with two frames swapped, only swapped.

    Shapes: ``[B, F, ..., in_dim]`` (frames on dim 1) → ``[B, F, ..., out_dim]``.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = add_frame_positions(self.norm(x), frame_dim=1)
        return self.fc2(self.drop(self.act(self.fc1(x))))


class BackgroundExpert(uprm.Expert):
    """Visual-background expert (VBE): frozen SAM image encoder + trainable FFN.

    Options:
        checkpoint: path of a SAM checkpoint (full SAM or encoder only; ``.pth`` read
            with ``weights_only=True``, or ``.safetensors``). The real use; required
            outside the tiny/test configuration (``ctx.tiny``) unless ``random_encoder``.
        random_encoder: ``True`` builds a random encoder (seeded by ``init_seed``) with no
            checkpoint, whatever the context: benchmarks and tests of real dims. Its
            features mean nothing. In the tiny/test configuration a random encoder is the
            default without it.
        variant: ``"vit_b" | "vit_l" | "vit_h"``; detected from the checkpoint when
            omitted, checked when given. Without a checkpoint: random weights of that
            size, with a warning (benchmarks only).
        encoder_config: geometry of a custom (e.g. small) ``ImageEncoderViT``.
        input_size: square input side, a multiple of 16 (default: the encoder's, 1024
            for SAM). 448 (a 28×28 map that fills SAM's 14-cell windows exactly) needs
            6.6× fewer FLOPs than 1024 and ran 5–7× faster on a 2-core CPU, with a map
            still finer than Video-LLaVA's 16×16 grid; see ``benchmarks/background.py``.
        batch_size: frames per encoder forward (memory vs. speed; not part of the cache key).
        adapter_hidden: hidden width of the FFN (default 1024).
        dropout: dropout inside the FFN (default 0).
        cache_dtype: ``"float16"`` (default), ``"bfloat16"`` or ``"float32"``: the dtype
            of the extracted (cached) embedding.
        grid_alignment: ``"center_crop"`` (default): pool the centred square of the
            frame, the part the coarse CLIP tower sees, so grid positions agree;
            ``"frame"``: pool the whole (un-padded) frame.
        init_seed: seed of random encoder weights when no checkpoint is given.

    In the tiny/test configuration (``ctx.tiny``: ``UPRMConfig.tiny()``,
    :func:`uprm.testing.tiny_context`, ``uprm extract`` without a model) and with no
    options, the encoder is a small random SAM-shaped ``ImageEncoderViT`` (2 blocks,
    width 64, 256-channel neck, input ``16 × max(grid, 4)`` pixels) seeded by
    ``init_seed``: what the demo and ``uprm.testing`` use. It runs in milliseconds and
    gives the real feature layout, but its features mean nothing. In any other context
    (a real backbone) a missing ``checkpoint`` is a :class:`~uprm.errors.ConfigError`
    naming ``background.checkpoint`` (:data:`MISSING_CHECKPOINT`), unless
    ``random_encoder=True`` asks for a random encoder explicitly.

    Shapes:
        extract: ``clip.frames [F, 3, H, W] uint8`` →
        ``{"embedding": [F, tokens_per_frame, 256]}`` (``cache_dtype``): SAM's
        ``[F, 256, S/16, S/16]`` embeddings pooled onto the grid, prefix (CLS) tokens
        holding the frame's mean embedding (:func:`uprm.experts.grid.pool_to_grid`).
        forward: ``{"embedding": [B, F, tokens_per_frame, 256]}``, ``video_tokens
        [B, F × tokens_per_frame, D]`` → ``[B, F × tokens_per_frame, D]`` in
        ``video_tokens``' dtype.
    """

    name = "background"
    granularity = "fine"
    frame_wise = True  # each frame is perceived on its own
    #: not in the feature cache's key: the FFN's shape and the encoder's batch size
    adapter_options = frozenset({"adapter_hidden", "dropout", "batch_size"})

    def __init__(
        self,
        ctx: uprm.ExpertContext,
        checkpoint: str | os.PathLike | None = None,
        variant: str | None = None,
        encoder_config: Mapping[str, Any] | None = None,
        input_size: int | None = None,
        batch_size: int = 2,
        adapter_hidden: int = 1024,
        dropout: float = 0.0,
        cache_dtype: str = "float16",
        grid_alignment: str = "center_crop",
        init_seed: int = 0,
        random_encoder: bool = False,
    ) -> None:
        super().__init__(ctx)
        _check_weights_source(ctx, checkpoint, random_encoder)
        if cache_dtype not in CACHE_DTYPES:
            raise ValueError(f"background expert: cache_dtype must be one of {sorted(CACHE_DTYPES)}, got {cache_dtype!r}")
        if grid_alignment not in GRID_ALIGNMENTS:
            raise ValueError(f"background expert: grid_alignment must be one of {GRID_ALIGNMENTS}, got {grid_alignment!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"background expert: batch_size must be a positive int, got {batch_size!r}")
        grid = ctx.grid_size  # raises if the coarse tokens are not a square grid
        encoder, info = load_sam_image_encoder(
            checkpoint,
            variant=variant,
            encoder_config=encoder_config,
            input_size=input_size,
            init_seed=init_seed,
            default_config=sam.tiny_encoder_config(grid),
        )
        self.add_perception("encoder", encoder)
        self.encoder_info = info
        self.input_size: int = info["input_size"]
        self.embed_channels: int = info["config"]["out_chans"]
        self.cache_dtype = CACHE_DTYPES[cache_dtype]
        self.batch_size = batch_size
        self.adapter = BackgroundAdapter(self.embed_channels, adapter_hidden, ctx.hidden_size, dropout)

    # ------------------------------------------------------------------ perception
    def extract(self, clip: uprm.VideoClip) -> dict[str, torch.Tensor]:
        """SAM embeddings of every frame, pooled onto the token grid (eq. ``y_i^t = SAM(V_i)``).

        Shapes: ``clip.frames [F, 3, H, W]`` → ``{"embedding": [F, tokens_per_frame, 256]}``.
        """
        param = next(self.encoder.parameters())
        pooled = []
        for start in range(0, clip.num_frames, self.batch_size):
            frames = clip.frames[start : start + self.batch_size].to(param.device)
            pixels, resized = sam.sam_preprocess(frames, self.input_size)
            maps = self.encoder(pixels.to(param.dtype))  # [b, 256, S/16, S/16]
            rows, cols = sam.embedding_window(
                resized, maps.shape[-1], self.input_size, self.options["grid_alignment"] == "center_crop"
            )
            tokens = pool_to_grid(maps[:, :, rows, cols], self.ctx.grid_size, self.ctx.num_prefix_tokens)
            pooled.append(tokens.to(device="cpu", dtype=self.cache_dtype))
        return {"embedding": torch.cat(pooled).contiguous()}

    def extraction_config(self) -> dict[str, Any]:
        """The base config plus the resolved encoder geometry, the input size, the grid,
        and the weights by content (``sha256`` of the checkpoint, not its path)."""
        config = super().extraction_config()
        options = config["options"]
        options.pop("checkpoint", None)  # the weights count by content, below
        options.pop("random_encoder", None)  # a random encoder's weights are its init_seed, below
        weights = dict(self.encoder_info["weights"])
        if "checkpoint" in weights:
            weights = sam.checkpoint_fingerprint(weights["checkpoint"])
        config.update(
            encoder={k: list(v) if isinstance(v, tuple) else v for k, v in self.encoder_info["config"].items()},
            variant=self.encoder_info["variant"],
            input_size=self.input_size,
            weights=weights,
            grid={"grid_size": self.ctx.grid_size, "num_prefix_tokens": self.ctx.num_prefix_tokens},
            pixels={"mean": list(sam.SAM_PIXEL_MEAN), "std": list(sam.SAM_PIXEL_STD)},
        )
        return config

    # ------------------------------------------------------------------ adapter
    def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
        """``y' = FFN(y)`` on every pooled background token (plus its frame's position
        inside the FFN).

        Shapes: ``features["embedding"] [B, F, tokens_per_frame, C]``, ``video_tokens
        [B, F × tokens_per_frame, D]`` → ``[B, F × tokens_per_frame, D]``.
        """
        emb = features["embedding"]
        if emb.dim() != 4 or emb.shape[2] != self.ctx.tokens_per_frame or emb.shape[3] != self.embed_channels:
            raise ValueError(
                f"background expert: embedding must be [B, F, {self.ctx.tokens_per_frame}, {self.embed_channels}], "
                f"got {tuple(emb.shape)}"
            )
        frames = self.frames_in(video_tokens)
        if emb.shape[:2] != (video_tokens.shape[0], frames):
            raise ValueError(
                f"background expert: embeddings for {tuple(emb.shape[:2])} (batch, frames) but video tokens "
                f"for ({video_tokens.shape[0]}, {frames})"
            )
        weight = self.adapter.fc1.weight
        tokens = self.adapter(emb.to(device=weight.device, dtype=weight.dtype))
        return rearrange(tokens, "b f t d -> b (f t) d").to(video_tokens.dtype)
