"""Detection asks identify of every window and locate/attribute of the yes windows from
one prefill: the UPE block (adapters and router) runs once per batch of windows even
when some answer yes, and every window's answer is what the two-pass path gave (the
whole prompts, the block run again for the yes windows)."""

from __future__ import annotations

import contextlib
import math
from collections import Counter

import pytest

import uprm
from uprm.detection import detect_video
from uprm.detection import runner as runner_module


@contextlib.contextmanager
def block_calls(model):
    calls = Counter()
    handles = [model.block.register_forward_pre_hook(lambda *_: calls.update(["block"])),
               *[e.register_forward_pre_hook(lambda *_, n=n: calls.update([n])) for n, e in
                 model.block.experts.items()]]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def two_pass(model, feats):
    """The former `_answer`: identify, then the yes windows' features through the block
    and the whole prompts again."""
    answers = model._answer_full_prompts(model.collate(feats), ("identify",), runner_module.IDENTIFY_TOKENS)
    yes = [i for i, a in enumerate(answers) if a.threat]
    if yes:
        more = model._answer_full_prompts(model.collate([feats[i] for i in yes]), ("locate", "attribute"))
        for i, extra in zip(yes, more):
            answers[i].locate, answers[i].attribute, answers[i].locate_prob = extra.locate, extra.attribute, \
                extra.locate_prob
    return answers


def test_the_block_runs_once_per_window_and_the_answers_do_not_change(detector, threat_data, monkeypatch):
    model = uprm.UPRMModel.from_pretrained(detector).eval()
    video, batch = threat_data / "videos" / "shop.mp4", 4
    with block_calls(model) as calls:
        shared = detect_video(video, model, batch_size=batch, sidecar_dir=threat_data)
    batches = math.ceil(len(shared.windows) / batch)
    yes = [w.index for w in shared.windows if w.threat]
    assert 0 < len(yes) < len(shared.windows)  # a mix of yes and no windows
    assert calls == Counter({name: batches for name in ("block", *model.expert_names)})

    monkeypatch.setattr(runner_module, "_answer", two_pass)
    with block_calls(model) as calls:
        before = detect_video(video, model, batch_size=batch, sidecar_dir=threat_data)
    assert calls["block"] > batches  # what the shared prefix saves: the block again for the yes windows

    assert [w.index for w in before.windows if w.threat] == yes
    for a, b in zip(shared.windows, before.windows):
        assert (a.threat, a.cause, a.segments) == (b.threat, b.cause, b.segments)
        assert (a.p_yes, a.score) == (pytest.approx(b.p_yes, abs=1e-5), pytest.approx(b.score, abs=1e-5))
        assert list(a.expert_weights.values()) == pytest.approx(list(b.expert_weights.values()), abs=1e-6)
    assert [(s.start, s.end, s.cause) for s in shared.segments] == [(s.start, s.end, s.cause) for s in before.segments]
    assert shared.segments and shared.segments[0].cause  # the follow-up questions were asked and answered
