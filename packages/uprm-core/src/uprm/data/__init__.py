"""Data: video decoding, readers of the real annotation formats, instruction builders,
the synthetic surveillance world and the feature cache.

Everything is imported lazily: ``import uprm.data`` loads neither PyAV nor torch.

- :func:`load_clip` — ``F`` frames (default 8) sampled uniformly over a video or a window
  of it, by seeking, with true timestamps; :func:`load_image`, :class:`VideoReader`
  (hour-long files window by window), :func:`iter_windows`, :func:`sample_times`,
  :func:`probe_video`.
- :func:`read_ucf_crime`, :func:`read_uca`, :func:`read_cuva`, :func:`read_activitynet`,
  :func:`write_activitynet` → :class:`VideoAnnotation`.
- :func:`build_instructions` — the identify / locate / attribute conversations
  (docs/formats.md), :func:`format_seconds`, :func:`assign_split`; the stage-1 builders
  :func:`build_refcoco`, :func:`build_humanml3d`, :func:`build_rsicb`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    # video decoding
    "DEFAULT_MAX_PIXELS": "uprm.data.video",
    "VideoInfo": "uprm.data.video",
    "VideoReader": "uprm.data.video",
    "iter_windows": "uprm.data.video",
    "load_clip": "uprm.data.video",
    "load_image": "uprm.data.video",
    "probe_video": "uprm.data.video",
    "sample_times": "uprm.data.video",
    # annotation readers
    "CUVA_CATEGORIES": "uprm.data.annotations",
    "NORMAL": "uprm.data.annotations",
    "AnnotationError": "uprm.data.annotations",
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
    # instruction builders (stage 2)
    "ANSWERS": "uprm.data.instructions",
    "QUESTIONS": "uprm.data.instructions",
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
    # stage-1 pre-tuning builders
    "PRETUNE_TEMPLATES": "uprm.data.pretune",
    "build_humanml3d": "uprm.data.pretune",
    "build_refcoco": "uprm.data.pretune",
    "build_rsicb": "uprm.data.pretune",
    "read_humanml3d": "uprm.data.pretune",
    "read_refcoco": "uprm.data.pretune",
    "read_rsicb": "uprm.data.pretune",
    "restricted_pickle_load": "uprm.data.pretune",
}

# Modules of this package whose ``__all__`` is searched for names not listed above
# (so the synthetic world, the cache and the dataset export without editing this file).
_OTHER_MODULES = ("synthetic", "cache", "dataset")

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name.startswith("_"):
        raise AttributeError(f"module 'uprm.data' has no attribute {name!r}")
    try:  # a submodule: uprm.data.video, uprm.data.synthetic, ...
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    for other in _OTHER_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{other}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{other}":
                continue
            raise
        if name in getattr(mod, "__all__", ()):
            value = getattr(mod, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'uprm.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from uprm.data.annotations import (
        CUVA_CATEGORIES,
        NORMAL,
        AnnotationError,
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
    from uprm.data.instructions import (
        ANSWERS,
        QUESTIONS,
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
    from uprm.data.pretune import (
        PRETUNE_TEMPLATES,
        build_humanml3d,
        build_refcoco,
        build_rsicb,
        read_humanml3d,
        read_refcoco,
        read_rsicb,
        restricted_pickle_load,
    )
    from uprm.data.video import (
        DEFAULT_MAX_PIXELS,
        VideoInfo,
        VideoReader,
        iter_windows,
        load_clip,
        load_image,
        probe_video,
        sample_times,
    )
