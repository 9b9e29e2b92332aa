"""Safe loading of ultralytics models, shared by the pose and relation experts.

ultralytics is imported only inside these functions, after
:func:`uprm.offline.prepare_ultralytics` (offline switches, config directory, fonts), so
``uprm-core`` does not depend on it; the plugins that call this module do.

* :func:`resolve_weights` follows ultralytics' convention for names: a path that exists
  is used as it is; a bare asset name such as ``"yolo11n-pose.pt"`` that is not a local
  file is downloaded by ultralytics itself (``attempt_download_asset``) when the machine
  is online; offline (``UPRM_OFFLINE=1`` or ``YOLO_OFFLINE=1``, see
  :func:`uprm.offline.is_offline`) it fails at once, naming the file and what to pass.
  A missing path with a directory part is never downloaded.
* :func:`load_checkpoint` reads a ``.pt`` in **safe mode** only — ultralytics'
  ``torch_safe_load(..., safe_only=True)``: ``torch.load(weights_only=True)`` against its
  allow-list of model classes, whatever ``ULTRALYTICS_SAFE_LOAD`` says. A checkpoint can
  never run code; on a torch without restricted loading it refuses instead of falling
  back to unrestricted unpickling.
* :func:`build_model` builds a randomly initialised model from an ultralytics YAML
  (the real architecture for tests and benchmarks).
* :func:`check_model` refuses a model of another task (and, for pose, other than
  ``kpt_shape`` joints); :func:`freeze` makes a loaded model frozen perception.
* :func:`load_model` is the whole path: resolve, load, check, freeze.

Every refusal is an :class:`UltralyticsModelError` with the file (``path``), a ``kind``
(``"suffix"``, ``"unreadable"``, ``"no_model"``, ``"build"``, ``"task"``,
``"kpt_shape"``) and the ``detail`` that goes with it, so each plugin words the error
for its own users.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from uprm.errors import UltralyticsModelError
from uprm.offline import is_offline, prepare_ultralytics
from uprm.utils import is_torch_save

__all__ = [
    "UltralyticsModelError",
    "build_model",
    "check_model",
    "freeze",
    "is_asset_name",
    "load_checkpoint",
    "load_model",
    "model_task",
    "resolve_weights",
]

def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_asset_name(weights: str | os.PathLike) -> bool:
    """Whether ``weights`` is a bare ``.pt`` file name (no directory part), the form
    ultralytics resolves by downloading its release assets."""
    text = str(weights).strip()
    return bool(text) and Path(text).name == text and text.lower().endswith(".pt")


def resolve_weights(weights: str | os.PathLike, missing: str) -> Path:
    """The local file behind ``weights`` (see the module doc for the convention).

    Args:
        weights: a path, or a bare ultralytics asset name.
        missing: the start of the error for a file that is not there, naming the file
            and what to pass; the reason it was not downloaded is appended.

    Raises:
        FileNotFoundError: not a local file, and not downloadable (a path with a
            directory part, offline, or ultralytics could not get it).
    """
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if not is_asset_name(weights):
        raise FileNotFoundError(f"{missing} (nothing is downloaded for a path)")
    if is_offline("ultralytics"):
        raise FileNotFoundError(
            f"{missing} (offline: UPRM_OFFLINE or YOLO_OFFLINE is set, so nothing is downloaded; pass a local path, "
            "or unset them to let ultralytics download its release asset)"
        )
    prepare_ultralytics()
    from ultralytics.utils import downloads

    got = Path(downloads.attempt_download_asset(str(weights)))
    if not got.is_file():
        raise FileNotFoundError(f"{missing} (ultralytics could not download {str(weights)!r}: not one of its assets?)")
    return got


def load_checkpoint(path: str | os.PathLike) -> nn.Module:
    """The model inside a local ultralytics ``.pt`` (its ``ema`` else ``model``), loaded in
    safe mode only.

    Raises:
        UltralyticsModelError: not a ``.pt`` (``suffix``); unreadable in safe mode —
            damaged, or referring to classes outside ultralytics' allow-list
            (``unreadable``); no model inside (``no_model``).
    """
    path = Path(path)
    if path.suffix.lower() != ".pt":
        raise UltralyticsModelError(path, "suffix", path.suffix)
    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):  # ultralytics' own test for it
        raise UltralyticsModelError(path, "unreadable", f"torch {torch.__version__} has no restricted loading")
    _check_torch_file(path)
    prepare_ultralytics()
    from ultralytics.nn.tasks import torch_safe_load

    try:  # the resolved path: ultralytics never re-downloads a user's file
        ckpt, _ = torch_safe_load(str(path.resolve()), safe_only=True)
    except Exception as err:  # ultralytics turns every kind of unreadable file into its own message
        raise UltralyticsModelError(path, "unreadable", _first_line(err)) from err
    for key in ("ema", "model"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), nn.Module):
            return ckpt[key]
    held = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise UltralyticsModelError(path, "no_model", held)


def _check_torch_file(path: Path) -> None:
    """A ``torch.save`` file starts as a zip archive (or, from old versions, a pickle);
    anything else (a text file, an HTML error page saved as ``.pt``, zero bytes) is named
    as such instead of by ultralytics' message about unsupported types."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return  # missing or unreadable: ultralytics' own message names it
    if not is_torch_save(head):
        raise UltralyticsModelError(path, "unreadable", "not a PyTorch checkpoint (neither a torch.save zip archive "
                                                        "nor a pickle): an empty, cut or different file")


def build_model(model_config: str | os.PathLike, seed: int | None = None) -> nn.Module:
    """A randomly initialised model from an ultralytics YAML (a packaged name such as
    ``"yolo11n-pose.yaml"``, or a path); the task comes from the YAML's head. With
    ``seed``, the weights are drawn under that seed without touching the global RNG.

    Raises:
        UltralyticsModelError: not a YAML, unknown name, or a config ultralytics refuses (``build``).
    """
    if not str(model_config).lower().endswith((".yaml", ".yml")):
        raise UltralyticsModelError(model_config, "build", "not an ultralytics model YAML such as 'yolo11n.yaml'")
    prepare_ultralytics()
    from ultralytics import YOLO

    try:
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            return YOLO(str(model_config)).model
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise UltralyticsModelError(model_config, "build", _first_line(err)) from err


def model_task(model: nn.Module) -> str | None:
    """The ultralytics task of ``model`` (``"detect"``, ``"pose"``, ...)."""
    prepare_ultralytics()
    from ultralytics.nn.tasks import guess_model_task

    return getattr(model, "task", None) or guess_model_task(model)


def check_model(
    model: nn.Module, where: str | os.PathLike, task: str, kpt_shape: Sequence[int] | None = None
) -> None:
    """Refuse a model whose task is not ``task`` or, when given, whose ``kpt_shape`` differs.

    Raises:
        UltralyticsModelError: ``task`` (detail: the model's task) or ``kpt_shape`` (detail:
            the model's ``kpt_shape`` as a list, or ``None``).
    """
    found = model_task(model)
    if found != task:
        raise UltralyticsModelError(where, "task", found)
    if kpt_shape is None:
        return
    shape = getattr(model, "kpt_shape", None)
    if shape is None:
        shape = (getattr(model, "yaml", None) or {}).get("kpt_shape")
    shape = [int(v) for v in shape] if shape is not None else None
    if shape != [int(v) for v in kpt_shape]:
        raise UltralyticsModelError(where, "kpt_shape", shape)


def freeze(model: nn.Module) -> nn.Module:
    """float32, eval mode, BatchNorm folded into the convolutions now (ultralytics'
    predictor would do it in place at its first call, changing the frozen module under
    the expert), no gradients."""
    model = model.float().eval()
    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False)
    model.requires_grad_(False)
    return model


def load_model(
    weights: str | os.PathLike | None = None,
    model_config: str | os.PathLike | None = None,
    *,
    task: str,
    kpt_shape: Sequence[int] | None = None,
    missing: str = "",
    seed: int | None = None,
) -> nn.Module:
    """Exactly one of ``weights`` (:func:`resolve_weights` + :func:`load_checkpoint`) and
    ``model_config`` (:func:`build_model`), checked (:func:`check_model`) and frozen
    (:func:`freeze`).

    Raises:
        FileNotFoundError: ``weights`` cannot be found (``missing`` starts the message).
        UltralyticsModelError: see :func:`load_checkpoint`, :func:`build_model`, :func:`check_model`.
    """
    if (weights is None) == (model_config is None):
        raise ValueError("load_model needs exactly one of weights (a .pt) and model_config (a YAML)")
    if weights is not None:
        path = resolve_weights(weights, missing or f"ultralytics weights {str(weights)!r} are not a local file")
        model, where = load_checkpoint(path), path
    else:
        model, where = build_model(model_config, seed=seed), model_config
    check_model(model, where, task, kpt_shape)
    return freeze(model)
