"""Network conventions: online, each library resolves names as its users expect;
``UPRM_OFFLINE=1`` alone makes every main path local-only — proved by running extract, a
training step and detect in a fresh interpreter where any network socket raises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from uprm.offline import configure_offline, is_offline

SWITCHES = ("UPRM_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE")


@pytest.fixture
def online(monkeypatch):
    for var in SWITCHES:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_online_nothing_is_switched_off(online):
    configure_offline()
    assert not any(var in os.environ for var in SWITCHES)
    assert not is_offline() and not is_offline("huggingface") and not is_offline("ultralytics")


def test_uprm_offline_reaches_every_library_without_overriding_the_user(online):
    online.setenv("UPRM_OFFLINE", "1")
    online.setenv("YOLO_OFFLINE", "false")  # the user's own value
    configure_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["YOLO_OFFLINE"] == "false"
    assert is_offline("ultralytics")  # UPRM_OFFLINE wins for UPRM's own decisions


def test_each_library_switch_applies_to_its_library_only(online):
    online.setenv("HF_HUB_OFFLINE", "1")
    assert is_offline("huggingface") and not is_offline("ultralytics") and is_offline()
    online.delenv("HF_HUB_OFFLINE")
    online.setenv("YOLO_OFFLINE", "True")
    assert is_offline("ultralytics") and not is_offline("huggingface")
    with pytest.raises(ValueError, match="unknown library"):
        is_offline("tensorflow")


# the guard (tests/socket_guard.py, shared with tests/robustness), then the main paths
_SCRIPT = Path(__file__).with_name("socket_guard.py").read_text(encoding="utf-8") + textwrap.dedent(
    """
    import socket, sys

    import torch
    import uprm
    from uprm.cli import main
    from uprm.data import InstructionDataset, UPRMCollator, clip_from_record, load_records
    from uprm.synthetic import generate_world

    world = generate_world(sys.argv[1] + "/world", 2, seed=3, progress=False, min_duration=6.0, max_duration=6.0,
                           normal_fraction=0.0)
    train = sys.argv[1] + "/world/" + world["instructions"]["train"]
    experts = sorted(uprm.available_experts())
    # extract, through the command line
    assert main(["extract", "--data", train, "--model", "tiny", "--num-frames", "2", "--out", sys.argv[1] + "/cache",
                 "--quiet"]) == 0
    # a training step from the cache
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=6))
    data = InstructionDataset(train, model.block, sys.argv[1] + "/cache", num_frames=2)
    batch = UPRMCollator(model.collate, model.tokenize)([data[0], data[1]])
    out = model(batch["input_ids"], batch["attention_mask"], batch["features"], batch["labels"])
    out.loss.backward()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    # detect on one clip
    segments = model.detect(clip_from_record(load_records(train)[0], 2))
    assert attempts == [], attempts
    try:  # the guard itself works: a lookup is caught
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        pass
    assert attempts == [("huggingface.co", 443)], attempts
    print("OK", ",".join(experts), len(data), type(segments).__name__)
    """
)


@pytest.mark.slow
def test_offline_no_socket_is_opened_on_the_main_paths(tmp_path):
    """Only UPRM_OFFLINE=1 is set (none of the libraries' own switches): extract, a
    training step and detect, with every installed expert, open no network socket."""
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    env.update(UPRM_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo"))
    result = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=600, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr[-4000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("OK ") and "coarse" in line, result.stdout
