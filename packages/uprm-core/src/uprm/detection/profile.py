"""Per-stage timing of detection: the UPE block (adapters + router), the language
model's prefill and its token-by-token generation, read with forward hooks.

Decoding and each expert's ``extract`` are timed by the detector itself; these hooks
split the time of ``UPRMModel.answer``. A call of the language model on more than one
new position is a prefill (the prompt with its video tokens), a call on one position a
generation step. On a GPU the hooks synchronise the device, so only use them to measure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["STAGES", "stage_hooks"]

#: stage names, in pipeline order (``extract:<expert>`` per expert)
STAGES = ("decode", "extract", "adapters_router", "llm_prefill", "llm_generation", "llm_other")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seq_len(args: tuple, kwargs: dict) -> int:
    for value in (kwargs.get("inputs_embeds"), kwargs.get("input_ids"), *args):
        if isinstance(value, torch.Tensor) and value.dim() >= 2:
            return int(value.shape[1])
    return 1


@contextlib.contextmanager
def stage_hooks(model: Any, timings: dict[str, float]) -> Iterator[None]:
    """Accumulate seconds of ``adapters_router`` (and, inside it, ``adapter:<expert>``
    for each expert's forward), ``llm_prefill`` and ``llm_generation`` into ``timings``
    while the context is open."""
    device = model.device
    starts: dict[int, tuple[str, float]] = {}

    def pre(stage_of):
        def hook(module, args, kwargs):
            _sync(device)
            starts[id(module)] = (stage_of(args, kwargs), time.perf_counter())

        return hook

    def post(module, args, kwargs, output):
        _sync(device)
        stage, start = starts.pop(id(module))
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start

    llm = model.vlm.model.language_model
    handles = [
        model.block.register_forward_pre_hook(pre(lambda a, k: "adapters_router"), with_kwargs=True),
        model.block.register_forward_hook(post, with_kwargs=True),
        *[h for name, expert in model.block.experts.items() for h in (
            expert.register_forward_pre_hook(pre(lambda a, k, n=name: f"adapter:{n}"), with_kwargs=True),
            expert.register_forward_hook(post, with_kwargs=True))],
        llm.register_forward_pre_hook(
            pre(lambda a, k: "llm_prefill" if _seq_len(a, k) > 1 else "llm_generation"), with_kwargs=True
        ),
        llm.register_forward_hook(post, with_kwargs=True),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
