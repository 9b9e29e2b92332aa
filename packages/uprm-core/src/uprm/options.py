"""The options of running a model over video, declared once for ``uprm detect``,
``uprm serve`` and ``uprm watch``.

:class:`DetectOptions` holds them; ``ServeConfig`` and ``WatchSettings`` derive from it
(with their own defaults where a live camera differs from a file), and the one click
decorator :func:`uprm.cli._options.detect_options` declares the matching flags. This
module imports pydantic and :mod:`uprm.taxonomy` only (the service's API process uses it
without torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from uprm.settings import PathStr, Settings
from uprm.taxonomy import Taxonomy, load_taxonomy

__all__ = ["FILE_ONLY", "DetectOptions", "taxonomy_fingerprint"]

#: options that only detection over files uses (not live cameras)
FILE_ONLY = ("merge_gap", "sidecar_dir", "evidence")


def _path(value: Any) -> Any:
    return Path(value) if isinstance(value, (str, os.PathLike)) else value


#: a file path given as ``str`` or :class:`os.PathLike`, stored as a :class:`~pathlib.Path`
FilePath = Annotated[Path, BeforeValidator(_path)]


class DetectOptions(Settings):
    """How a model runs over a video.

    Attributes:
        window: seconds of video per window (each window samples the model's number of
            frames uniformly).
        stride: seconds between window starts (below ``window``: overlapping windows
            share their frames).
        batch_size: windows per batch through perception, the UPE block and the LLM.
        max_side: downscale decoded frames so their longer side is at most this many
            pixels (``None``: as decoded).
        device: torch device; ``"auto"``: under torchrun each process's own GPU, else
            ``cuda`` when available, else ``cpu`` (:func:`uprm.modeling.loading.resolve_device`).
        threads: torch CPU threads of the process that runs the model (``None``: torch's
            default, every core).
        expert_options: ``{expert: {option: value}}`` merged over the checkpoint's saved
            expert options (e.g. ``{"pose": {"weights": "/models/yolo11n-pose.pt"}}``).
        merge_gap: threat segments at most this many seconds apart merge (``None``: the
            sampling interval, ``window / frames``). Files only.
        sidecar_dir: ``ROOT`` of ``ROOT/keypoints/<video_id>.json`` and
            ``ROOT/scene_graphs/<video_id>.json`` for experts that read them. Files only.
        evidence: draw an evidence sheet per segment. Files only.
        taxonomy: the site's categories (a YAML file, docs/formats.md; ``None``: UCF-Crime's
            13 and Normal). A segment or alert whose cause is one of a category's cause
            phrasings gets that category and its severity. The file is read when the
            options are made: a bad one raises :class:`~uprm.taxonomy.TaxonomyError`
            naming the file and the line.
    """

    window: float = Field(8.0, gt=0, allow_inf_nan=False)
    stride: float = Field(4.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(4, ge=1)
    max_side: int | None = Field(None, ge=16)
    device: str = Field("auto", min_length=1)
    threads: int | None = Field(None, ge=1)
    expert_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    merge_gap: float | None = Field(None, ge=0, allow_inf_nan=False)
    sidecar_dir: PathStr | None = None
    evidence: bool = True
    taxonomy: FilePath | None = None

    #: the fields of this class (what :meth:`detect_options` returns)
    OPTION_NAMES: ClassVar[tuple[str, ...]] = (
        "window", "stride", "batch_size", "max_side", "device", "threads", "expert_options", "merge_gap",
        "sidecar_dir", "evidence", "taxonomy")

    def __init__(self, /, **data: Any) -> None:
        # the taxonomy file is read before pydantic sees it, so that a bad file is the
        # TaxonomyError itself (file:line, field), not a message wrapped in a settings error
        if isinstance(data.get("taxonomy"), (str, os.PathLike)):
            load_taxonomy(data["taxonomy"])
        super().__init__(**data)

    @field_validator("sidecar_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().resolve())

    @field_validator("taxonomy")
    @classmethod
    def _absolute_file(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    def site_taxonomy(self) -> Taxonomy:
        """The site's taxonomy: :attr:`taxonomy`'s file, or the default (UCF-Crime's 13
        categories and Normal)."""
        return load_taxonomy(self.taxonomy)

    def detect_options(self) -> DetectOptions:
        """These options alone (a :class:`DetectOptions`, also from a subclass)."""
        return DetectOptions(**{name: getattr(self, name) for name in self.OPTION_NAMES})

    def requested(self) -> dict[str, Any]:
        """What a detection output records of its settings, to recognise a finished
        video on a rerun (``uprm detect``, ``uprm serve``): window, stride, merge gap,
        max side, sidecar folder and, when a taxonomy file is given, a fingerprint of its
        categories (another taxonomy gives the segments other categories and severities;
        without a file the key is left out, so earlier outputs stay complete)."""
        requested = {"window": float(self.window), "stride": float(self.stride), "merge_gap": self.merge_gap,
                     "max_side": self.max_side, "sidecar_dir": self.sidecar_dir}
        if self.taxonomy is not None:
            requested["taxonomy"] = taxonomy_fingerprint(self.site_taxonomy())
        return requested

    def video_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`uprm.detection.detect_video` these options set."""
        return {"window": self.window, "stride": self.stride, "batch_size": self.batch_size,
                "merge_gap": self.merge_gap, "sidecar_dir": self.sidecar_dir, "max_side": self.max_side,
                "taxonomy": self.taxonomy}


def taxonomy_fingerprint(taxonomy: Taxonomy) -> str:
    """The SHA-256 (16 hex digits) of a taxonomy's categories, names, severities, causes
    and aliases: the same for two files that differ only in comments, layout or the order of
    keys."""
    text = json.dumps(taxonomy.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
