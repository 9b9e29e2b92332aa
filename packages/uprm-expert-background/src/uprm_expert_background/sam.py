"""SAM's image encoder: its variants, building one, loading its weights safely, and the
pre-processing it expects.

segment-anything's own ``build_sam_vit_*(checkpoint)`` calls ``torch.load`` with
unrestricted unpickling, which runs arbitrary code from the file. Here the encoder is
built *without* a checkpoint (segment-anything's :class:`ImageEncoderViT`, exactly the
geometry ``build_sam`` uses) and its state is read by us:

* ``.safetensors`` through safetensors; anything else through
  ``torch.load(..., weights_only=True)`` (tensors and plain containers only);
* a full SAM checkpoint (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``)
  or an encoder-only state dict, optionally wrapped in ``{"model": ...}`` /
  ``{"state_dict": ...}``;
* strictly: every missing, unexpected or mis-shaped tensor is an error naming the file,
  and a checkpoint of another variant says which variant it looks like.

``segment_anything`` imports torchvision, so it is imported only when an encoder is built.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from uprm import errors as uprm_errors
from uprm.utils import file_sha256

__all__ = [
    "ENCODER_DEFAULTS",
    "SAM_PIXEL_MEAN",
    "SAM_PIXEL_STD",
    "SAM_VARIANTS",
    "CheckpointError",
    "build_image_encoder",
    "checkpoint_fingerprint",
    "describe_encoder_state",
    "encoder_state",
    "load_encoder_weights",
    "match_variant",
    "read_state_dict",
    "resize_input",
    "resolve_encoder_config",
    "sam_preprocess",
    "tiny_encoder_config",
]

#: SAM's pixel normalisation (``Sam.pixel_mean`` / ``Sam.pixel_std``, on 0–255 RGB)
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

#: What every SAM image encoder shares (``segment_anything.build_sam._build_sam``)
ENCODER_DEFAULTS: dict[str, Any] = {
    "img_size": 1024,
    "patch_size": 16,
    "mlp_ratio": 4.0,
    "out_chans": 256,
    "window_size": 14,
    "use_rel_pos": True,
    "qkv_bias": True,
}

#: The three released SAM image encoders (``build_sam_vit_b/l/h``)
SAM_VARIANTS: dict[str, dict[str, Any]] = {
    "vit_b": {**ENCODER_DEFAULTS, "embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": (2, 5, 8, 11)},
    "vit_l": {**ENCODER_DEFAULTS, "embed_dim": 1024, "depth": 24, "num_heads": 16, "global_attn_indexes": (5, 11, 17, 23)},
    "vit_h": {**ENCODER_DEFAULTS, "embed_dim": 1280, "depth": 32, "num_heads": 16, "global_attn_indexes": (7, 15, 23, 31)},
}

_CONFIG_KEYS = (
    "img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "out_chans",
    "window_size", "global_attn_indexes", "use_rel_pos", "qkv_bias",
)  # fmt: skip


class CheckpointError(uprm_errors.CheckpointError):
    """A SAM checkpoint cannot be used: unreadable, truncated, unsafe to unpickle, or
    not the encoder asked for. The message names the file and the problem. A kind of
    the core's :class:`uprm.errors.CheckpointError`, so one ``except`` catches both."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"SAM checkpoint {self.path}: {problem}")


# ---------------------------------------------------------------------------- configs
def tiny_encoder_config(grid_size: int) -> dict[str, Any]:
    """A small SAM-shaped encoder whose embedding map has ``max(grid_size, 4)`` cells a
    side (input ``16 ×`` that): 2 blocks of width 64 (one windowed, one global, with
    relative positions, as in SAM) and SAM's 256-channel neck, so its cached features
    have the real layout. Used when the expert is built with no weights (tests, demo)."""
    side = max(int(grid_size), 4)
    return {
        **ENCODER_DEFAULTS,
        "img_size": 16 * side,
        "embed_dim": 64,
        "depth": 2,
        "num_heads": 4,
        "window_size": 4,
        "global_attn_indexes": (1,),
    }


def resolve_encoder_config(variant: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A complete encoder config: ``variant``'s (else SAM's shared defaults) updated with
    ``overrides``. Unknown keys and missing sizes are errors."""
    if variant is not None and variant not in SAM_VARIANTS:
        raise ValueError(f"background expert: unknown SAM variant {variant!r}; choose one of {sorted(SAM_VARIANTS)}")
    config: dict[str, Any] = dict(SAM_VARIANTS[variant] if variant else ENCODER_DEFAULTS)
    unknown = sorted(set(overrides or {}) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"background expert: unknown encoder_config keys {unknown}; known: {list(_CONFIG_KEYS)}")
    config.update(overrides or {})
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"background expert: encoder_config needs {missing}")
    config["global_attn_indexes"] = tuple(int(i) for i in config["global_attn_indexes"])
    config["mlp_ratio"] = float(config["mlp_ratio"])
    for key in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "out_chans", "window_size"):
        config[key] = int(config[key])
    if config["img_size"] % config["patch_size"]:
        raise ValueError(
            f"background expert: encoder img_size {config['img_size']} is not a multiple of patch_size {config['patch_size']}"
        )
    if config["embed_dim"] % config["num_heads"]:
        raise ValueError(f"background expert: embed_dim {config['embed_dim']} is not divisible by num_heads {config['num_heads']}")
    return {k: config[k] for k in _CONFIG_KEYS}


def build_image_encoder(config: Mapping[str, Any], device: torch.device | str | None = None) -> nn.Module:
    """segment-anything's ``ImageEncoderViT`` with ``config`` (as ``build_sam`` makes it:
    LayerNorm eps 1e-6), no weights loaded. ``device="meta"`` builds it without memory,
    to be filled by :func:`load_encoder_weights`."""
    from segment_anything.modeling import ImageEncoderViT

    with torch.device(device or "cpu"):
        return ImageEncoderViT(
            img_size=config["img_size"],
            patch_size=config["patch_size"],
            embed_dim=config["embed_dim"],
            depth=config["depth"],
            num_heads=config["num_heads"],
            mlp_ratio=config["mlp_ratio"],
            out_chans=config["out_chans"],
            qkv_bias=config["qkv_bias"],
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=config["use_rel_pos"],
            window_size=config["window_size"],
            global_attn_indexes=tuple(config["global_attn_indexes"]),
        )


# ---------------------------------------------------------------------------- reading
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, without unrestricted unpickling.

    ``.safetensors`` → safetensors; otherwise ``torch.load(weights_only=True)``. A
    wrapper ``{"model": {...}}`` or ``{"state_dict": {...}}`` is unwrapped.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: unreadable (truncated, not a checkpoint), holds Python objects
            beyond tensors and containers, or holds no tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"SAM checkpoint {path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(path, f"cannot be read as safetensors (truncated or not a safetensors file?): {exc}") from exc
    else:
        import pickle

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
                raise CheckpointError(
                    path,
                    "holds Python objects other than tensors and plain containers, and is not unpickled "
                    "without restriction (that would run code from the file). Re-save only the tensors, e.g. "
                    "torch.save(model.state_dict(), path) or safetensors.torch.save_file(...)",
                ) from exc
            raise CheckpointError(path, f"cannot be read as a PyTorch checkpoint (truncated or not a checkpoint?): {exc}") from exc
        except Exception as exc:  # the unpickler fails in many ways on a damaged file
            raise CheckpointError(path, f"cannot be read as a PyTorch checkpoint (truncated or not a checkpoint?): {exc}") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, not a state dict of tensors")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(path, f"holds no tensors (keys: {_some(obj)})")
    return tensors


def encoder_state(state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The image encoder's part of a state dict: the ``image_encoder.*`` tensors of a full
    SAM checkpoint with the prefix removed, or an encoder-only state dict as it is."""
    prefixed = {k[len("image_encoder.") :]: v for k, v in state.items() if k.startswith("image_encoder.")}
    if prefixed:
        if "patch_embed.proj.weight" not in prefixed:
            raise CheckpointError(
                path,
                "its image_encoder is not SAM's ViT (no 'image_encoder.patch_embed.proj.weight'; it holds "
                f"{_some('image_encoder.' + k for k in prefixed)}). SAM 2 (Hiera) and MobileSAM (TinyViT) "
                "encoders are not supported",
            )
        return prefixed
    if "patch_embed.proj.weight" in state:
        return dict(state)
    raise CheckpointError(
        path,
        "has no SAM image-encoder tensors (expected 'image_encoder.patch_embed.proj.weight' in a full SAM "
        f"checkpoint, or 'patch_embed.proj.weight' in an encoder-only one); it holds {_some(state)}",
    )


def describe_encoder_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The encoder geometry a state dict implies, read from tensor shapes only (so it
    also works on ``meta`` tensors). Keys follow :data:`ENCODER_DEFAULTS`; a key that
    cannot be inferred is left out."""
    desc: dict[str, Any] = {}
    patch = state.get("patch_embed.proj.weight")
    if patch is not None and patch.dim() == 4:
        desc["embed_dim"] = int(patch.shape[0])
        desc["patch_size"] = int(patch.shape[-1])
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    if blocks:
        desc["depth"] = max(blocks) + 1
    pos = state.get("pos_embed")
    if pos is not None and pos.dim() == 4 and "patch_size" in desc:
        desc["img_size"] = int(pos.shape[1]) * desc["patch_size"]
    neck = state.get("neck.0.weight")
    if neck is not None:
        desc["out_chans"] = int(neck.shape[0])
    lin1 = state.get("blocks.0.mlp.lin1.weight")
    if lin1 is not None and desc.get("embed_dim"):
        desc["mlp_ratio"] = float(lin1.shape[0]) / desc["embed_dim"]
    if blocks:
        desc["qkv_bias"] = "blocks.0.attn.qkv.bias" in state
        desc["use_rel_pos"] = "blocks.0.attn.rel_pos_h" in state
    rel = {i: state[f"blocks.{i}.attn.rel_pos_h"] for i in sorted(blocks) if f"blocks.{i}.attn.rel_pos_h" in state}
    if rel and desc.get("embed_dim"):
        desc["num_heads"] = desc["embed_dim"] // int(next(iter(rel.values())).shape[1])
        if "img_size" in desc:
            global_rows = 2 * (desc["img_size"] // desc["patch_size"]) - 1
            desc["global_attn_indexes"] = tuple(i for i, t in rel.items() if t.shape[0] == global_rows)
            windowed = [int(t.shape[0]) for i, t in rel.items() if t.shape[0] != global_rows]
            if windowed:
                desc["window_size"] = (windowed[0] + 1) // 2
    return desc


def match_variant(desc: Mapping[str, Any]) -> str | None:
    """The SAM variant whose geometry ``desc`` (from :func:`describe_encoder_state`)
    matches in every key it has, else ``None``."""
    core = ("embed_dim", "depth")
    if not all(k in desc for k in core):
        return None
    for name, config in SAM_VARIANTS.items():
        if all(_same(config[k], v) for k, v in desc.items() if k in config and k != "img_size"):
            return name
    return None


def describe(desc: Mapping[str, Any]) -> str:
    """``desc`` as a short human-readable string, with the variant it matches."""
    variant = match_variant(desc)
    parts = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in desc.items())
    return f"{variant} ({parts})" if variant else f"a custom encoder ({parts})"


def load_encoder_weights(
    encoder: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    expected: str = "the requested encoder",
) -> None:
    """Load ``state`` into ``encoder`` strictly (``assign=True``: an encoder built on the
    ``meta`` device takes the tensors without a copy), then make it float32.

    Raises:
        CheckpointError: a tensor is missing, unexpected or of another shape; the message
            names the file, what was expected, and what the checkpoint looks like.
    """
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs encoder {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f"{len(mismatched)} tensors of another shape ({'; '.join(mismatched[:3])}{'; ...' if len(mismatched) > 3 else ''})")
        if missing:
            problems.append(f"{len(missing)} missing ({_some(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({_some(unexpected)})")
        raise CheckpointError(
            path,
            f"does not fit {expected}: {', '.join(problems)}. The checkpoint looks like "
            f"{describe(describe_encoder_state(state))}",
        )
    encoder.load_state_dict(dict(state), strict=True, assign=True)
    encoder.float()


def checkpoint_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """``{"bytes", "sha256"}`` of a weights file: what cached features depend on (its
    content, not its name or where it lies)."""
    path = Path(path).expanduser().resolve()
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}




# ---------------------------------------------------------------------------- resolution
def resize_input(encoder: nn.Module, input_size: int) -> None:
    """Make ``encoder`` take ``input_size²`` inputs (a multiple of its patch size).

    The absolute position embedding ``pos_embed [1, g, g, C]`` is resampled (bicubic,
    antialiased when shrinking) to ``input_size / patch`` cells a side, once. The
    relative-position tables need nothing: segment-anything's ``get_rel_pos``
    interpolates them (linearly) to the feature size at every forward, and windowed
    blocks keep their window (the feature map is padded to whole windows).
    """
    patch = int(encoder.patch_embed.proj.kernel_size[0])
    if input_size % patch:
        raise ValueError(f"background expert: input_size {input_size} is not a multiple of the patch size {patch}")
    cells = input_size // patch
    pos = encoder.pos_embed
    if pos is not None and pos.shape[1] != cells:
        grid = pos.detach().permute(0, 3, 1, 2).float()  # [1, C, g, g]
        resized = F.interpolate(grid, size=(cells, cells), mode="bicubic", align_corners=False, antialias=cells < pos.shape[1])
        encoder.pos_embed = nn.Parameter(
            resized.permute(0, 2, 3, 1).to(pos.dtype).contiguous(), requires_grad=pos.requires_grad
        )
    encoder.img_size = input_size


# ---------------------------------------------------------------------------- pixels
def preprocess_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The frame size after resizing its long side to ``size`` (SAM's
    ``ResizeLongestSide.get_preprocess_shape``)."""
    scale = size / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def sam_preprocess(frames: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Frames as SAM's predictor prepares them: long side resized to ``size`` (bilinear,
    antialiased, rounded to whole 0–255 levels as SAM's uint8 resize does), normalised
    with SAM's pixel mean/std, zero-padded bottom/right to ``size × size`` (``Sam.preprocess``).

    Shapes:
        frames: uint8 ``[F, 3, H, W]`` RGB
        returns: float32 ``[F, 3, size, size]`` and the resized ``(h, w)`` inside it
    """
    x = frames.float()
    h, w = x.shape[-2:]
    nh, nw = preprocess_shape(h, w, size)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp_(0, 255).round_()
    mean = torch.tensor(SAM_PIXEL_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(SAM_PIXEL_STD, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return F.pad(x, (0, size - nw, 0, size - nh)), (nh, nw)


def embedding_window(resized: tuple[int, int], cells: int, input_size: int, centre_crop: bool) -> tuple[slice, slice]:
    """Which cells of the ``cells × cells`` embedding map show the picture.

    SAM's map covers the padded square; the frame occupies its top-left ``resized``
    pixels. With ``centre_crop`` the window is the centred square the coarse tower sees
    (CLIP resizes the short side and crops the centre), so a pooled token and the coarse
    token at the same grid position look at the same place. Boundaries are rounded to
    whole cells; a window is at least one cell.
    """
    per_cell = input_size / cells
    nh, nw = resized
    top, left, height, width = 0.0, 0.0, float(nh), float(nw)
    if centre_crop:
        side = float(min(nh, nw))
        top, left, height, width = (nh - side) / 2, (nw - side) / 2, side, side

    def span(start: float, length: float) -> slice:
        a = math.floor(start / per_cell + 0.5)
        b = max(a + 1, math.floor((start + length) / per_cell + 0.5))
        return slice(min(a, cells - 1), min(b, cells))

    return span(top, height), span(left, width)


# ---------------------------------------------------------------------------- helpers
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return tuple(a) == tuple(b)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6)
    return a == b


def _some(keys: Any, n: int = 5) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:n])
    return f"[{shown}{', ...' if len(keys) > n else ''}]"
