"""uprm-expert-background: UPRM's visual-background expert (VBE), paper §3.1.

SAM's image encoder (frozen, from a local checkpoint, loaded without unrestricted
unpickling) → per-frame embeddings pooled onto the coarse token grid → a lightweight
FFN to the LLM's width. ``segment_anything`` (which imports torchvision) is imported
only when an encoder is built.
"""

from uprm_expert_background.expert import BackgroundExpert, load_sam_image_encoder
from uprm_expert_background.sam import SAM_VARIANTS, CheckpointError

__all__ = ["SAM_VARIANTS", "BackgroundExpert", "CheckpointError", "load_sam_image_encoder"]
__version__ = "0.1.0"
