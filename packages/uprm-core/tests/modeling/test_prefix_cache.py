"""Questions asked of a shared prefix (`UPRMModel.prefill`, `VideoPrefix`): the language
model reads each clip's video tokens once, and the answers are those of the whole prompts
(`UPRMModel._answer_full_prompts`, the path before): texts, P(yes), the locate
probability and the router weights — with the toy experts and with every installed real
expert, for questions of different lengths and for a follow-up asked of some clips only."""

from __future__ import annotations

import contextlib

import pytest
import torch

import uprm
from uprm.modeling import UPRMConfig, build_model
from uprm.prompts import QUESTIONS, STAGE2_TASKS
from uprm.testing import synthetic_clip

TOKENS = 8


def _shake(model):
    """Random trained weights, so the untrained model's answers differ clip by clip."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


@pytest.fixture
def toy(toy_plugins):
    torch.manual_seed(0)
    model = _shake(build_model(UPRMConfig.tiny(experts=["coarse", "colour", "shade"], num_frames=4)))
    clips = [synthetic_clip(4, size=48, seed=s) for s in (0, 1, 2)]
    return model, [model.extract(c) for c in clips]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Every installed expert (pose and relation reading the world's sidecar files)."""
    from uprm.data import clip_from_record, load_records
    from uprm.synthetic import generate_world

    out = tmp_path_factory.mktemp("prefix-world")
    world = generate_world(out, 3, seed=5, progress=False, min_duration=6.0, max_duration=6.0, normal_fraction=0.0)
    records = [r for split in world["instructions"].values() for r in load_records(out / split)]
    by_video = {}
    for record in records:
        by_video.setdefault(record["video"], record)
    torch.manual_seed(1)
    model = _shake(build_model(UPRMConfig.tiny(num_frames=2)))
    assert {"pose", "relation", "background"} <= set(model.expert_names)
    return model, [model.extract(clip_from_record(r, 2)) for r in list(by_video.values())[:3]]


def _same_answers(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (a.identify, a.locate, a.attribute) == (b.identify, b.locate, b.attribute)
        assert a.p_yes == pytest.approx(b.p_yes, abs=1e-5)
        assert a.locate_prob == pytest.approx(b.locate_prob, abs=1e-5)
        assert list(a.expert_weights) == list(b.expert_weights)
        assert list(a.expert_weights.values()) == pytest.approx(list(b.expert_weights.values()), abs=1e-6)


@contextlib.contextmanager
def counting(model):
    """Calls of the UPE block, of each expert's forward, and the input shapes of every
    call of the language model (``[batch, positions]``)."""
    seen = {"block": 0, "experts": {n: 0 for n in model.expert_names}, "llm": []}

    def block(*_):
        seen["block"] += 1

    def expert(name):
        def hook(*_):
            seen["experts"][name] += 1
        return hook

    def llm(_, args, kwargs):
        x = kwargs.get("inputs_embeds")
        x = kwargs.get("input_ids") if x is None else x
        seen["llm"].append(tuple(x.shape[:2]))

    handles = [model.block.register_forward_pre_hook(block),
               *[e.register_forward_pre_hook(expert(n)) for n, e in model.block.experts.items()],
               model.vlm.model.language_model.register_forward_pre_hook(llm, with_kwargs=True)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("which", ["toy", "real"])
def test_shared_prefix_answers_equal_the_whole_prompts(which, request):
    model, items = request.getfixturevalue(which)
    features = model.collate(items)
    # the three questions differ in length, so the rows after the shared prefix are padded
    tails = {len(model._prompt_ids(t, 1)[1]) for t in STAGE2_TASKS}
    assert len(tails) > 1
    shared = model.answer(features, max_new_tokens=TOKENS)
    _same_answers(shared, model._answer_full_prompts(features, max_new_tokens=TOKENS))
    assert any(a.identify for a in shared) and len({a.locate for a in shared}) > 1  # answers that say something


@pytest.mark.parametrize("which", ["toy", "real"])
def test_identify_of_every_window_then_more_of_some_from_the_same_prefix(which, request):
    """The detection/watch pattern: identify for all, locate and attribute for a mix of
    windows (out of order), from one prefill; the prefix is not used up by asking."""
    model, items = request.getfixturevalue(which)
    prefix = model.prefill(model.collate(items))
    length = prefix.cache.get_seq_length()
    identify = model.answer(prefix, ("identify",), max_new_tokens=4)
    _same_answers(identify, model._answer_full_prompts(model.collate(items), ("identify",), max_new_tokens=4))
    some = [2, 0]
    more = model.answer(prefix.select(some), ("locate", "attribute"), max_new_tokens=TOKENS)
    _same_answers(more, model._answer_full_prompts(model.collate([items[i] for i in some]), ("locate", "attribute"),
                                                   max_new_tokens=TOKENS))
    assert prefix.cache.get_seq_length() == length  # asking grew copies, not the prefix
    _same_answers(model.answer(prefix, ("identify",), max_new_tokens=4), identify)


def test_generate_from_a_prefix_equals_generate_from_features(toy):
    model, items = toy
    features = model.collate(items)
    questions = ["identify", "What is the man in the red coat carrying across the car park, and why?",
                 "<video>\n" + QUESTIONS["locate"]]  # <video> first: the same prefix
    whole = model.generate(features, questions, max_new_tokens=TOKENS)
    shared = model.generate(None, questions, max_new_tokens=TOKENS, prefix=model.prefill(features))
    assert shared.token_ids == whole.token_ids and shared.texts == whole.texts
    for a, b in zip(shared.token_logprobs, whole.token_logprobs):
        assert a == pytest.approx(b, abs=1e-5)
    assert torch.allclose(shared.first_token_probs, whole.first_token_probs, atol=1e-6)


def test_a_prefix_refuses_what_it_cannot_answer(toy):
    model, items = toy
    features = model.collate(items)
    prefix = model.prefill(features)
    with pytest.raises(ValueError, match=r"places <video> itself"):
        model.generate(None, ["identify", "Look at this: <video> what happens?", "locate"], prefix=prefix)
    with pytest.raises(ValueError, match="2 questions for a prefix of 3 clips"):
        model.generate(None, ["identify", "locate"], prefix=prefix)
    with pytest.raises(ValueError, match="not several"):
        model.generate(features, ["identify"] * 3, prefix=prefix)
    with pytest.raises(ValueError, match="unknown task"):
        model.answer(prefix, ("explain",))


def test_the_experts_the_router_and_the_video_tokens_run_once_per_clip(toy):
    model, items = toy
    features = model.collate(items)
    video = model.block(features).z.shape[1]
    with counting(model) as seen:
        model.answer(features, max_new_tokens=TOKENS)
    assert seen["block"] == 1 and set(seen["experts"].values()) == {1}
    (batch, first), *rest = seen["llm"]
    assert batch == 3 and first > video  # the prefix: 3 clips, not 3 x 3 prompts
    assert all(n < video for _, n in rest)  # every later call reads questions or new tokens only
    assert rest[0][0] == 9 and all(b == 9 for b, _ in rest)

    with counting(model) as seen:
        prefix = model.prefill(features)
        model.answer(prefix, ("identify",), max_new_tokens=4)
        model.answer(prefix.select([1]), ("locate", "attribute"), max_new_tokens=TOKENS)
    assert seen["block"] == 1 and set(seen["experts"].values()) == {1}
    assert sum(n > video for _, n in seen["llm"]) == 1

    with counting(model) as seen:  # the old path: every prompt whole
        model._answer_full_prompts(features, max_new_tokens=TOKENS)
    assert seen["llm"][0] == (9, seen["llm"][0][1]) and seen["llm"][0][1] > video

    with counting(model) as seen:  # no task: the router's weights only
        weights = model.answer(features, ())
    assert seen["block"] == 1 and seen["llm"] == [] and all(a.expert_weights for a in weights)


def test_select_keeps_the_clips_asked_for(toy):
    model, items = toy
    prefix = model.prefill(model.collate(items))
    picked = prefix.select([2, 2, 0])
    assert len(picked) == 3 and picked.rows.tolist() == [2, 2, 0]
    assert torch.equal(picked.visual_tokens[1], prefix.visual_tokens[2])
    assert torch.equal(picked.expert_weights[2], prefix.expert_weights[0])
    assert picked.select([1]).rows.tolist() == [2]
    assert picked.cache is prefix.cache  # nothing copied until a generation
    assert isinstance(prefix, uprm.modeling.model.VideoPrefix)
