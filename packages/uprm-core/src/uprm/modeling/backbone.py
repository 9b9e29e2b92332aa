"""Loading the Video-LLaVA backbone: a real checkpoint from a local directory, or the
tiny randomly initialised one.

UPRM downloads nothing itself; transformers follows its own convention. A local
directory in the transformers layout of ``LanguageBind/Video-LLaVA-7B-hf`` is loaded
with ``local_files_only=True``; a hub id is resolved by transformers — from its cache,
or downloaded when the machine is online. In offline mode (``UPRM_OFFLINE=1``,
``HF_HUB_OFFLINE=1``) a hub id not in the cache fails at once with
:class:`BackboneNotFoundError` saying what to do (docs/design.md §6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from uprm.errors import BackboneNotFoundError

__all__ = ["BackboneNotFoundError", "build_tiny_backbone", "dtype_of", "load_backbone"]


def dtype_of(name: str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"torch_dtype must be float32, bfloat16 or float16, got {name!r}") from None


def build_tiny_backbone(tiny: dict[str, Any], seed: int = 0, dtype: torch.dtype = torch.float32):
    """A small random ``VideoLlavaForConditionalGeneration`` and its tokenizer.

    The same ``tiny`` dims and ``seed`` give the same weights on every run, so a tiny
    model's frozen base needs no file of its own.
    """
    from transformers import CLIPVisionConfig, LlamaConfig, VideoLlavaConfig, VideoLlavaForConditionalGeneration

    from uprm.modeling.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(int(tiny.get("tokenizer_vocab_size", 1024)))
    vision = CLIPVisionConfig(**tiny["vision"])
    text = LlamaConfig(
        **tiny["text"],
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    grid = vision.image_size // vision.patch_size
    config = VideoLlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_seq_length=grid * grid,
        video_seq_length=8 * (grid * grid + 1),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoLlavaForConditionalGeneration(config)
    return model.to(dtype), tokenizer


def load_backbone(source: str, dtype: torch.dtype = torch.float32):
    """A real Video-LLaVA and its tokenizer, as transformers' users expect: a local
    directory in the transformers layout, or a hub id (``LanguageBind/Video-LLaVA-7B-hf``)
    that transformers resolves — from its local cache, or by downloading it when the
    machine is online. In offline mode (``UPRM_OFFLINE=1``, ``HF_HUB_OFFLINE=1`` or
    ``TRANSFORMERS_OFFLINE=1``) only local files are used, and a hub id not in the cache
    fails at once with :class:`~uprm.errors.BackboneNotFoundError` saying what to do."""
    from transformers import AutoTokenizer, VideoLlavaForConditionalGeneration

    from uprm.offline import is_offline

    path = Path(source).expanduser()
    if not path.is_dir() and (path.suffix or path.is_absolute() or source.startswith((".", "~"))):
        raise BackboneNotFoundError(f"{source}: no such directory; pass the local directory of a Video-LLaVA checkpoint")
    where = str(path) if path.is_dir() else source
    local_only = path.is_dir() or is_offline("huggingface")
    try:
        model = VideoLlavaForConditionalGeneration.from_pretrained(where, dtype=dtype, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local_only)
    except OSError as exc:
        if path.is_dir():
            raise BackboneNotFoundError(
                f"{path}: not a complete Video-LLaVA checkpoint in the transformers layout ({exc})"
            ) from exc
        if local_only:
            raise BackboneNotFoundError(
                f"{source!r} is not a local directory and its files are not in the local Hugging Face cache, and "
                "offline mode is on (UPRM_OFFLINE / HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), so nothing is "
                f"downloaded: download it where there is a network (`hf download {source} --local-dir "
                "./video-llava`) and pass that directory, or switch offline mode off."
            ) from exc
        raise BackboneNotFoundError(f"{source!r}: transformers could not load it from the hub ({exc})") from exc
    return model, tokenizer
