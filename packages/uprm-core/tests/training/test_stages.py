"""Stage 1 (pre-tuning on RSI-CB images and HumanML3D motion videos, mixed in one run:
bucketed by frame count) then stage 2 (the DeepSVU instructions) from its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uprm import UPRMModel
from uprm.training import TINY_LR, make_config, train
from uprm.training.build import build_training_model, resolve_config

from .conftest import FRAMES, invoke


@pytest.fixture
def stage1_files(world, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rsicb = tmp_path / "RSI-CB128"
    for label in ("river", "city_building"):
        for i in range(3):
            path = rsicb / label / f"{label}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    motions = tmp_path / "HumanML3D"
    (motions / "texts").mkdir(parents=True)
    renders = tmp_path / "renders"
    renders.mkdir()
    videos = sorted((world / "videos").glob("*.mp4"))[:4]
    for i, video in enumerate(videos):  # the world's clips stand in for rendered motions
        (motions / "texts" / f"00000{i}.txt").write_text(f"a person walks and turns {i} times#a/DET#0.0#0.0\n")
        (renders / f"00000{i}.mp4").symlink_to(video)
    (motions / "train.txt").write_text("".join(f"00000{i}\n" for i in range(len(videos))))
    out = tmp_path / "stage1"
    invoke("data", "rsicb", rsicb, "--out", out / "rsicb.json")
    invoke("data", "humanml3d", motions, "--videos", renders, "--out", out / "humanml3d.json")
    return [out / "rsicb.json", out / "humanml3d.json"]


def test_pretune_then_deepsvu_from_its_checkpoint(stage1_files, split_files, cache, tmp_path):
    common = {"tiny": True, "experts": ["coarse"], "num_frames": FRAMES, "batch_size": 2, "progress": False}
    stage1 = train(stage="pretune", data=[str(f) for f in stage1_files], out=str(tmp_path / "s1"), max_steps=4,
                   cache=str(tmp_path / "s1-cache"), **common)
    derived = json.loads((stage1 / "train_config.json").read_text())["derived"]
    assert derived["buckets"] == {"1": 6, str(FRAMES): 4}  # images are one-frame clips, batched apart
    assert len((stage1 / "log.jsonl").read_text().splitlines()) == 4

    settings = {**common, "experts": None, "tiny": False}  # experts and tiny-ness come from --init
    config = make_config(stage="deepsvu", init=str(stage1), data=[str(split_files["train"])], cache=str(cache),
                         out=str(tmp_path / "s2"), max_steps=2, **settings)
    resolved = resolve_config(config)
    assert resolved.experts == ["coarse"] and resolved.tiny and resolved.lr == TINY_LR
    start = build_training_model(resolved).trainable_state_dict()
    pretuned = UPRMModel.from_pretrained(stage1).trainable_state_dict()
    assert all(torch.equal(start[k], pretuned[k]) for k in pretuned)  # stage 2 starts where stage 1 ended

    stage2 = train(config)
    assert json.loads((stage2 / "train_config.json").read_text())["config"]["init"] == str(stage1)
    final = UPRMModel.from_pretrained(stage2).trainable_state_dict()
    assert any(not torch.equal(final[k], pretuned[k]) for k in pretuned)
