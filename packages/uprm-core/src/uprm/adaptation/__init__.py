"""Site adaptation: ``uprm adapt`` and :func:`adapt` retrain a checkpoint on a site's own
labelled videos and measure, on videos held out of that training, whether it got better.

>>> import uprm
>>> result = uprm.adapt("runs/uprm", "labels/activitynet.json", "runs/site-1",
...                     videos="footage/")                                   # doctest: +SKIP
>>> result["verdict"], result["verdicts"]["per_category"]["Trespassing"]   # doctest: +SKIP

The run (:mod:`uprm.adaptation.pipeline`): the labels are checked against the taxonomy
(:mod:`~uprm.adaptation.labels`); the videos are split **by video** into training and
held-out videos, per category and seeded (:mod:`~uprm.adaptation.split`,
``RUN/split.json``); every window becomes identify / locate / attribute records; the
checkpoint's experts' features are cached; the checkpoint is fine-tuned on the training
videos (``RUN/model``, loadable with ``UPRMModel.from_pretrained`` and ready for ``uprm
serve``); the checkpoint and the new model are evaluated on the held-out videos with
bootstrap intervals (``RUN/eval_base``, ``RUN/eval_adapted``); and the two are compared
paired by video as ``uprm eval compare`` does (``RUN/comparison.json``: per metric and
per category ``a`` = adapted, ``b`` = base, ``delta``, ``ci``, ``p``). ``RUN/adapt.md``
says in words whether the model got better, overall and per category
(:mod:`~uprm.adaptation.verdict`). The checkpoint is only read; an interrupted run
continues where it stopped when run again. docs/adaptation.md is the operator's guide.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from uprm.adaptation.settings import AdaptSettings

__all__ = ["AdaptSettings", "adapt"]


def adapt(checkpoint: str | os.PathLike, labels: str | os.PathLike, out: str | os.PathLike, *,
          videos: str | os.PathLike | None = None, quiet: bool = False, callbacks: Sequence[Callable[..., None]] = (),
          **settings: Any) -> dict[str, Any]:
    """Fine-tune ``checkpoint`` on the site's labelled videos and measure the change on
    held-out ones; everything goes to ``out``.

    Args:
        checkpoint: the model to adapt (a checkpoint folder); it is only read.
        labels: the site's labels as ActivityNet ground truth (``uprm data label-studio``
            / ``cvat``, the service's ``GET /v1/labels?format=activitynet``).
        out: the run folder. Running again with the same arguments continues an
            interrupted run; another run's folder is refused.
        videos: the folder of the labelled videos (default: a ``videos/`` folder beside the
            labels file or one level up, else the labels file's folder).
        quiet: no progress lines (``progress=False`` also hides the bars).
        callbacks: :class:`uprm.training.Trainer` callbacks of the fine-tuning.
        settings: :class:`AdaptSettings` fields: ``keypoints``, ``scene_graphs``,
            ``taxonomy``, ``held_out`` (0.3), ``seed`` (0), ``window`` (8), ``stride`` (4),
            ``min_overlap`` (1), ``balance`` (True), ``steps`` (300), ``lr`` (the
            checkpoint's kind's), ``batch_size`` (8), ``save_every``, ``eval_batch_size``,
            ``bootstrap`` (1000), ``sbert`` (True), ``progress`` (True).

    Returns:
        ``{"out", "verdict" (overall: better / no measurable change / worse / mixed / not
        measured), "verdicts" ({"overall", "per_category": {category: {"verdict",
        "metrics"}}}), "comparison" (comparison.json), "split" (split.json), "files"}``.

    Raises:
        uprm.errors.CheckpointError: ``checkpoint`` is not a checkpoint folder.
        uprm.errors.AnnotationError: the labels are unreadable, or a labelled video has no
            file (a :class:`uprm.taxonomy.UnknownCategoryError` for a label not in the
            taxonomy); each names the file and the problem.
        uprm.errors.ConfigError: a bad setting, or ``out`` holds another run or lies
            inside the checkpoint.
    """
    from uprm.adaptation.pipeline import Adaptation

    config = AdaptSettings(checkpoint=os.fspath(checkpoint), labels=os.fspath(labels), out=os.fspath(out),
                           videos=None if videos is None else os.fspath(videos), **settings)

    def echo(text: str) -> None:
        print(text, flush=True)

    return Adaptation(config, echo=None if quiet else echo, callbacks=callbacks).run()
