"""The UPRM model: configuration, Video-LLaVA backbone, save/load, generation."""

from uprm.modeling.config import LoRASettings, UPRMConfig
from uprm.modeling.loading import LoadedModel, load_model, model_fingerprint, resolve_device
from uprm.modeling.model import GenerationResult, UPRMModel, UPRMOutput, build_model

__all__ = ["GenerationResult", "LoRASettings", "LoadedModel", "UPRMConfig", "UPRMModel", "UPRMOutput", "build_model",
           "load_model", "model_fingerprint", "resolve_device"]
