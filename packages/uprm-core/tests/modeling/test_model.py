"""The UPRM model on the tiny Video-LLaVA: forward/backward, the loss, generation,
detection, save/load, frame counts, ablation builds."""

import math

import pytest
import torch

import uprm
from uprm.modeling import UPRMConfig, UPRMModel, build_model
from uprm.modeling.model import IGNORE_INDEX
from uprm.testing import synthetic_clip

QUESTIONS = ["identify", "<video>\nPlease locate the exact timestamps where the threats occur"]
ANSWERS = ["Yes, there exists a threat.", "The threat occurs between 2 and 3 seconds."]


def batch(model, frames=8, seeds=(0, 1)):
    clips = [synthetic_clip(frames, size=48, seed=s) for s in seeds]
    features = model.collate([model.extract(c) for c in clips])
    inputs = model.tokenize([QUESTIONS[i % 2] for i in range(len(clips))],
                            [ANSWERS[i % 2] for i in range(len(clips))], frames)
    return features, inputs


@pytest.fixture
def model(toy_plugins):
    return build_model(UPRMConfig.tiny(experts=["coarse", "colour", "shade"]))


def test_build_records_experts_versions_and_distributions(model):
    cfg = model.config
    assert model.expert_names == ("colour", "shade", "coarse")
    assert cfg.expert_names == ["colour", "shade", "coarse"]
    assert cfg.versions["uprm-core"] == uprm.__version__
    assert cfg.distributions == {"coarse": "uprm-core", "colour": "test-toy", "shade": "test-toy"}
    assert model.ctx.tokens_per_frame == 17 and model.ctx.hidden_size == 64
    # the coarse expert is Video-LLaVA's own video path
    coarse = model.block.experts["coarse"]
    assert coarse.tower is model.vlm.model.video_tower
    assert coarse.projector is model.vlm.model.multi_modal_projector


def _lora_targets(model):
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and all(".language_model." in n for n in lora)  # never the vision towers
    return {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora}


def test_lora_wraps_every_linear_layer_of_the_language_model_only(model):
    """The default is Video-LLaVA's own LoRA training: every linear layer of the language
    model (not its output head, never a vision tower); q_proj/v_proj is one option away."""
    assert _lora_targets(model) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert model.config.lora.r == 8 and UPRMConfig().lora.r == 16 and UPRMConfig().lora.alpha == 32
    assert UPRMConfig().lora.target_modules == "all-linear"


@pytest.mark.parametrize("targets", ["q_proj,v_proj", ["q_proj", "v_proj"], r".*language_model.*\.(q_proj|v_proj)"])
def test_lora_targets_are_a_config_field(toy_plugins, targets):
    from uprm.modeling.config import LoRASettings

    model = build_model(UPRMConfig.tiny(experts=["coarse"], lora=LoRASettings(r=4, alpha=8, target_modules=targets)))
    assert _lora_targets(model) == {"q_proj", "v_proj"}


def test_forward_loss_is_ce_plus_alpha_z(model):
    features, inputs = batch(model)
    out = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    t = 8 * 17
    assert out.logits.shape[:2] == inputs["input_ids"].shape
    assert out.router_logits.shape == (2, t, 3) and out.expert_weights.shape == (2, t, 3)
    torch.testing.assert_close(out.loss, out.ce_loss + 0.05 * out.z_loss)
    # the CE is over the answer tokens only
    logits = out.logits[:, :-1].float()
    labels = inputs["labels"][:, 1:]
    manual = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                               ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.ce_loss, manual, rtol=1e-4, atol=1e-4)


def test_labels_cover_the_answer_and_its_end_token_only(model):
    inputs = model.tokenize(["identify"], ["Yes, there exists a threat."], 8)
    ids, labels = inputs["input_ids"][0], inputs["labels"][0]
    answer = labels != IGNORE_INDEX
    assert model.tokenizer.decode(ids[answer]).strip() == "Yes, there exists a threat.</s>"
    assert int((ids == model.video_token_id).sum()) == 8 * 17
    assert not answer[ids == model.video_token_id].any()
    # generation prompts are left-padded
    gen = model.tokenize(["identify", "Please describe everything that happens in the video"], None, 8)
    assert gen["attention_mask"][0, 0] == 0 and gen["attention_mask"][1, 0] == 1


def test_gradients_reach_lora_router_adapters_projector_and_nothing_frozen(model):
    features, inputs = batch(model)
    model.train()
    model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    for group in ("block.router.", "block.experts.colour.", "block.experts.shade.", "multi_modal_projector."):
        assert any(group in n for n in trainable), group
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
            if "lora_A" not in n:  # lora_A's gradient is zero while lora_B starts at zero
                assert p.grad.abs().sum() > 0, n
        else:
            assert p.grad is None, n
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any("video_tower" in n for n in frozen) and any("embed_tokens" in n for n in frozen)
    assert any("layers.0.mlp" in n for n in frozen)
    # the tiny backbone also trains its head (a random frozen head cannot learn); the paper's config does not
    assert any(n.endswith("lm_head.weight") for n in trainable)
    assert UPRMConfig().train_modules == []
    assert not model.vlm.model.video_tower.training  # the tower stays in eval mode


def test_basic_router_trains_without_z_loss(toy_plugins):
    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], router="basic"))
    features, inputs = batch(model)
    out = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    assert out.z_loss is None
    torch.testing.assert_close(out.loss, out.ce_loss)


def test_coarse_only_build_is_plain_video_llava(toy_plugins):
    model = build_model(UPRMConfig.tiny(experts=["coarse"]))
    assert model.expert_names == ("coarse",)
    features, inputs = batch(model)
    out = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    # w/o UPE: z is the projected tower output, exactly what Video-LLaVA feeds its LLM
    video = model.vlm.model.get_video_features(
        pixel_values_videos=torch.stack([model.block.experts["coarse"].preprocess(synthetic_clip(8, 48, s).frames)
                                         for s in (0, 1)]),
        vision_feature_layer=-2,
    ).pooler_output
    upe = model.block(features)
    torch.testing.assert_close(upe.z, video.reshape(2, 8 * 17, -1), rtol=1e-4, atol=1e-5)
    assert out.router_logits.shape[-1] == 1


def test_a_missing_coarse_expert_is_added(toy_plugins):
    model = build_model(UPRMConfig.tiny(experts=["colour"]))
    assert model.expert_names == ("colour", "coarse")


@pytest.mark.parametrize("frames", [8, 16])
def test_clips_of_8_and_16_frames(model, frames):
    features, inputs = batch(model, frames=frames)
    out = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    assert out.router_logits.shape[1] == frames * 17
    assert torch.isfinite(out.loss)


def test_a_wrong_number_of_video_tokens_is_a_clear_error(model):
    features, _ = batch(model, frames=8)
    inputs = model.tokenize(["identify", "identify"], ["Yes.", "No."], 4)
    with pytest.raises(ValueError, match="136 tokens per clip"):
        model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])


def test_generation_batched_equals_one_by_one(model):
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)
    clips = [synthetic_clip(8, size=48, seed=s) for s in (0, 1)]
    questions = ["identify", "Please locate the exact timestamps where the threats occur, in seconds"]
    both = model.generate(model.collate([model.extract(c) for c in clips]), questions, max_new_tokens=6)
    for i, clip in enumerate(clips):
        one = model.generate(model.collate([model.extract(clip)]), [questions[i]], max_new_tokens=6)
        assert one.token_ids[0] == both.token_ids[i]
        assert one.token_logprobs[0] == pytest.approx(both.token_logprobs[i], abs=1e-4)
        assert one.texts[0] == both.texts[i]
    assert all(len(ids) <= 6 for ids in both.token_ids)
    assert all(lp <= 0 for lps in both.token_logprobs for lp in lps)


def test_save_and_load_restore_identical_outputs(model, tmp_path):
    features, inputs = batch(model)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        expected = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    model.save_pretrained(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors"]
    # only what was trained is saved: no tower, no base LLM weights
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith(("lora.", "block.", "base.")) for k in keys)
    assert {k for k in keys if k.startswith("base.")} == {"base.lm_head.weight", "base.model.language_model.norm.weight"}
    assert not any("tower" in k or "embed_tokens" in k or ("layers.0.mlp" in k and "lora_" not in k) for k in keys)
    saved = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(model.trainable_state_dict()[k].numel() for k in model.trainable_state_dict()) == saved

    fresh = build_model(UPRMConfig.tiny(experts=["coarse", "colour", "shade"])).eval()
    with torch.no_grad():
        before = fresh(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    assert not torch.allclose(before.logits, expected.logits)
    loaded = UPRMModel.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.expert_names == model.expert_names
    with torch.no_grad():
        got = loaded(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    torch.testing.assert_close(got.logits, expected.logits)
    torch.testing.assert_close(got.router_logits, expected.router_logits)
    torch.testing.assert_close(got.loss, expected.loss)


def test_a_checkpoint_whose_experts_are_missing_names_the_distribution(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    with uprm.testing.isolated_plugins(load_entry_points=False), pytest.raises(uprm.MissingExpertError) as info:
        UPRMModel.from_pretrained(tmp_path / "ckpt")
    message = str(info.value)
    assert "'colour' (from test-toy 0)" in message and "pip install test-toy" in message


def test_a_damaged_checkpoint_is_reported_with_its_file(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"model\.safetensors: cannot read the weights"):
        UPRMModel.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        UPRMModel.from_pretrained(tmp_path / "ckpt")


def test_learns_to_answer_and_detect_returns_segments_with_causes(toy_plugins):
    """Overfit the tiny model on one clip's three answers: generation, parsing, the
    window offset and the score all work end to end."""
    torch.manual_seed(0)
    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=4))
    clip = synthetic_clip(4, size=48, seed=3)
    clip.meta["window"] = [10.0, 14.0]
    features = model.collate([model.extract(clip)] * 3)
    answers = ["Yes, there exists a threat.", "The threat occurs between 1 and 2.5 seconds.",
               "The threat is attributed to a man kicking a car."]
    inputs = model.tokenize(["identify", "locate", "attribute"], answers, 4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(120):
        opt.zero_grad()
        loss = model(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"]).loss
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert model.chat(clip, "identify") == answers[0]
    segments = model.detect(clip)
    assert len(segments) == 1
    seg = segments[0]
    assert (seg.start, seg.end) == (11.0, 12.5)  # window start 10 s added back
    assert seg.cause == "a man kicking a car"
    assert 0.5 < seg.score <= 1.0 and math.isfinite(seg.score)


def test_answer_asks_every_task_of_a_batch_as_one_by_one(model):
    """`answer` runs the experts once for the batch and gives each clip what asking it
    alone gives: the three answers, P(yes), the locate probability, the router weights."""
    clips = [synthetic_clip(4, size=32, seed=s) for s in (5, 6)]
    features = model.collate([model.extract(c) for c in clips])
    together = model.answer(features, max_new_tokens=6)
    for clip, got in zip(clips, together):
        alone = model.answer(model.collate([model.extract(clip)]), max_new_tokens=6)[0]
        assert (got.identify, got.locate, got.attribute) == (alone.identify, alone.locate, alone.attribute)
        assert got.p_yes == pytest.approx(alone.p_yes, abs=1e-5)
        assert got.locate_prob == pytest.approx(alone.locate_prob, abs=1e-5)
        assert list(got.expert_weights) == list(model.expert_names)
        assert sum(got.expert_weights.values()) > 0
    only = model.answer(features, tasks=["identify"], max_new_tokens=3)
    assert all(a.locate == "" and a.attribute == "" and a.locate_prob == 1.0 for a in only)
    assert [a.p_yes for a in only] == pytest.approx([a.p_yes for a in together], abs=1e-5)
    with pytest.raises(ValueError, match="unknown task"):
        model.answer(features, tasks=["explain"])


def test_clip_answers_become_segments_in_seconds_of_the_video():
    from uprm.inference import ClipAnswers

    a = ClipAnswers(identify="Yes, there exists a threat.", locate="The threat occurs between 2 and 5 seconds.",
                    attribute="The threat is attributed to a man hitting a car.", p_yes=0.8, locate_prob=0.5)
    [seg] = a.segments(window=(10.0, 14.0))
    assert (seg.start, seg.end, seg.cause, seg.score) == (12.0, 14.0, "a man hitting a car", pytest.approx(0.4))
    assert a.segments(duration=3.0)[0].end == 3.0
    assert ClipAnswers(identify="No, there is no threat.", locate=a.locate).segments() == []
