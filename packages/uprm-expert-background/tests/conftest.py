"""Fixtures: a small but complete SAM (image encoder, prompt encoder, mask decoder) built
offline with segment-anything's own classes, and its checkpoint in SAM's own layout."""

from functools import partial

import pytest
import torch
from torch import nn

#: a small SAM image encoder: 128-pixel input → an 8×8 map, windowed + global blocks
SMALL_ENCODER = {
    "img_size": 128,
    "patch_size": 16,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "mlp_ratio": 4.0,
    "out_chans": 32,
    "window_size": 4,
    "global_attn_indexes": (1,),
    "use_rel_pos": True,
    "qkv_bias": True,
}


def build_small_sam(seed: int = 0):
    """A full ``segment_anything.modeling.Sam`` of :data:`SMALL_ENCODER`'s geometry, with
    every parameter (position tables included) moved off its initial value."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    cfg = SMALL_ENCODER
    torch.manual_seed(seed)
    side = cfg["img_size"] // cfg["patch_size"]
    dim = cfg["out_chans"]
    model = Sam(
        image_encoder=ImageEncoderViT(
            img_size=cfg["img_size"], patch_size=cfg["patch_size"], embed_dim=cfg["embed_dim"], depth=cfg["depth"],
            num_heads=cfg["num_heads"], mlp_ratio=cfg["mlp_ratio"], out_chans=dim, qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=cfg["window_size"],
            global_attn_indexes=cfg["global_attn_indexes"],
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim, image_embedding_size=(side, side), input_image_size=(cfg["img_size"],) * 2, mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture
def small_sam():
    return build_small_sam()


@pytest.fixture
def sam_checkpoint(tmp_path, small_sam):
    """``small_sam``'s full state dict saved with ``torch.save`` as SAM's releases are
    (keys ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``)."""
    path = tmp_path / "sam_small.pth"
    torch.save(small_sam.state_dict(), path)
    return path
