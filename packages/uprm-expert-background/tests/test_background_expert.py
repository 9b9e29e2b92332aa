"""The background expert: UPRM's standard expert tests, SAM's pre-processing, pooling
onto the grid, the reduced-resolution path, the adapter, and the plugin entry point."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uprm.experts.grid import pool_to_grid
from uprm.testing import ExpertTests, isolated_plugins, random_video_tokens, synthetic_clip, tiny_context
from uprm_expert_background import BackgroundExpert, load_sam_image_encoder
from uprm_expert_background import sam as sam_mod

SMALL = {
    "img_size": 128, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2,
    "out_chans": 32, "window_size": 4, "global_attn_indexes": [1],
}  # fmt: skip


class TestBackgroundExpert(ExpertTests):
    """Built with no options, as the demo and ``uprm.testing`` build experts."""

    expert_class = BackgroundExpert


class TestBackgroundExpertReducedInput(ExpertTests):
    """A custom encoder run below its native size, whole-frame pooling, float32 cache."""

    expert_class = BackgroundExpert
    expert_options = {
        "encoder_config": SMALL,
        "input_size": 64,
        "grid_alignment": "frame",
        "cache_dtype": "float32",
        "adapter_hidden": 48,
        "batch_size": 3,
    }

    def make_clip(self, ctx, seed, num_frames):
        return synthetic_clip(num_frames=num_frames, size=(48, 80), seed=seed)


# ---------------------------------------------------------------------------- construction
def test_default_expert_fits_the_grid_and_is_reproducible():
    ctx = tiny_context()
    a, b = BackgroundExpert(ctx), BackgroundExpert(ctx)
    assert a.encoder_info["config"]["img_size"] == 64  # 16 × max(grid 4, 4)
    assert a.encoder_info["weights"] == {"random_init_seed": 0}
    # seeded perception: the same random encoder in every process, whatever the global RNG did
    for (name, p), (_, q) in zip(a.encoder.named_parameters(), b.encoder.named_parameters()):
        assert torch.equal(p, q), name
    assert a.encoder.pos_embed.abs().sum() > 0  # position-aware, unlike SAM's zero init
    big = BackgroundExpert(tiny_context(tokens_per_frame=257, hidden_size=16))
    assert big.encoder_info["config"]["img_size"] == 256  # 16 × 16 map for Video-LLaVA's grid
    assert BackgroundExpert(ctx, init_seed=1).encoder.pos_embed.ne(a.encoder.pos_embed).any()


def test_bad_options_are_reported():
    ctx = tiny_context()
    with pytest.raises(ValueError, match="cache_dtype"):
        BackgroundExpert(ctx, cache_dtype="int8")
    with pytest.raises(ValueError, match="grid_alignment"):
        BackgroundExpert(ctx, grid_alignment="stretch")
    with pytest.raises(ValueError, match="batch_size"):
        BackgroundExpert(ctx, batch_size=0)
    with pytest.raises(ValueError, match="unknown SAM variant 'vit_x'"):
        BackgroundExpert(ctx, variant="vit_x")
    with pytest.raises(ValueError, match=r"unknown encoder_config keys \['depht'\]"):
        BackgroundExpert(ctx, encoder_config={**SMALL, "depht": 3})
    with pytest.raises(ValueError, match="not a multiple of the patch size 16"):
        BackgroundExpert(ctx, encoder_config=SMALL, input_size=100)
    with pytest.raises(ValueError, match="not a square patch grid"):
        BackgroundExpert(tiny_context(tokens_per_frame=11))


def test_variant_table_matches_segment_anything():
    """Our vit_b/l/h geometry builds exactly the encoder of segment-anything's build_sam_vit_*
    (compared on the meta device: no memory, no weights)."""
    from segment_anything import sam_model_registry

    for variant, config in sam_mod.SAM_VARIANTS.items():
        with torch.device("meta"):
            reference = sam_model_registry[variant]().image_encoder
        ours = sam_mod.build_image_encoder(config, device="meta")
        ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == ref_shapes, variant
        assert sam_mod.match_variant(sam_mod.describe_encoder_state(reference.state_dict())) == variant


def test_variant_without_checkpoint_warns(monkeypatch):
    build = sam_mod.build_image_encoder
    monkeypatch.setattr(sam_mod, "build_image_encoder", lambda config, device=None: build(config, device="meta"))
    with pytest.warns(UserWarning, match="random weights"):
        _, info = load_sam_image_encoder(variant="vit_b")
    assert info["config"] == sam_mod.SAM_VARIANTS["vit_b"]
    assert info["variant"] == "vit_b" and info["input_size"] == 1024


# ---------------------------------------------------------------------------- pixels
def test_preprocess_matches_sam(small_sam):
    """Resize as SAM's ResizeLongestSide (PIL, uint8), normalise and pad as Sam.preprocess."""
    from segment_anything.utils.transforms import ResizeLongestSide

    clip = synthetic_clip(2, size=(90, 150), seed=4)
    size = small_sam.image_encoder.img_size
    ours, resized = sam_mod.sam_preprocess(clip.frames, size)
    assert ours.shape == (2, 3, size, size)
    transform = ResizeLongestSide(size)
    assert resized == transform.get_preprocess_shape(90, 150, size) == (77, 128)
    for i in range(2):
        image = clip.frames[i].permute(1, 2, 0).numpy()
        pil = torch.from_numpy(np.ascontiguousarray(transform.apply_image(image))).permute(2, 0, 1).float()
        theirs = small_sam.preprocess(pil[None])[0]
        # identical layout and padding; pixel values within a grey level or two of PIL's resampling
        diff = (ours[i] - theirs) * torch.tensor(sam_mod.SAM_PIXEL_STD).view(3, 1, 1)
        assert diff.abs().max() <= 3.0 and diff.abs().mean() < 0.5
        assert torch.equal(ours[i, :, 77:], theirs[:, 77:])  # SAM pads with zeros after normalising
        assert ours[i, :, 77:].abs().sum() == 0
    # at the native size nothing is resampled: exactly Sam.preprocess
    frames = synthetic_clip(1, size=(size, size)).frames
    exact, _ = sam_mod.sam_preprocess(frames, size)
    assert torch.equal(exact, small_sam.preprocess(frames.float()))


def test_embedding_window_is_the_coarse_towers_view():
    # 320×240 at 1024: the frame is the top 1024×768 of the square, a 64×48-cell map region
    assert sam_mod.embedding_window((768, 1024), 64, 1024, centre_crop=True) == (slice(0, 48), slice(8, 56))
    assert sam_mod.embedding_window((768, 1024), 64, 1024, centre_crop=False) == (slice(0, 48), slice(0, 64))
    # a portrait frame, reduced input
    assert sam_mod.embedding_window((512, 288), 32, 512, centre_crop=True) == (slice(7, 25), slice(0, 18))
    # never empty
    rows, cols = sam_mod.embedding_window((512, 8), 32, 512, centre_crop=True)
    assert rows.stop - rows.start >= 1 and cols.stop - cols.start >= 1


def test_extract_pools_sams_embedding_onto_the_grid():
    ctx = tiny_context()
    expert = BackgroundExpert(ctx, encoder_config=SMALL, cache_dtype="float32", batch_size=2)
    clip = synthetic_clip(3, size=(64, 128), seed=2)
    got = expert.extract(clip)["embedding"]
    assert got.shape == (3, ctx.tokens_per_frame, 32) and got.dtype == torch.float32
    with torch.no_grad():
        pixels, resized = sam_mod.sam_preprocess(clip.frames, 128)
        maps = expert.encoder(pixels)  # [3, 32, 8, 8]; the frame fills rows 0..3
    assert resized == (64, 128)
    centre = maps[:, :, 0:4, 2:6]  # the centred 64×64 square = cells 2..5 of the top 4 rows
    torch.testing.assert_close(got, pool_to_grid(centre, ctx.grid_size, ctx.num_prefix_tokens))
    half = BackgroundExpert(ctx, encoder_config=SMALL).extract(clip)["embedding"]
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), got, atol=2e-3, rtol=2e-3)


# ---------------------------------------------------------------------------- resolution
def test_reduced_input_resamples_only_the_absolute_positions(sam_checkpoint, small_sam):
    """At input_size 64 a 128-native encoder keeps every weight but pos_embed (resampled to
    4×4); its global block's relative-position table is interpolated by segment-anything's
    get_rel_pos at run time. Same output as an encoder built for 64 from the resampled tables."""
    full, _ = load_sam_image_encoder(sam_checkpoint, encoder_config=SMALL)
    reduced, info = load_sam_image_encoder(sam_checkpoint, encoder_config=SMALL, input_size=64)
    assert info["input_size"] == 64 and reduced.img_size == 64
    assert reduced.pos_embed.shape == (1, 4, 4, 32)
    expected_pos = F.interpolate(full.pos_embed.permute(0, 3, 1, 2), size=(4, 4), mode="bicubic", antialias=True)
    torch.testing.assert_close(reduced.pos_embed, expected_pos.permute(0, 2, 3, 1))
    same = {k: v for k, v in full.state_dict().items() if k != "pos_embed"}
    for k, v in same.items():
        assert torch.equal(reduced.state_dict()[k], v), k
    assert torch.equal(full.pos_embed, small_sam.image_encoder.pos_embed)  # native size: untouched

    # reference: an encoder built natively for 64 px with the tables resampled up front
    native = sam_mod.build_image_encoder({**sam_mod.resolve_encoder_config(None, SMALL), "img_size": 64})
    state = dict(reduced.state_dict())
    for axis in ("h", "w"):  # the global block's table: 15 rows at 8×8 → 7 at 4×4, linearly (get_rel_pos)
        table = state[f"blocks.1.attn.rel_pos_{axis}"]
        state[f"blocks.1.attn.rel_pos_{axis}"] = F.interpolate(table.T[None], size=7, mode="linear")[0].T
    native.load_state_dict(state)
    native.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = reduced(x)
        assert out.shape == (2, 32, 4, 4)
        torch.testing.assert_close(out, native(x))


def test_reduced_input_changes_the_cache_key(sam_checkpoint):
    ctx = tiny_context()
    a = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL)
    b = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL, input_size=64)
    assert a.extraction_config()["input_size"] == 128 and b.extraction_config()["input_size"] == 64
    clip = synthetic_clip(2, size=96, seed=1)
    assert a.extract(clip)["embedding"].shape == b.extract(clip)["embedding"].shape == (2, 17, 32)


# ---------------------------------------------------------------------------- adapter
def test_adapter_is_a_per_token_ffn_and_follows_the_tokens_dtype():
    ctx = tiny_context()
    expert = BackgroundExpert(ctx, adapter_hidden=16).eval()
    emb = torch.randn(2, ctx.num_frames, ctx.tokens_per_frame, 256)
    tokens = random_video_tokens(ctx, 2)
    tpf = ctx.tokens_per_frame
    with torch.no_grad():
        out = expert({"embedding": emb}, tokens)
        # eq. y' = FFN(y): token (b, f, t) depends on its own embedding and its frame only, not on the video tokens
        alone = expert.adapter(emb[1:2, :, 5:6])  # token 5 of every frame, nothing else
        for f in range(ctx.num_frames):
            torch.testing.assert_close(out[1, f * tpf + 5], alone[0, f, 0])
        torch.testing.assert_close(out, expert({"embedding": emb}, torch.zeros_like(tokens)))
        assert expert({"embedding": emb.half()}, tokens.bfloat16()).dtype == torch.bfloat16
    assert sum(p.numel() for p in expert.adapter.parameters()) == (2 * 256 + 256 * 16 + 16 + 16 * 32 + 32)


def test_the_ffn_knows_the_frame_of_each_token():
    """The frame's sinusoidal position is added after the FFN's LayerNorm: the same
    background in every frame gives each frame its own tokens."""
    from uprm.experts.grid import frame_positions

    ctx = tiny_context()
    expert = BackgroundExpert(ctx, adapter_hidden=16).eval()
    same = torch.randn(1, 1, ctx.tokens_per_frame, 256).expand(1, ctx.num_frames, -1, -1)
    a = expert.adapter
    with torch.no_grad():
        out = expert({"embedding": same}, random_video_tokens(ctx, 1)).view(ctx.num_frames, ctx.tokens_per_frame, -1)
        for f in range(ctx.num_frames):
            x = a.norm(same[0, f]) + frame_positions(ctx.num_frames, 256)[f]
            torch.testing.assert_close(out[f], a.fc2(a.act(a.fc1(x))))
    assert not torch.allclose(out[1], out[0])


def test_forward_rejects_features_of_another_clip_shape():
    ctx = tiny_context()
    expert = BackgroundExpert(ctx)
    emb = torch.randn(1, ctx.num_frames, ctx.tokens_per_frame, 256)
    with pytest.raises(ValueError, match=r"\(1, 4\) \(batch, frames\) but video tokens for \(1, 8\)"):
        expert({"embedding": emb}, random_video_tokens(ctx, 1, num_frames=8))
    with pytest.raises(ValueError, match=r"must be \[B, F, 17, 256\]"):
        expert({"embedding": emb[..., :100]}, random_video_tokens(ctx, 1))


# ---------------------------------------------------------------------------- plugin
def test_entry_point_registers_the_expert():
    with isolated_plugins() as host:
        infos = host.experts()
    assert infos["background"].cls is BackgroundExpert
    assert infos["background"].distribution == "uprm-expert-background"
    with isolated_plugins(env={"UPRM_DISABLE_PLUGINS": "background"}) as host:  # "w/o VBE"
        assert "background" not in host.experts()


def test_listing_plugins_does_not_import_segment_anything():
    code = (
        "import sys, uprm; experts = uprm.available_experts(); assert 'background' in experts; "
        "assert 'segment_anything' not in sys.modules and 'torchvision' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_composes_with_the_coarse_expert_in_the_upe_block():
    """VBE next to CVE under the trade-off router (eq.6–7): its tokens reach z, and the
    loss trains its FFN but never SAM."""
    from uprm.experts.coarse import CoarseExpert
    from uprm.moe.block import UPEBlock

    ctx = tiny_context()
    torch.manual_seed(0)
    background = BackgroundExpert(ctx, adapter_hidden=32)
    block = UPEBlock([CoarseExpert(ctx), background], router="tradeoff")
    assert list(block.expert_names) == ["background", "coarse"]
    clips = [synthetic_clip(ctx.num_frames, size=80, seed=s) for s in (0, 1)]
    out = block(block.collate([block.extract(c) for c in clips]))
    assert out.z.shape == (2, ctx.num_tokens, ctx.hidden_size) and out.z_loss is not None
    (out.z.square().mean() + 0.05 * out.z_loss).backward()
    assert background.adapter.fc1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in background.encoder.parameters())
