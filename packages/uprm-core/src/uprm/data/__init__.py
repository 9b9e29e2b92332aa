"""Data, in three layers, each importing only the ones below it:

1. **decoding** (PyAV): :func:`load_clip` — ``F`` frames (default 8) sampled uniformly
   over a video or a window of it, by seeking, with true timestamps; :func:`load_image`,
   :class:`VideoReader` (hour-long files window by window), :func:`iter_windows`,
   :func:`sample_times`, :func:`probe_video`; :func:`write_mp4`; :func:`clip_from_record`
   — the clip of one instruction record with its sidecar files (keypoints, scene graph,
   window) attached, the one public way to get what the experts need from an
   instruction file.
2. **readers and builders** (plain Python, no torch): :func:`read_ucf_crime`,
   :func:`read_uca`, :func:`read_cuva`, :func:`read_activitynet` → :class:`VideoAnnotation`;
   :func:`build_instructions` (identify / locate / attribute conversations,
   docs/formats.md) and the stage-1 builders :func:`build_refcoco`,
   :func:`build_humanml3d`, :func:`build_rsicb`; :func:`load_records` (instruction
   files, checked, as :class:`InstructionRecord`).
3. **features** (:mod:`uprm.data.features`, the only data code that knows experts): the
   feature cache, :func:`extract_features`, :class:`InstructionDataset`,
   :class:`UPRMCollator`.

The synthetic surveillance world is a package of its own: :mod:`uprm.synthetic`.

Every name is looked up in a static table: ``import uprm.data`` and ``hasattr(uprm.data,
name)`` import nothing (no torch, no PyAV, no renderer) until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module defining it
_LAZY: dict[str, str] = {
    # uprm.data.video
    "DEFAULT_MAX_PIXELS": "uprm.data.video",
    "DOWNSCALED_MAX_PIXELS": "uprm.data.video",
    "VideoInfo": "uprm.data.video",
    "VideoReader": "uprm.data.video",
    "iter_windows": "uprm.data.video",
    "load_clip": "uprm.data.video",
    "load_image": "uprm.data.video",
    "probe_video": "uprm.data.video",
    "sample_times": "uprm.data.video",
    # uprm.data.mp4
    "write_mp4": "uprm.data.mp4",
    # uprm.data.clips
    "clip_from_record": "uprm.data.clips",
    "load_clip_for": "uprm.data.clips",
    # uprm.data.records
    "SIDECARS": "uprm.data.records",
    "ClipKey": "uprm.data.records",
    "InstructionRecord": "uprm.data.records",
    "clip_keys_from_records": "uprm.data.records",
    "load_records": "uprm.data.records",
    "record_base": "uprm.data.records",
    "record_clip_key": "uprm.data.records",
    "split_conversation": "uprm.data.records",
    # uprm.data.annotations
    "CUVA_CATEGORIES": "uprm.data.annotations",
    "NORMAL": "uprm.data.annotations",
    "VIDEO_EXTENSIONS": "uprm.data.annotations",
    "VideoAnnotation": "uprm.data.annotations",
    "find_videos": "uprm.data.annotations",
    "parse_mmss_moments": "uprm.data.annotations",
    "read_activitynet": "uprm.data.annotations",
    "read_activitynet_predictions": "uprm.data.annotations",
    "read_cuva": "uprm.data.annotations",
    "read_cuva_categories": "uprm.data.annotations",
    "read_uca": "uprm.data.annotations",
    "read_ucf_crime": "uprm.data.annotations",
    "write_activitynet": "uprm.data.annotations",
    "write_activitynet_predictions": "uprm.data.annotations",
    # uprm.data.instructions
    "ANSWERS": "uprm.data.instructions",
    "QUESTIONS": "uprm.data.instructions",
    "SPLITS": "uprm.data.instructions",
    "STAGE2_TASKS": "uprm.data.instructions",
    "InstructionSet": "uprm.data.instructions",
    "assign_split": "uprm.data.instructions",
    "attribute_answer": "uprm.data.instructions",
    "build_instructions": "uprm.data.instructions",
    "count_records": "uprm.data.instructions",
    "format_seconds": "uprm.data.instructions",
    "identify_answer": "uprm.data.instructions",
    "locate_answer": "uprm.data.instructions",
    "make_record": "uprm.data.instructions",
    "write_instructions": "uprm.data.instructions",
    # uprm.data.pretune
    "IMAGE_EXTENSIONS": "uprm.data.pretune",
    "PRETUNE_TEMPLATES": "uprm.data.pretune",
    "MotionText": "uprm.data.pretune",
    "RefExpression": "uprm.data.pretune",
    "SceneImage": "uprm.data.pretune",
    "build_humanml3d": "uprm.data.pretune",
    "build_refcoco": "uprm.data.pretune",
    "build_rsicb": "uprm.data.pretune",
    "format_region": "uprm.data.pretune",
    "read_humanml3d": "uprm.data.pretune",
    "read_refcoco": "uprm.data.pretune",
    "read_rsicb": "uprm.data.pretune",
    "restricted_pickle_load": "uprm.data.pretune",
    # uprm.data.features
    "CACHE_FORMAT": "uprm.data.features",
    "DEFAULT_CONTEXT": "uprm.data.features",
    "CacheEntry": "uprm.data.features",
    "ExtractionReport": "uprm.data.features",
    "FeatureCache": "uprm.data.features",
    "InstructionDataset": "uprm.data.features",
    "UPRMCollator": "uprm.data.features",
    "default_context": "uprm.data.features",
    "entry_spec": "uprm.data.features",
    "extract_features": "uprm.data.features",
    "input_fingerprint": "uprm.data.features",
    "perception_fingerprint": "uprm.data.features",
    # uprm.errors
    "AnnotationError": "uprm.errors",
    "CacheError": "uprm.errors",
    "RecordError": "uprm.errors",
    "VideoError": "uprm.errors",
}
#: the submodules, reachable as attributes (``uprm.data.video``)
_SUBMODULES = frozenset({"annotations", "clips", "features", "instructions", "mp4", "pretune", "records", "video"})

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'uprm.data' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)


if TYPE_CHECKING:  # pragma: no cover
    from uprm.data.annotations import (
        CUVA_CATEGORIES,
        NORMAL,
        VIDEO_EXTENSIONS,
        VideoAnnotation,
        find_videos,
        parse_mmss_moments,
        read_activitynet,
        read_activitynet_predictions,
        read_cuva,
        read_cuva_categories,
        read_uca,
        read_ucf_crime,
        write_activitynet,
        write_activitynet_predictions,
    )
    from uprm.data.clips import (
        clip_from_record,
        load_clip_for,
    )
    from uprm.data.features import (
        CACHE_FORMAT,
        DEFAULT_CONTEXT,
        CacheEntry,
        ExtractionReport,
        FeatureCache,
        InstructionDataset,
        UPRMCollator,
        default_context,
        entry_spec,
        extract_features,
        input_fingerprint,
        perception_fingerprint,
    )
    from uprm.data.instructions import (
        ANSWERS,
        QUESTIONS,
        SPLITS,
        STAGE2_TASKS,
        InstructionSet,
        assign_split,
        attribute_answer,
        build_instructions,
        count_records,
        format_seconds,
        identify_answer,
        locate_answer,
        make_record,
        write_instructions,
    )
    from uprm.data.mp4 import (
        write_mp4,
    )
    from uprm.data.pretune import (
        IMAGE_EXTENSIONS,
        PRETUNE_TEMPLATES,
        MotionText,
        RefExpression,
        SceneImage,
        build_humanml3d,
        build_refcoco,
        build_rsicb,
        format_region,
        read_humanml3d,
        read_refcoco,
        read_rsicb,
        restricted_pickle_load,
    )
    from uprm.data.records import (
        SIDECARS,
        ClipKey,
        InstructionRecord,
        clip_keys_from_records,
        load_records,
        record_base,
        record_clip_key,
        split_conversation,
    )
    from uprm.data.video import (
        DEFAULT_MAX_PIXELS,
        DOWNSCALED_MAX_PIXELS,
        VideoInfo,
        VideoReader,
        iter_windows,
        load_clip,
        load_image,
        probe_video,
        sample_times,
    )
    from uprm.errors import (
        AnnotationError,
        CacheError,
        RecordError,
        VideoError,
    )
