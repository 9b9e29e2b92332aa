"""Loading a real Video-LLaVA checkpoint layout from disk, refusing a hub id whose files
are not here, and the config's JSON round trip."""

import json
import time

import pytest
import torch

from uprm.errors import CheckpointError, ConfigError
from uprm.modeling import UPRMConfig, build_model
from uprm.modeling.backbone import BackboneNotFoundError, build_tiny_backbone, load_backbone
from uprm.testing import synthetic_clip


def test_a_local_video_llava_directory_loads_like_a_real_checkpoint(tmp_path, toy_plugins):
    tiny = UPRMConfig.tiny().tiny_backbone
    vlm, tokenizer = build_tiny_backbone(tiny, seed=0)
    vlm.save_pretrained(tmp_path / "video-llava")
    tokenizer.save_pretrained(tmp_path / "video-llava")

    from_disk = build_model(UPRMConfig(backbone=str(tmp_path / "video-llava"), experts=["coarse"],
                                       lora={"r": 8, "alpha": 16})).eval()
    in_memory = build_model(UPRMConfig.tiny(experts=["coarse"], train_modules=[])).eval()
    assert from_disk.tokenizer.convert_tokens_to_ids("<video>") == from_disk.video_token_id
    clip = synthetic_clip(8, size=48)
    features = from_disk.collate([from_disk.extract(clip)])
    torch.testing.assert_close(features["coarse"]["vision_features"],
                               in_memory.collate([in_memory.extract(clip)])["coarse"]["vision_features"])
    inputs = from_disk.tokenize(["identify"], ["Yes, there exists a threat."], 8)
    assert torch.equal(inputs["input_ids"], in_memory.tokenize(["identify"], ["Yes, there exists a threat."], 8)["input_ids"])
    with torch.no_grad():
        a = from_disk(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
        b = in_memory(inputs["input_ids"], inputs["attention_mask"], features, inputs["labels"])
    torch.testing.assert_close(a.logits, b.logits)


def test_offline_a_hub_id_that_is_not_on_disk_fails_at_once_and_says_what_to_do(monkeypatch):
    import socket

    tried = []  # "at once": no connection attempted, no retry waited for (counted, not timed)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: tried.append(("connect", address)))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: tried.append(("connect", address)))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: tried.append(("resolve", host)) or [])
    monkeypatch.setattr(time, "sleep", lambda seconds: tried.append(("sleep", seconds)))
    with pytest.raises(BackboneNotFoundError) as info:
        load_backbone("LanguageBind/Video-LLaVA-7B-hf")
    assert tried == []
    message = str(info.value)
    assert "offline mode is on" in message and "pass that directory" in message
    assert "LanguageBind/Video-LLaVA-7B-hf" in message


def test_online_a_hub_id_is_resolved_by_transformers(monkeypatch):
    """Online (no offline switch), a hub id goes to transformers as its users expect:
    not local-only, so transformers may fetch it; offline, local-only."""
    import transformers

    seen = []

    def fake(kind):
        def from_pretrained(source, **kwargs):
            seen.append((kind, source, kwargs.get("local_files_only")))
            return object()

        return from_pretrained

    monkeypatch.setattr(transformers.VideoLlavaForConditionalGeneration, "from_pretrained", fake("model"))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake("tokenizer"))
    for var in ("UPRM_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    load_backbone("LanguageBind/Video-LLaVA-7B-hf")
    assert seen == [("model", "LanguageBind/Video-LLaVA-7B-hf", False),
                    ("tokenizer", "LanguageBind/Video-LLaVA-7B-hf", False)]
    seen.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the library's own switch is enough
    load_backbone("LanguageBind/Video-LLaVA-7B-hf")
    assert [s[2] for s in seen] == [True, True]


def test_a_missing_or_incomplete_directory_is_named(tmp_path):
    with pytest.raises(BackboneNotFoundError, match="no such directory"):
        load_backbone(str(tmp_path / "nowhere"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(BackboneNotFoundError, match=r"half: not a complete Video-LLaVA checkpoint"):
        load_backbone(str(tmp_path / "half"))


def test_config_json_round_trip(tmp_path):
    config = UPRMConfig(experts=["pose", "coarse"], router="basic", backbone="/models/video-llava",
                        expert_options={"pose": {"weights": "/w/yolo11n-pose.pt"}})
    assert config.experts == ["coarse", "pose"]
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (16, 32, 0.05)
    assert (config.z_loss_alpha, config.num_frames, config.router) == (0.05, 8, "basic")
    path = config.save_pretrained(tmp_path)
    data = json.loads(path.read_text())
    assert data["model_type"] == "uprm" and data["lora"]["target_modules"] == "all-linear"
    again = UPRMConfig.from_pretrained(tmp_path)
    assert again == config
    assert UPRMConfig.from_dict(json.loads(config.to_json_string())) == config


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"^router: Input should be 'tradeoff' or 'basic' \(got 'sparse'\)"):
        UPRMConfig(router="sparse")
    with pytest.raises(ConfigError, match=r"^colour: unknown setting \(known settings: backbone, .*num_frames"):
        UPRMConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match=r"^lora: r: Input should be greater than 0 \(got 0\)"):
        UPRMConfig(lora={"r": 0})
    with pytest.raises(ConfigError, match=r"^train_modules: '\(' is not a valid regex"):
        UPRMConfig.tiny(train_modules=["("])
    config = UPRMConfig.tiny()
    with pytest.raises(ConfigError, match=r"^num_frames: Input should be greater than 0 \(got 0\)"):
        config.num_frames = 0  # an assignment is checked too
    assert config.num_frames == 8
    with pytest.raises(ConfigError, match=r"^expert_options.pose: Input should be a valid dictionary \(got 1\)"):
        config.replace(expert_options={"pose": 1})
    options = {"pose": {"classes": [0]}}
    copied = config.replace(expert_options=options)
    options["pose"]["classes"].append(1)  # the config owns its copy
    assert copied.expert_options == {"pose": {"classes": [0]}} and config.expert_options == {}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="not a UPRM config"):
        UPRMConfig.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"no UPRM config\.json"):
        UPRMConfig.from_pretrained(tmp_path / "missing")


def test_tiny_is_small_and_the_default_is_the_paper():
    tiny = UPRMConfig.tiny(num_frames=4)
    assert tiny.is_tiny and tiny.num_frames == 4 and tiny.tiny_backbone["text"]["hidden_size"] == 64
    paper = UPRMConfig(backbone="/x")
    assert not paper.is_tiny and paper.tiny_backbone is None and paper.train_modules == []
