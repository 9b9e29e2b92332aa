"""The click flags of :class:`uprm.options.DetectOptions`, declared once for ``uprm
detect``, ``uprm serve`` and ``uprm watch``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["detect_options"]

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULTS: dict[str, Any] = {"window": 8.0, "stride": 4.0, "batch_size": 4, "max_side": None}


def _flags(defaults: dict[str, Any], files: bool) -> list[Callable[[F], F]]:
    """The click options, in the order ``--help`` lists them."""
    flags = [
        click.option("--window", type=click.FloatRange(min=0, min_open=True), default=defaults["window"],
                     show_default=True,
                     help="Seconds of video per window (the model's number of frames sampled uniformly)."),
        click.option("--stride", type=click.FloatRange(min=0, min_open=True), default=defaults["stride"],
                     show_default=True,
                     help="Seconds between window starts (< window: overlapping windows share their frames)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=defaults["batch_size"], show_default=True,
                     help="Windows per batch through perception, the UPE block and the LLM."),
        click.option("--max-side", type=click.IntRange(min=16), default=defaults["max_side"],
                     show_default=defaults["max_side"] is not None,
                     help="Downscale decoded frames so the longer side is at most this many pixels."),
    ]
    if files:
        flags += [
            click.option("--merge-gap", type=click.FloatRange(min=0), default=None,
                         help="Merge threat segments at most this many seconds apart [default: window / frames]."),
            click.option("--sidecar-dir", type=click.Path(exists=True, file_okay=False), default=None,
                         help="ROOT with ROOT/keypoints/<video_id>.json and ROOT/scene_graphs/<video_id>.json, for "
                              "experts that read poses or scene graphs from files (docs/formats.md)."),
            click.option("--no-evidence", "no_evidence", is_flag=True,
                         help="Do not draw the per-segment evidence sheets."),
        ]
    flags += [
        click.option("--expert-option", "expert_option", multiple=True, metavar="NAME.KEY=VALUE",
                     help="Override a perception option of the checkpoint's experts, e.g. "
                          "pose.weights=/models/yolo11n-pose.pt (VALUE read as JSON when it parses). Repeatable."),
        click.option("--device", default="auto", show_default=True,
                     help="torch device (auto: each torchrun process's own GPU, else cuda if available, else cpu)."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="torch CPU threads of the process that runs the model [default: every core]."),
        click.option("--taxonomy", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
                     help="The site's threat categories (YAML: name, description, severity, causes; "
                          "docs/formats.md). A threat whose cause is one of a category's cause phrasings gets "
                          "that category and its severity [default: UCF-Crime's 13 categories and Normal]."),
    ]
    return flags


def detect_options(*, files: bool = True, **defaults: Any) -> Callable[[F], F]:
    """Add the :class:`~uprm.options.DetectOptions` flags to a click command.

    The command receives them as ONE keyword argument, ``detect``: a dict of
    ``DetectOptions`` field values (``expert_options`` parsed from the repeated
    ``--expert-option NAME.KEY=VALUE``; ``evidence`` from ``--no-evidence``; ``taxonomy``
    the ``--taxonomy`` file or ``None``), ready for
    ``DetectOptions(**detect)`` or a settings type derived from it. ``defaults``
    overrides the defaults of window, stride, batch size and max side (a live camera's
    differ from a file's); ``files=False`` leaves out the options only files use
    (merge gap, sidecar folder, evidence sheets)."""
    unknown = set(defaults) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"no default to override for {sorted(unknown)}")
    values = {**_DEFAULTS, **defaults}
    names = ["window", "stride", "batch_size", "max_side", "expert_option", "device", "threads", "taxonomy"]
    if files:
        names += ["merge_gap", "sidecar_dir", "no_evidence"]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from uprm.errors import ConfigError
            from uprm.plugins.factory import parse_expert_options

            given = {name: kwargs.pop(name) for name in names}
            try:
                given["expert_options"] = parse_expert_options(given.pop("expert_option"))
            except ConfigError as exc:
                raise click.BadParameter(str(exc), param_hint="--expert-option") from exc
            if files:
                given["evidence"] = not given.pop("no_evidence")
            return command(*args, detect=given, **kwargs)

        for flag in reversed(_flags(values, files)):
            wrapper = flag(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate
