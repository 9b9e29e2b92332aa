"""From instruction records to decoded clips (the decoding layer's entry for records).

:func:`clip_from_record` is the one public way to get what the experts need from an
instruction file: the record's clip, sampled from its video (or image) and window, with
its sidecar files (keypoints, scene graph) in ``clip.meta``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from uprm.data.records import ClipKey, record_clip_key
from uprm.types import VideoClip

__all__ = ["clip_from_record", "load_clip_for"]


def load_clip_for(key: ClipKey) -> VideoClip:
    """Decode the clip of ``key`` (:func:`uprm.data.load_clip` / :func:`~uprm.data.load_image`)
    and put its sidecar paths into ``clip.meta``."""
    from uprm.data.video import load_clip, load_image

    if key.media == "image":
        clip = load_image(key.path)
    else:
        start, end = key.window if key.window is not None else (None, None)
        clip = load_clip(key.path, key.num_frames, start, end)
    clip.video_id = key.video_id
    clip.meta.update(key.meta)
    return clip


def clip_from_record(
    record: Mapping[str, Any], num_frames: int = 8, *, base: str | os.PathLike | None = None
) -> VideoClip:
    """The clip of one instruction record with its sidecars attached.

    ``num_frames`` frames are sampled uniformly over the record's ``window`` (the whole
    video when it has none; one frame for an ``image`` record); ``clip.meta`` holds the
    absolute paths of the record's ``keypoints`` and ``scene_graph`` files and its
    ``window``. Relative paths resolve against ``base``, else the folder of the file the
    record was read from (records from :func:`uprm.data.load_records` remember it), else
    the working directory.

    Raises:
        RecordError: the record has no ``video``/``image`` field.
        VideoError: the video cannot be read (the message names the file).

    >>> records = uprm.data.load_records("world/instructions/synthetic_train.json")  # doctest: +SKIP
    >>> clip = uprm.data.clip_from_record(records[0])                                   # doctest: +SKIP
    """
    return load_clip_for(record_clip_key(record, base, num_frames))
