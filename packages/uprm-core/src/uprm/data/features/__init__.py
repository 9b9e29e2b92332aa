"""The feature layer: the only data code that knows experts.

The feature cache (:class:`FeatureCache`, filled by :func:`extract_features` — ``uprm
extract``), the instruction dataset that reads it or extracts online
(:class:`InstructionDataset`) and the collator that makes the model's batch
(:class:`UPRMCollator`). Everything is also reachable as ``uprm.data.<name>``.
"""

from uprm.data.features.cache import (
    CACHE_FORMAT,
    CacheEntry,
    FeatureCache,
    entry_spec,
    input_fingerprint,
    perception_fingerprint,
)
from uprm.data.features.dataset import InstructionDataset, UPRMCollator
from uprm.data.features.extract import DEFAULT_CONTEXT, ExtractionReport, default_context, extract_features

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_CONTEXT",
    "CacheEntry",
    "ExtractionReport",
    "FeatureCache",
    "InstructionDataset",
    "UPRMCollator",
    "default_context",
    "entry_spec",
    "extract_features",
    "input_fingerprint",
    "perception_fingerprint",
]
