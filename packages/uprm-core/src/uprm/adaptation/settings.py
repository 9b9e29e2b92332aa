"""The settings of one adaptation run (``uprm adapt``, :func:`uprm.adapt`), checked once.

:class:`AdaptSettings` is a :class:`uprm.settings.Settings`: a bad value is a
:class:`~uprm.errors.ConfigError` naming the field. Its defaults, and why:

- ``held_out=0.3``: three videos in ten are kept out of training to measure on; with the
  10-20 videos a site labels first that leaves 3-6 held-out videos, enough for a paired
  comparison to see a large change and no fewer than one per category of two or more.
- ``window=8``, ``stride=4``, ``min_overlap=1``: the windows ``uprm detect``, ``serve`` and
  ``watch`` slide by default (:class:`uprm.options.DetectOptions`), so the model learns on
  the clips it will be asked about; a window is a threat when the threat covers more than a
  second of it (as the demo).
- ``balance=True``: threat windows repeated until about half the identify answers are
  "Yes" (the demo's measured fix: most windows show no threat, and a model tuned on that
  prior learns to say "No").
- ``steps=300``, ``batch_size=8``, ``lr=None`` (the checkpoint's kind: 2e-5 for a real
  backbone's LoRA, the paper's; 1e-3 for the tiny model, :data:`uprm.training.TINY_LR`):
  fine-tuning starts from a model that already answers in form, so a few hundred steps of
  the paper's batch pass over a few hundred windows many times; ``save_every`` (default: a
  tenth of the steps) bounds what a killed run trains again.
- ``bootstrap=1000``: the evaluations' and the comparison's resamples of the held-out
  videos (the library's default for intervals).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from uprm.options import DetectOptions
from uprm.settings import PathStr, Settings

__all__ = ["IDENTITY_EXEMPT", "AdaptSettings"]

_DETECT = DetectOptions()

#: settings that may differ when a run is continued (they change no output)
IDENTITY_EXEMPT = frozenset({"progress"})

_PATHS = ("checkpoint", "labels", "out", "videos", "keypoints", "scene_graphs", "taxonomy")


class AdaptSettings(Settings):
    """Every setting of an adaptation run (see ``uprm adapt --help`` for each flag).

    Attributes:
        checkpoint: the model to adapt (a folder saved by ``uprm train`` or
            ``save_pretrained``); only read.
        labels: the site's labels, ActivityNet ground truth (``uprm data label-studio`` /
            ``cvat``, the service's ``GET /v1/labels?format=activitynet``).
        out: the run folder (everything is written there).
        videos: the folder of the labelled videos (searched recursively by file stem).
        keypoints, scene_graphs: folders of the videos' sidecar JSON
            (``<video_id>.json``), for experts that read them.
        taxonomy: the site's categories (YAML); ``None``: UCF-Crime's 13 and Normal.
        held_out: the share of each category's videos kept out of training to measure on.
        seed: the split's seed (and the training's data order).
        window, stride, min_overlap: the instruction windows (seconds).
        balance: repeat the training threat windows until about half the identify
            answers are "Yes".
        steps, lr, batch_size, save_every: the fine-tuning run (``lr`` ``None``: the
            checkpoint's kind's default; ``save_every`` ``None``: a tenth of ``steps``).
        eval_batch_size: clips per batch when the two models are evaluated.
        bootstrap: resamples of the held-out videos for the intervals and the paired
            comparison (0: no intervals, and so no verdict).
        sbert: score the causes' Sentence-BERT similarity too.
        progress: progress bars (not part of the run's identity).
    """

    model_config = {"allow_inf_nan": False}

    checkpoint: PathStr
    labels: PathStr
    out: PathStr
    videos: PathStr | None = None
    keypoints: PathStr | None = None
    scene_graphs: PathStr | None = None
    taxonomy: PathStr | None = None
    held_out: Annotated[float, Field(gt=0, lt=1)] = 0.3
    seed: int = 0
    window: Annotated[float, Field(gt=0)] = float(_DETECT.window)
    stride: Annotated[float, Field(gt=0)] = float(_DETECT.stride)
    min_overlap: Annotated[float, Field(ge=0)] = 1.0
    balance: bool = True
    steps: Annotated[int, Field(ge=1)] = 300
    lr: Annotated[float | None, Field(gt=0)] = None
    batch_size: Annotated[int, Field(ge=1)] = 8
    save_every: Annotated[int | None, Field(ge=1)] = None
    eval_batch_size: Annotated[int, Field(ge=1)] = 4
    bootstrap: Annotated[int, Field(ge=0)] = 1000
    sbert: bool = True
    progress: bool = True

    def resolved(self) -> AdaptSettings:
        """Paths absolute (so a run is the same run from any folder) and ``save_every``
        chosen."""
        values: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        for name in _PATHS:
            if values[name] is not None:
                values[name] = str(Path(os.path.expanduser(values[name])).resolve())
        if values["save_every"] is None:
            values["save_every"] = max(1, self.steps // 10)
        if values["videos"] is None:
            values.update(beside_labels(Path(values["labels"]), values["keypoints"], values["scene_graphs"]))
        return AdaptSettings(**values)

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (every setting but :data:`IDENTITY_EXEMPT`)."""
        return {k: v for k, v in self.to_dict().items() if k not in IDENTITY_EXEMPT}


def beside_labels(labels: Path, keypoints: str | None, scene_graphs: str | None) -> dict[str, str | None]:
    """Where the videos are when ``videos`` is not given: a ``videos/`` folder beside the
    labels file or one level up (the layout ``uprm data synthetic`` writes:
    ``world/annotations/activitynet.json`` and ``world/videos/``), else the labels' own
    folder; ``keypoints/`` and ``scene_graphs/`` beside that videos folder are taken too
    when they exist and were not given."""
    folder = next((d / "videos" for d in (labels.parent, labels.parent.parent) if (d / "videos").is_dir()),
                  labels.parent)
    sidecar = {"keypoints": keypoints, "scene_graphs": scene_graphs}
    for name in sidecar:
        if sidecar[name] is None and folder.name == "videos" and (folder.parent / name).is_dir():
            sidecar[name] = str(folder.parent / name)
    return {"videos": str(folder), **sidecar}
