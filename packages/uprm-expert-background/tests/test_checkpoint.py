"""Loading SAM weights: SAM's own checkpoint layout (written here from a small SAM),
encoder-only and safetensors files, variant detection, and clear errors for wrong,
truncated or unsafe files — all through the code path a real checkpoint takes."""

import shutil

import pytest
import torch
from safetensors.torch import save_file

from uprm.experts.grid import pool_to_grid
from uprm.testing import synthetic_clip, tiny_context
from uprm_expert_background import BackgroundExpert, CheckpointError, load_sam_image_encoder
from uprm_expert_background import sam as sam_mod

SMALL = {
    "img_size": 128, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2,
    "out_chans": 32, "window_size": 4, "global_attn_indexes": [1],
}  # fmt: skip


def _reference_embedding(small_sam, clip, ctx):
    """What the expert should cache, computed with SAM's own modules: Sam.preprocess on
    the resized frames, Sam.image_encoder, then the centre square pooled onto the grid."""
    with torch.no_grad():
        pixels, (nh, nw) = sam_mod.sam_preprocess(clip.frames, 128)
        maps = small_sam.image_encoder(pixels)
    assert (nh, nw) == (128, 128)  # square clip: the whole map is the picture
    return pool_to_grid(maps, ctx.grid_size, ctx.num_prefix_tokens)


def test_full_sam_checkpoint_loads_through_the_real_path(sam_checkpoint, small_sam):
    state = torch.load(sam_checkpoint, weights_only=True)
    assert any(k.startswith("prompt_encoder.") for k in state) and any(k.startswith("mask_decoder.") for k in state)
    ctx = tiny_context()
    expert = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL, cache_dtype="float32", batch_size=3)
    reference = small_sam.image_encoder.state_dict()
    loaded = expert.encoder.state_dict()
    assert loaded.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(loaded[key], value), key
    assert all(not p.is_meta and p.dtype == torch.float32 for p in expert.encoder.parameters())
    clip = synthetic_clip(3, size=96, seed=3)
    got = expert.extract(clip)["embedding"]
    assert torch.equal(got, _reference_embedding(small_sam, clip, ctx))


@pytest.mark.parametrize("layout", ["encoder-only .pth", "full .safetensors", "wrapped {'model': ...}"])
def test_other_layouts_give_identical_embeddings(layout, tmp_path, small_sam, sam_checkpoint):
    if layout == "encoder-only .pth":
        path = tmp_path / "encoder.pth"
        torch.save(small_sam.image_encoder.state_dict(), path)
    elif layout == "full .safetensors":
        path = tmp_path / "sam.safetensors"
        save_file({k: v.contiguous() for k, v in small_sam.state_dict().items()}, str(path))
    else:
        path = tmp_path / "finetuned.pt"
        torch.save({"model": small_sam.state_dict(), "epoch": 3}, path)
    ctx = tiny_context()
    clip = synthetic_clip(2, size=(60, 100), seed=5)
    expected = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL).extract(clip)
    got = BackgroundExpert(ctx, checkpoint=path, encoder_config=SMALL).extract(clip)
    assert torch.equal(got["embedding"], expected["embedding"])


@pytest.mark.parametrize("variant", sorted(sam_mod.SAM_VARIANTS))
def test_variant_is_detected_from_a_sam_checkpoint(variant, monkeypatch, tmp_path):
    """A real-sized checkpoint of each variant, as tensor shapes on the meta device (no
    memory): detected without being told, refused under another variant's name."""
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        state = sam_model_registry[variant]().state_dict()
    monkeypatch.setattr(sam_mod, "read_state_dict", lambda path: state)
    path = tmp_path / f"sam_{variant}.pth"
    encoder, info = load_sam_image_encoder(path)
    assert info["variant"] == variant and info["config"] == sam_mod.SAM_VARIANTS[variant]
    assert info["weights"] == {"checkpoint": str(path)}
    assert encoder.pos_embed.shape == (1, 64, 64, sam_mod.SAM_VARIANTS[variant]["embed_dim"])
    other = next(v for v in sorted(sam_mod.SAM_VARIANTS) if v != variant)
    with pytest.raises(CheckpointError, match=rf"does not fit variant '{other}'.*looks like {variant}.*pass variant='{variant}'") as err:
        load_sam_image_encoder(path, variant=other)
    assert str(path) in str(err.value)


def test_checkpoint_of_another_geometry_names_the_file_and_what_it_is(sam_checkpoint):
    with pytest.raises(CheckpointError, match=r"does not fit variant 'vit_b' \(embed_dim: checkpoint 32, wanted 768") as err:
        BackgroundExpert(tiny_context(), checkpoint=sam_checkpoint, variant="vit_b")
    assert str(sam_checkpoint) in str(err.value) and "a custom encoder" in str(err.value)
    with pytest.raises(CheckpointError, match=r"is not one of the SAM variants.*Pass encoder_config"):
        BackgroundExpert(tiny_context(), checkpoint=sam_checkpoint)
    with pytest.raises(CheckpointError, match="depth: checkpoint 2, wanted 3"):
        BackgroundExpert(tiny_context(), checkpoint=sam_checkpoint, encoder_config={**SMALL, "depth": 3})


def test_missing_and_extra_tensors_are_listed(tmp_path, small_sam):
    state = small_sam.state_dict()
    del state["image_encoder.neck.2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 missing \(\['neck.2.weight'\]\)") as err:
        load_sam_image_encoder(path, encoder_config=SMALL)
    assert str(path) in str(err.value)
    state = small_sam.image_encoder.state_dict()
    state["blocks.0.adapter.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 unexpected \(\['blocks.0.adapter.weight'\]\)"):
        load_sam_image_encoder(path, encoder_config=SMALL)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_checkpoint_is_a_clear_error(suffix, tmp_path, small_sam):
    path = tmp_path / f"sam{suffix}"
    if suffix == ".pth":
        torch.save(small_sam.state_dict(), path)
    else:
        save_file({k: v.contiguous() for k, v in small_sam.state_dict().items()}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(CheckpointError, match="truncated") as err:
        BackgroundExpert(tiny_context(), checkpoint=path, encoder_config=SMALL)
    assert str(path) in str(err.value)


def test_files_that_are_not_checkpoints(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth: no such file"):
        BackgroundExpert(tiny_context(), checkpoint=missing)
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(CheckpointError, match=r"empty\.pth: the file is empty"):
        BackgroundExpert(tiny_context(), checkpoint=empty)
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.pth: cannot be read as a PyTorch checkpoint"):
        BackgroundExpert(tiny_context(), checkpoint=text)
    decoder_only = tmp_path / "decoder.pth"
    torch.save({"mask_decoder.iou_token.weight": torch.zeros(1, 4)}, decoder_only)
    with pytest.raises(CheckpointError, match=r"has no SAM image-encoder tensors.*mask_decoder\.iou_token\.weight"):
        BackgroundExpert(tiny_context(), checkpoint=decoder_only)
    sam2 = tmp_path / "sam2_hiera_tiny.pt"
    torch.save({"model": {"image_encoder.trunk.pos_embed": torch.zeros(1, 4, 7, 7)}}, sam2)
    with pytest.raises(CheckpointError, match=r"image_encoder is not SAM's ViT.*trunk\.pos_embed.*SAM 2"):
        BackgroundExpert(tiny_context(), checkpoint=sam2)
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(CheckpointError, match="holds a Tensor, not a state dict"):
        BackgroundExpert(tiny_context(), checkpoint=not_a_dict)


class _Payload:
    """Unpickling this (without weights_only) would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path, small_sam):
    marker = tmp_path / "pwned"
    path = tmp_path / "sam_vit_b_evil.pth"
    torch.save({**small_sam.state_dict(), "extra": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not unpickled without restriction") as err:
        BackgroundExpert(tiny_context(), checkpoint=path, encoder_config=SMALL)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_cache_key_follows_the_weights_content_not_their_path(tmp_path, sam_checkpoint, small_sam):
    ctx = tiny_context()
    config = BackgroundExpert(ctx, checkpoint=sam_checkpoint, encoder_config=SMALL, batch_size=1).extraction_config()
    assert config["weights"]["bytes"] == sam_checkpoint.stat().st_size and len(config["weights"]["sha256"]) == 64
    assert "checkpoint" not in config["options"] and "batch_size" not in config["options"]
    copy = tmp_path / "elsewhere" / "renamed.pth"
    copy.parent.mkdir()
    shutil.copy(sam_checkpoint, copy)
    moved = BackgroundExpert(ctx, checkpoint=copy, encoder_config=SMALL, batch_size=4).extraction_config()
    assert moved == config  # same weights, same features: the cache stays valid
    state = small_sam.state_dict()
    state["image_encoder.neck.1.bias"] = state["image_encoder.neck.1.bias"] + 0.01
    tuned = tmp_path / "tuned.pth"
    torch.save(state, tuned)
    retuned = BackgroundExpert(ctx, checkpoint=tuned, encoder_config=SMALL).extraction_config()
    assert retuned["weights"]["sha256"] != config["weights"]["sha256"]
    assert BackgroundExpert(ctx).extraction_config()["weights"] == {"random_init_seed": 0}


def test_a_sam_checkpoint_error_is_a_core_checkpoint_error(tmp_path):
    """One ``except uprm.errors.CheckpointError`` catches a bad UPRM checkpoint and a bad
    SAM checkpoint alike (every error class of the core lives in uprm.errors)."""
    import uprm.errors
    from uprm_expert_background import CheckpointError, load_sam_image_encoder

    assert issubclass(CheckpointError, uprm.errors.CheckpointError)
    empty = tmp_path / "sam.pth"
    empty.write_bytes(b"")
    with pytest.raises(uprm.errors.CheckpointError, match=r"sam\.pth: the file is empty"):
        load_sam_image_encoder(empty)
