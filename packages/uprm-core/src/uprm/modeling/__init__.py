"""The UPRM model: configuration, Video-LLaVA backbone, save/load, generation."""

from uprm.modeling.config import LoRASettings, UPRMConfig
from uprm.modeling.model import GenerationResult, UPRMModel, UPRMOutput, build_model

__all__ = ["GenerationResult", "LoRASettings", "UPRMConfig", "UPRMModel", "UPRMOutput", "build_model"]
