"""`answer_windows` asks identify of every window and locate/attribute of the hot ones
from one prefill: the UPE block runs once for the batch, and the answers are those of
the two-pass path (the whole prompts, the block run again for the hot windows)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import uprm
from uprm.watch.infer import IDENTIFY_TOKENS, answer_windows


def _window(level: int, size: int = 64) -> uprm.VideoClip:
    frames = torch.full((2, 3, size, size), level, dtype=torch.uint8)
    return uprm.VideoClip(frames, torch.tensor([1.0, 3.0]), video_id="cam")


def test_hot_windows_are_asked_more_without_running_the_block_again(watch_model):
    model = watch_model
    features = [model.extract(_window(level)) for level in (20, 230, 30, 240)]  # dark, bright, dark, bright
    calls = Counter()
    handles = [model.block.register_forward_pre_hook(lambda *_: calls.update(["block"])),
               *[e.register_forward_pre_hook(lambda *_, n=n: calls.update([n])) for n, e in
                 model.block.experts.items()]]
    try:
        got = answer_windows(model, features, threshold=0.5)
    finally:
        for h in handles:
            h.remove()
    assert calls == Counter({name: 1 for name in ("block", *model.expert_names)})

    identify = model._answer_full_prompts(model.collate(features), ("identify",), IDENTIFY_TOKENS)
    hot = [i for i, a in enumerate(identify) if a.p_yes >= 0.5]
    assert hot == [1, 3]  # the bright windows
    more = model._answer_full_prompts(model.collate([features[i] for i in hot]), ("locate", "attribute"))
    for i, (a, b) in enumerate(zip(got, identify)):
        assert a.identify == b.identify and a.p_yes == pytest.approx(b.p_yes, abs=1e-5)
        assert list(a.expert_weights.values()) == pytest.approx(list(b.expert_weights.values()), abs=1e-6)
        if i not in hot:
            assert (a.locate, a.attribute) == ("", "")
    for i, b in zip(hot, more):
        assert (got[i].locate, got[i].attribute) == (b.locate, b.attribute) and got[i].attribute
        assert got[i].locate_prob == pytest.approx(b.locate_prob, abs=1e-5)
