"""The adapter: eq.1 attends only over skeleton neighbours (proved by perturbation),
padding and person order do not matter, per-frame vs full self-attention, model_dim."""

import pytest
import torch

from uprm.testing import random_video_tokens, tiny_context
from uprm_expert_pose import PoseExpert
from uprm_expert_pose.adapter import JointGraphAttention, PoseAdapter
from uprm_expert_pose.skeleton import COCO_JOINTS, COCO_SKELETON, NUM_JOINTS, neighbour_mask
from uprm_expert_pose.testing import pose_clip

SMALL = dict(joint_dim=8, pose_dim=16, num_heads=2, ffn_mult=2)


def test_coco_skeleton():
    mask = neighbour_mask()
    assert len(COCO_JOINTS) == NUM_JOINTS == 17 and len(COCO_SKELETON) == 19
    assert torch.equal(mask, mask.T) and not mask.diagonal().any()
    assert mask.sum() == 2 * 19 and mask.any(dim=1).all()
    j = COCO_JOINTS.index
    assert mask[j("left_elbow"), j("left_wrist")] and mask[j("left_shoulder"), j("left_hip")]
    assert not mask[j("left_wrist"), j("right_wrist")] and not mask[j("nose"), j("left_ankle")]


def test_the_skeleton_is_the_projects_one():
    """One COCO skeleton for the whole project (uprm.coco), still importable from here."""
    import uprm.coco
    from uprm_expert_pose import skeleton

    assert skeleton.COCO_SKELETON is uprm.coco.COCO_SKELETON
    assert skeleton.COCO_JOINTS is uprm.coco.COCO_KEYPOINTS and skeleton.NUM_JOINTS == uprm.coco.NUM_JOINTS
    assert {frozenset(b) for b in skeleton.COCO_SKELETON} == {
        frozenset(map(skeleton.COCO_JOINTS.index, pair))
        for pair in [("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
                     ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
                     ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
                     ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
                     ("right_elbow", "right_wrist"), ("left_eye", "right_eye"), ("nose", "left_eye"),
                     ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
                     ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder")]
    }  # fmt: skip


def test_joint_attention_is_masked_to_skeleton_neighbours():
    """Eq.1: changing a joint that is not a neighbour of node k (nor k itself) leaves
    k's update exactly unchanged; changing a neighbour changes it."""
    torch.manual_seed(0)
    layer = JointGraphAttention(16)
    g = torch.randn(3, NUM_JOINTS, 16)
    base, beta = layer(g, return_weights=True)
    mask = neighbour_mask()
    assert torch.all(beta[:, ~mask] == 0)
    torch.testing.assert_close(beta.sum(-1), torch.ones(3, NUM_JOINTS))
    for other in range(NUM_JOINTS):
        moved = g.clone()
        moved[:, other] += 5 * torch.randn(3, 16)
        out = layer(moved)
        for k in range(NUM_JOINTS):
            if k == other:
                continue
            if mask[k, other]:
                assert not torch.allclose(out[:, k], base[:, k]), (COCO_JOINTS[k], COCO_JOINTS[other])
            else:
                assert torch.equal(out[:, k], base[:, k]), (COCO_JOINTS[k], COCO_JOINTS[other])


def test_joint_attention_formula():
    """g'_k = ReLU(V_u [Σ_l β_kl g_l, g_k]), β = softmax over M(k) of (V_a g_k)·(V_a g_l)/√p."""
    torch.manual_seed(1)
    layer = JointGraphAttention(4)
    g = torch.randn(NUM_JOINTS, 4)
    a = g @ layer.score_proj.weight.T
    k = COCO_JOINTS.index("left_elbow")
    neighbours = [COCO_JOINTS.index("left_shoulder"), COCO_JOINTS.index("left_wrist")]
    scores = torch.stack([a[k] @ a[n] for n in neighbours]) / 2.0  # √p = 2
    beta = scores.softmax(0)
    g_hat = sum(b * g[n] for b, n in zip(beta, neighbours))
    expected = torch.relu(layer.update(torch.cat([g_hat, g[k]])))
    torch.testing.assert_close(layer(g)[k], expected)


def _features(tmp_path, counts, seed=0):
    expert = PoseExpert(tiny_context(), max_people=4)
    return expert.collate([expert.extract(pose_clip(tmp_path, counts, seed=seed))])


def test_padded_people_do_not_reach_the_output(tmp_path):
    torch.manual_seed(0)
    adapter = PoseAdapter(32, 17, **SMALL).eval()
    feats = _features(tmp_path, [2, 0, 1, 4])
    tokens = random_video_tokens(tiny_context(), 1)
    junk = {k: v.clone() for k, v in feats.items()}
    pad = ~junk["person_mask"]
    junk["keypoints"][pad] = torch.rand(int(pad.sum()), 17, 3)
    junk["boxes"][pad] = torch.rand(int(pad.sum()), 4)
    junk["scores"][pad] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(adapter(junk, tokens), adapter(feats, tokens))


def test_person_order_does_not_matter(tmp_path):
    torch.manual_seed(0)
    adapter = PoseAdapter(32, 17, **SMALL).eval()
    feats = _features(tmp_path, [3, 3, 3, 3])
    perm = torch.tensor([2, 0, 1, 3])
    shuffled = {k: v[:, :, perm] for k, v in feats.items()}
    tokens = random_video_tokens(tiny_context(), 1)
    with torch.no_grad():
        torch.testing.assert_close(adapter(shuffled, tokens), adapter(feats, tokens), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("mode", "local"), [("frame", True), ("full", False)])
def test_self_attention_scope(tmp_path, mode, local):
    """With per-frame MSA (and no temporal layer) frame 3's poses reach only frame 3's
    tokens; with full MSA over T they reach every frame (eq.2 over the whole clip)."""
    torch.manual_seed(0)
    adapter = PoseAdapter(32, 17, **SMALL, temporal_layers=0, self_attention=mode).eval()
    feats = _features(tmp_path, [1, 2, 1, 2])
    moved = {k: v.clone() for k, v in feats.items()}
    moved["keypoints"][:, 3, :, :, :2] = moved["keypoints"][:, 3, :, :, :2].flip(-1)
    tokens = random_video_tokens(tiny_context(), 1)
    with torch.no_grad():
        a, b = adapter(feats, tokens), adapter(moved, tokens)
    assert not torch.allclose(a[:, 3 * 17 :], b[:, 3 * 17 :])
    assert torch.allclose(a[:, : 3 * 17], b[:, : 3 * 17]) == local


def test_temporal_layer_carries_poses_across_frames(tmp_path):
    torch.manual_seed(0)
    adapter = PoseAdapter(32, 17, **SMALL, temporal_layers=1, self_attention="frame").eval()
    feats = _features(tmp_path, [1, 2, 1, 2])
    moved = {k: v.clone() for k, v in feats.items()}
    moved["keypoints"][:, 3, :, :, :2] = moved["keypoints"][:, 3, :, :, :2].flip(-1)
    tokens = random_video_tokens(tiny_context(), 1)
    with torch.no_grad():
        assert not torch.allclose(adapter(feats, tokens)[:, :17], adapter(moved, tokens)[:, :17])


def test_the_paper_form_is_the_default_and_the_residual_form_an_option(tmp_path):
    """Default: the output is T_{c+1} = block(T_c), T_c the cross-attention output itself
    (eq.2-3), so the coarse tokens reach it only as queries. residual=True: the old form,
    T_c = LN(T_v + CrossAttn), with the coarse tokens added in."""
    ctx = tiny_context()
    expert = PoseExpert(ctx, **SMALL)
    assert expert.options["residual"] is False and expert.options["temporal_layers"] == 0
    assert expert.adapter.cross_norm is None and expert.adapter.tokenizer.temporal is None
    feats = _features(tmp_path, [1, 0, 2, 1])
    tokens = random_video_tokens(ctx, 1)
    for residual in (False, True):
        torch.manual_seed(0)
        adapter = PoseAdapter(32, 17, **SMALL, residual=residual).eval()
        with torch.no_grad():
            pose_tokens, pose_mask = adapter.tokenizer(
                feats["keypoints"], feats["boxes"], feats["scores"], feats["person_mask"]
            )
            t_c = adapter.cross(tokens, pose_tokens, pose_mask)
            if residual:
                t_c = adapter.cross_norm(tokens + t_c)
            torch.testing.assert_close(adapter(feats, tokens), adapter.block(t_c))
    assert "cross_norm.weight" in PoseAdapter(32, 17, **SMALL, residual=True).state_dict()
    assert not any(k.startswith("cross_norm.") for k in PoseAdapter(32, 17, **SMALL).state_dict())


def test_pose_tokens_carry_their_frame_position(tmp_path):
    """The same people in every frame still give each frame's keys its own position, so
    frames are told apart (uprm.experts.grid.add_frame_positions)."""
    from uprm.experts.grid import frame_positions

    torch.manual_seed(0)
    adapter = PoseAdapter(32, 17, **SMALL).eval()
    feats = _features(tmp_path, [2, 2, 2, 2])
    same = {k: v[:, :1].expand_as(v).clone() for k, v in feats.items()}  # frame 0 four times
    with torch.no_grad():
        tokens, _ = adapter.tokenizer(same["keypoints"], same["boxes"], same["scores"], same["person_mask"])
    torch.testing.assert_close(tokens - tokens[:, :1], (frame_positions(4, 16) - frame_positions(4, 16)[:1])[None, :, None].expand_as(tokens))


@pytest.mark.parametrize("options", [{}, {"temporal_layers": 1, "residual": True}])
def test_a_pose_expert_without_frame_positions_fails_the_standard_frame_order_test(monkeypatch, tmp_path, options):
    """The mutation check: drop the frame positions and the standard test notices."""
    import uprm_expert_pose.adapter as adapter_module
    from uprm.testing import ExpertTests

    class Suite(ExpertTests):
        expert_class = PoseExpert
        expert_options = dict(SMALL, **options)

        def make_clip(self, ctx, seed, num_frames):
            return pose_clip(tmp_path, [(seed + f) % 4 for f in range(num_frames)], seed=seed)

    def check():
        suite, ctx = Suite(), tiny_context()
        torch.manual_seed(0)
        expert = suite.make_expert(ctx)
        suite.test_frame_order_matters(expert, ctx, [suite.make_clip(ctx, s, ctx.num_frames) for s in (0, 1)])

    check()  # as shipped: frame order matters
    monkeypatch.setattr(adapter_module, "add_frame_positions", lambda x, frame_dim=1: x)
    with pytest.raises(AssertionError, match="cannot tell frame order"):
        check()


def test_model_dim_runs_eq2_3_narrower(tmp_path):
    ctx = tiny_context(hidden_size=64)
    wide = PoseAdapter(64, 17, **SMALL)
    narrow = PoseAdapter(64, 17, **SMALL, model_dim=16)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in wide.parameters())
    out = narrow(_features(tmp_path, [1, 0, 2, 1]), random_video_tokens(ctx, 1).bfloat16())
    assert out.shape == (1, 4 * 17, 64) and out.dtype == torch.bfloat16


def test_bad_options_and_inputs(tmp_path):
    with pytest.raises(ValueError, match="self_attention"):
        PoseExpert(tiny_context(), self_attention="global")
    with pytest.raises(ValueError, match="source"):
        PoseExpert(tiny_context(), source="hrnet")
    with pytest.raises(ValueError, match="source='yolo' needs weights="):
        PoseExpert(tiny_context(), source="yolo")
    with pytest.raises(ValueError, match="not both"):
        PoseExpert(tiny_context(), weights="a.pt", model_config="yolo11n-pose.yaml")
    expert = PoseExpert(tiny_context(), **SMALL)
    feats = _features(tmp_path, [1, 0, 2, 1])
    with pytest.raises(ValueError, match=r"keypoints are for \(1, 4\).*\(1, 2\)"):
        expert(feats, random_video_tokens(tiny_context(), 1, num_frames=2))
    with pytest.raises(ValueError, match="not"):
        expert(feats, torch.randn(1, 50, 32))  # not a whole number of frames


def test_registered_through_the_entry_point():
    import uprm

    assert uprm.available_experts()["pose"] is PoseExpert
    assert PoseExpert.granularity == "fine"


def _people(k: int = 4, seed: int = 0):
    """One frame of ``k`` people (batch 1), random joints inside their boxes."""
    g = torch.Generator().manual_seed(seed)
    keypoints = torch.rand(1, 1, k, NUM_JOINTS, 3, generator=g)
    keypoints[..., 2] = 1.0
    boxes = torch.tensor([0.1, 0.1, 0.6, 0.9]).expand(1, 1, k, 4).clone()
    return keypoints, boxes, torch.ones(1, 1, k), torch.ones(1, 1, k, dtype=torch.bool)


def test_a_frame_token_is_the_max_over_its_people_by_default_or_their_mean():
    """person_pool="max" (default): one person's pose is not averaged away by the others
    (the frame token before its projection is the element-wise maximum); "mean" keeps the
    masked mean; both ignore padded people and give an empty frame the "nobody" token."""
    from uprm_expert_pose.adapter import PoseTokenizer

    torch.manual_seed(0)
    for pool, reduce in (("max", lambda p: p.amax(dim=2)), ("mean", lambda p: p.mean(dim=2))):
        tok = PoseTokenizer(joint_dim=8, pose_dim=16, person_pool=pool)
        assert PoseAdapter(16, 4, **SMALL).tokenizer.person_pool == "max"
        kp, boxes, scores, mask = _people()
        seen = {}
        tok.frame_proj.register_forward_hook(lambda m, args, out, seen=seen: seen.update(pooled=args[0]))
        tokens, _ = tok(kp, boxes, scores, mask)
        person = tokens[:, :, 1:] - (tokens[:, :, :1] - tok.frame_proj(seen["pooled"])[:, :, None])  # frame position off
        assert torch.allclose(seen["pooled"], reduce(person), atol=1e-5)
        padded = [torch.cat([x, torch.zeros_like(x[:, :, :2])], dim=2) for x in (kp, boxes, scores)]
        tokens2, _ = tok(*padded, torch.cat([mask, torch.zeros_like(mask[:, :, :2])], dim=2))
        assert torch.allclose(tokens2[:, :, 0], tokens[:, :, 0], atol=1e-6)  # padding never counts
        empty, _ = tok(kp, boxes, scores, torch.zeros_like(mask))
        other, _ = tok(torch.rand_like(kp), boxes, scores, torch.zeros_like(mask))
        assert torch.isfinite(empty).all() and torch.equal(empty[:, :, 0], other[:, :, 0])  # the "nobody" token


def test_max_pooling_keeps_one_persons_change_that_the_mean_dilutes():
    """Change one of eight people: the max-pooled frame token moves by more, relative to the
    frame tokens' spread over random frames, than the mean-pooled one."""
    from uprm_expert_pose.adapter import PoseTokenizer

    def share(pool: str) -> float:
        torch.manual_seed(0)
        tok = PoseTokenizer(joint_dim=8, pose_dim=16, person_pool=pool)
        frames = [_people(8, seed) for seed in range(16)]
        with torch.no_grad():
            frame = torch.cat([tok(*f)[0][:, :, 0] for f in frames])
            kp, boxes, scores, mask = frames[0]
            moved = kp.clone()
            moved[:, :, 0, :, :2] = torch.rand(NUM_JOINTS, 2, generator=torch.Generator().manual_seed(99))
            delta = (tok(moved, boxes, scores, mask)[0][:, :, 0] - frame[:1]).norm()
        return float(delta / frame.std(dim=0).norm())

    assert share("max") > 1.5 * share("mean")


def test_an_unknown_person_pool_is_refused():
    with pytest.raises(ValueError, match="person_pool must be one of"):
        PoseAdapter(16, 4, person_pool="sum", **SMALL)
