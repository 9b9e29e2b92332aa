"""VideoClip validation, ExpertContext, and the grid helpers plugins rely on."""

import pytest
import torch

import uprm
from uprm.experts.grid import (
    GridCrossAttention,
    add_frame_positions,
    boxes_to_patch_mask,
    broadcast_frames,
    frame_positions,
    pool_to_grid,
)


def test_video_clip_validates_its_fields():
    frames = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    clip = uprm.VideoClip(frames, [0.0, 0.5, 1.0], "v", 2.0)
    assert clip.num_frames == 3 and clip.timestamps.dtype == torch.float64
    assert "v" in repr(clip) and "0.00-1.00s" in repr(clip)
    with pytest.raises(ValueError, match="must have shape"):
        uprm.VideoClip(torch.zeros(3, 8, 8, dtype=torch.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match="uint8"):
        uprm.VideoClip(frames.float(), [0, 1, 2])
    with pytest.raises(ValueError, match="3 frames but 2 timestamps"):
        uprm.VideoClip(frames, [0, 1])
    with pytest.raises(ValueError, match="non-decreasing"):
        uprm.VideoClip(frames, [0, 2, 1])


def test_expert_context():
    ctx = uprm.ExpertContext(hidden_size=64, num_frames=8, tokens_per_frame=17)
    assert ctx.grid_size == 4 and ctx.num_tokens == 136
    assert ctx.to_dict() == {"hidden_size": 64, "num_frames": 8, "tokens_per_frame": 17,
                             "num_prefix_tokens": 1, "image_size": 224}
    assert uprm.ExpertContext(hidden_size=4096).num_tokens == 2056  # Video-LLaVA: 8 x 257
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        uprm.ExpertContext(hidden_size=0)
    with pytest.raises(ValueError, match="not a square patch grid"):
        uprm.ExpertContext(hidden_size=8, tokens_per_frame=6).grid_size


def test_pool_to_grid_puts_the_mean_in_the_prefix_and_pools_patches():
    maps = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = pool_to_grid(maps, grid_size=2, num_prefix_tokens=1)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(out[:, 0], maps.mean(dim=(2, 3)))
    torch.testing.assert_close(out[:, 1], maps[:, :, :4, :4].mean(dim=(2, 3)))  # top-left patch
    torch.testing.assert_close(out[:, 4], maps[:, :, 4:, 4:].mean(dim=(2, 3)))  # bottom-right


def test_broadcast_frames():
    x = torch.arange(6, dtype=torch.float32).view(1, 2, 3)
    out = broadcast_frames(x, 4)
    assert out.shape == (1, 8, 3)
    assert torch.equal(out[0, :4], x[0, 0].expand(4, 3)) and torch.equal(out[0, 4:], x[0, 1].expand(4, 3))


def test_boxes_to_patch_mask():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 0.62, 0.62]])
    mask = boxes_to_patch_mask(boxes, grid_size=4, num_prefix_tokens=1)
    assert mask.shape == (2, 17) and not mask[:, 0].any()
    grid = mask[:, 1:].view(2, 4, 4)
    assert grid[0, :2, :2].all() and grid[0].sum() == 4
    assert grid[1].sum() == 1 and grid[1, 2, 2]  # a tiny box covers the patch of its centre


def test_grid_cross_attention_is_per_frame_and_masked():
    torch.manual_seed(0)
    attn = GridCrossAttention(hidden_size=16, kv_dim=8, num_heads=4, tokens_per_frame=3).eval()
    tokens = torch.randn(1, 6, 16)  # 2 frames x 3 tokens
    keys = torch.randn(1, 2, 5, 8)
    mask = torch.tensor([[[True, True, False, False, False], [False] * 5]])
    out = attn(tokens, keys, mask)
    assert out.shape == (1, 6, 16) and torch.isfinite(out).all()  # frame 1 has no keys: null token
    keys2 = keys.clone()
    keys2[0, 0, 2:] = 100.0  # masked keys of frame 0
    keys2[0, 1] = -5.0  # every key of frame 1 (all masked)
    torch.testing.assert_close(attn(tokens, keys2, mask), out)
    keys3 = keys.clone()
    keys3[0, 1, 0] = 3.0  # frame 1's keys do not reach frame 0's tokens
    mask3 = mask.clone()
    mask3[0, 1, 0] = True
    out3 = attn(tokens, keys3, mask3)
    torch.testing.assert_close(out3[:, :3], out[:, :3])
    assert not torch.allclose(out3[:, 3:], out[:, 3:])


def test_frame_positions_are_sinusoids_that_tell_frames_apart():
    pos = frame_positions(6, 8)
    assert pos.shape == (6, 8) and pos.dtype == torch.float32 and pos.abs().max() <= 1
    torch.testing.assert_close(pos[0], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0, cos 0
    torch.testing.assert_close(pos[3, 0], torch.sin(torch.tensor(3.0)))  # ω_0 = 1
    torch.testing.assert_close(pos[3, 5], torch.cos(torch.tensor(3.0) * 10000 ** (-1 / 4)))
    assert torch.cdist(pos, pos).fill_diagonal_(1).min() > 0.1  # every frame its own position
    torch.testing.assert_close(frame_positions(3, 8), pos[:3])  # frame f: the same row at any length
    assert frame_positions(2, 5)[:, 4].eq(0).all()  # odd width: a zero column
    assert frame_positions(2, 4, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_add_frame_positions_adds_one_position_per_frame():
    x = torch.randn(2, 3, 5, 8)  # [B, F, K, D]
    out = add_frame_positions(x)
    torch.testing.assert_close(out - x, frame_positions(3, 8)[None, :, None].expand_as(x))
    flat = torch.randn(2, 3, 8)  # [B, F, D]
    torch.testing.assert_close(add_frame_positions(flat) - flat, frame_positions(3, 8)[None].expand_as(flat))
    frames_first = torch.zeros(3, 4, 8)  # [F, K, D]
    torch.testing.assert_close(add_frame_positions(frames_first, frame_dim=0)[:, 2], frame_positions(3, 8))
    assert add_frame_positions(flat.double()).dtype == torch.float64
    with pytest.raises(ValueError, match="feature dim"):
        add_frame_positions(flat, frame_dim=-1)
