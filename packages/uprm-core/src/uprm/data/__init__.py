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
   the labelling tools' exports, checked against a site taxonomy (:mod:`uprm.taxonomy`):
   :func:`read_label_studio` (video timeline labels, JSON) and :func:`read_cvat` (CVAT for
   video 1.1 XML);
   :func:`build_instructions` (identify / locate / attribute conversations,
   docs/formats.md) and the stage-1 builders :func:`build_refcoco`,
   :func:`build_humanml3d`, :func:`build_rsicb`; :func:`load_records` (instruction
   files, checked, as :class:`InstructionRecord`).
3. **features** (:mod:`uprm.data.features`, the only data code that knows experts): the
   feature cache, :func:`extract_features`, :class:`InstructionDataset`,
   :class:`UPRMCollator`.

The synthetic surveillance world is a package of its own: :mod:`uprm.synthetic`.

Every name is listed once, in ``__init__.pyi`` (read by lazy-loader and by type
checkers): ``import uprm.data`` and ``hasattr(uprm.data, name)`` import nothing (no
torch, no PyAV, no renderer) until a name is used.
"""

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
