"""The pose expert inside a (tiny, randomly initialised) UPRM model: built by name from
its entry point, trained one step through the trade-off router, saved and reloaded."""

import torch

import uprm
from uprm_expert_pose import PoseExpert
from uprm_expert_pose.testing import pose_clip

POSE = {"joint_dim": 8, "pose_dim": 16, "num_heads": 2, "ffn_mult": 2, "max_people": 3}


def test_tiny_uprm_with_the_pose_expert(tmp_path):
    config = uprm.UPRMConfig.tiny(experts=["coarse", "pose"], num_frames=4, expert_options={"pose": POSE})
    model = uprm.build_model(config)
    pose = model.block.experts["pose"]
    assert isinstance(pose, PoseExpert) and model.config.distributions["pose"] == "uprm-expert-pose"
    assert list(model.block.expert_names) == ["pose", "coarse"]

    clips = [pose_clip(tmp_path, [0, 2, 1, 4], seed=0), pose_clip(tmp_path, [3, 0, 0, 1], seed=1, layout="results")]
    features = model.collate([model.extract(c) for c in clips])
    assert features["pose"]["person_mask"].shape == (2, 4, 3)
    inputs = model.tokenize(["identify", "identify"], ["Yes, there exists a threat.", "No, there is no threat."])
    model.train()
    out = model(**inputs, features=features)
    assert torch.isfinite(out.loss) and out.expert_weights.shape[-1] == 2
    out.loss.backward()
    grads = [p.grad for p in pose.adapter.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    with torch.no_grad():  # "training" moved the pose adapter
        for p in pose.adapter.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    with torch.no_grad():
        expected = model(**inputs, features=features).logits
    model.save_pretrained(tmp_path / "run")
    loaded = uprm.UPRMModel.from_pretrained(tmp_path / "run").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs, features=features).logits, expected, atol=1e-4, rtol=1e-4)
