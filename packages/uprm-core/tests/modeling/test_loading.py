"""The one loader (``uprm.load_model``): what it returns, the fingerprint, ``device="auto"``,
expert options merged over the saved ones, the same errors for every caller — and that
no entry point builds a running model any other way."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

import uprm
from uprm.errors import CheckpointError, MissingExpertError
from uprm.modeling import UPRMConfig, UPRMModel, build_model
from uprm.modeling.loading import LoadedModel, load_model, model_fingerprint, resolve_device

SRC = Path(uprm.__file__).parent


@pytest.fixture
def checkpoint(tmp_path):
    model = build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=2))
    return model.save_pretrained(tmp_path / "ckpt")


def test_a_checkpoint_loads_in_eval_mode_with_its_fingerprint_and_device(checkpoint):
    loaded = uprm.load_model(checkpoint)
    assert isinstance(loaded, LoadedModel) and isinstance(loaded.model, UPRMModel)
    assert loaded.device == "cpu" and loaded.checkpoint == str(checkpoint)
    assert not loaded.model.training and loaded.model.device.type == "cpu"
    assert loaded.fingerprint.startswith("sha256:") and len(loaded.fingerprint) == len("sha256:") + 64
    assert uprm.load_model(checkpoint).fingerprint == loaded.fingerprint  # stable


def test_the_fingerprint_follows_the_weights_and_the_config(checkpoint):
    before = model_fingerprint(checkpoint)
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    after = model_fingerprint(checkpoint)
    assert after != before
    config = json.loads((checkpoint / "config.json").read_text())
    config["max_new_tokens"] = 7
    (checkpoint / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(checkpoint) not in (before, after)


def test_the_same_weights_save_to_the_same_bytes_and_fingerprint(tmp_path):
    """A checkpoint's fingerprint names its weights: saving the same model again (a resumed
    run, a retrained identical model) gives the same file, whatever order a map in the
    writer happens to iterate in."""
    model = build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=2))
    saved = [model.save_pretrained(tmp_path / f"copy{i}") for i in range(8)]
    assert len({(d / "model.safetensors").read_bytes() for d in saved}) == 1
    assert len({model_fingerprint(d) for d in saved}) == 1


def test_a_model_object_is_fingerprinted_by_its_trained_weights():
    model = build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=2))
    first = load_model(model, device=None)
    assert first.model is model and first.checkpoint is None and first.device == "cpu"
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1.0)
    assert load_model(model).fingerprint != first.fingerprint
    with pytest.raises(ValueError, match="apply when loading a checkpoint"):
        load_model(model, expert_options={"coarse": {}})


def test_threads_are_set_for_the_process(checkpoint):
    before = torch.get_num_threads()
    try:
        load_model(checkpoint, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        load_model(checkpoint, threads=0)


def test_auto_is_the_process_s_own_gpu_under_torchrun(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == "cpu"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:3") == "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == "cuda:1"


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'nowhere'}: no such checkpoint folder"):
        load_model(tmp_path / "nowhere")


def test_expert_options_merge_over_the_saved_ones(tmp_path):
    model = build_model(UPRMConfig.tiny(experts=["coarse", "pose"], num_frames=2,
                                        expert_options={"pose": {"pose_dim": 48, "max_people": 4}}))
    path = model.save_pretrained(tmp_path / "ckpt")
    # only max_people is given: the saved pose_dim (which the adapter's weights need) is kept
    loaded = UPRMModel.from_pretrained(path, expert_options={"pose": {"max_people": 2}})
    assert loaded.config.expert_options["pose"]["pose_dim"] == 48
    assert loaded.config.expert_options["pose"]["max_people"] == 2
    assert loaded.block.experts["pose"].options["max_people"] == 2
    via_loader = load_model(path, expert_options={"pose": {"max_people": 3}}).model
    assert via_loader.config.expert_options["pose"] == {**loaded.config.expert_options["pose"], "max_people": 3}


def test_eval_names_the_missing_expert_distribution_as_detect_does(toy_plugins, tmp_path):
    from uprm.detection import detect_files
    from uprm.evaluation import evaluate

    model = build_model(UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=2))
    path = model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    config["experts"] = config["expert_names"] = ["pose", "coarse"]  # pose is not among the toy plugins
    (path / "config.json").write_text(json.dumps(config))
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"video": "v.mp4", "task": "identify", "conversations": [
        {"from": "human", "value": "<video>\nIs there a threat?"}, {"from": "gpt", "value": "No."}]}]))
    with pytest.raises(MissingExpertError, match="pip install uprm-expert-pose") as from_eval:
        evaluate(path, data)
    report = detect_files([tmp_path / "v.mp4"], path, tmp_path / "out")
    (error,) = report.errors
    assert type(error) is type(from_eval.value) and str(error) == str(from_eval.value)


def _calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
            owner = node.func.value
            found.append(owner.id if isinstance(owner, ast.Name) else ast.unparse(owner))
    return found


def test_only_the_loader_turns_a_checkpoint_into_a_model():
    """detect, eval, extract, serve, watch, train --init and the demo go through
    ``uprm.modeling.loading.load_model``: no other module of the core calls
    ``UPRMModel.from_pretrained``."""
    offenders = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in ("modeling/loading.py", "modeling/model.py", "modeling/config.py"):
            continue
        calls = [c for c in _calls(ast.parse(path.read_text(encoding="utf-8"))) if "UPRMModel" in c or c == "cls"]
        if calls:
            offenders[rel] = calls
    assert offenders == {}
