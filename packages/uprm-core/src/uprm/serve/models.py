"""Which checkpoint the service runs, and switching it without losing a job
(``POST /v1/model``, docs/serve.md).

The API process checks the request — a checkpoint folder under ``--models-dir`` (no
``..``, nothing that resolves outside it, symlinks included) holding a UPRM
``config.json`` and ``model.safetensors`` — and records the choice in the store's
``meta`` table. The worker reads it **between jobs**: a running job finishes on the model
it started with, the next job runs on the new one, and every job records the fingerprint
of the checkpoint that ran it (:meth:`~uprm.serve.store.Store.finish`). A checkpoint
the worker cannot load leaves the old model running and the failure in ``GET /v1/model``.

The choice survives restarts of the worker and of the server *with the same*
``--checkpoint``: it is tied to the checkpoint the server was started with, so a restart
with another ``--checkpoint`` runs that one (the command line wins over an older switch).

This module never imports torch (the API process uses it); the fingerprint is computed
by the worker, which loads the model anyway.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path, PurePosixPath
from typing import Any

from uprm.serve.config import ServeConfig
from uprm.serve.errors import ApiError
from uprm.serve.media import real_path_within
from uprm.serve.store import Store

__all__ = ["CHOICE", "SWITCH", "checkpoint_name", "choose", "is_checkpoint", "list_checkpoints",
           "resolve_checkpoint", "wanted_checkpoint"]

#: the store's meta key of the checkpoint asked for (``{"checkpoint", "base", "at"}``)
CHOICE = "checkpoint_choice"
#: the store's meta key of the worker's last switch (``{"state": "done"|"failed", ...}``)
SWITCH = "model_switch"
#: the files of a checkpoint (as ``uprm.modeling.loading.CHECKPOINT_FILES``; not imported: torch)
CHECKPOINT_FILES = ("config.json", "model.safetensors")


def is_checkpoint(folder: Path) -> str | None:
    """``None`` when ``folder`` holds a UPRM checkpoint (``config.json`` of
    ``model_type`` ``uprm`` and ``model.safetensors``), else what is wrong."""
    missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
    if missing:
        return f"no {' or '.join(missing)} (a folder written by `uprm train --out DIR` or save_pretrained is needed)"
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "its config.json is not readable JSON"
    if not isinstance(data, dict) or data.get("model_type") != "uprm":
        return "its config.json is not a UPRM model's (model_type must be 'uprm')"
    return None


def resolve_checkpoint(models_dir: str | os.PathLike | None, given: Any) -> Path:
    """The checkpoint folder ``given`` names (relative to the models folder, or absolute
    inside it). 403 without a models folder or for a path that resolves outside it, 400
    for ``..`` or a malformed name, 404 when it does not exist, 422 when it is not a
    checkpoint."""
    if models_dir is None:
        raise ApiError(403, "models_dir_disabled", "switching the model is disabled: start the server with "
                       "--models-dir DIR (or restart it with another --checkpoint)")
    if not isinstance(given, str) or not given.strip() or "\x00" in given or len(given) > 4096:
        raise ApiError(400, "bad_checkpoint", 'give {"checkpoint": "<a folder under the models folder>"}')
    if ".." in PurePosixPath(given.replace("\\", "/")).parts:
        raise ApiError(400, "path_traversal", "'..' is not allowed; name the checkpoint relative to the models folder")
    try:
        real, inside = real_path_within(models_dir, given)
        if not inside:
            raise ApiError(403, "outside_models_dir", "the checkpoint lies outside the models folder (symlinks are "
                           "resolved)")
        if not real.is_dir():
            raise ApiError(404, "checkpoint_not_found", f"no checkpoint folder {given!r} in the models folder")
        problem = is_checkpoint(real)
    except (OSError, UnicodeError) as exc:
        raise ApiError(400, "bad_checkpoint", f"{given!r} cannot be a folder here ({type(exc).__name__})") from None
    if problem is not None:
        raise ApiError(422, "not_a_checkpoint", f"{given!r} is not a checkpoint: {problem}")
    return real


def checkpoint_name(config: ServeConfig, path: str | os.PathLike) -> str:
    """How the API names a checkpoint: its path under the models folder, else its
    folder's name (never a server path)."""
    real = Path(path).resolve()
    if config.models_dir is not None:
        base = Path(config.models_dir).resolve()
        if base in real.parents:
            return real.relative_to(base).as_posix()
    return real.name


def list_checkpoints(models_dir: str | os.PathLike | None, limit: int = 200, depth: int = 3) -> list[str]:
    """The checkpoints under the models folder (at most ``depth`` folders down, hidden
    folders and symlinks out of it skipped), as names relative to it."""
    if models_dir is None:
        return []
    base = Path(models_dir).resolve()
    found: list[str] = []
    for folder, dirs, _ in os.walk(base):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if len(here.relative_to(base).parts) < depth else []
        real = Path(os.path.realpath(here))
        if here != base and base in real.parents and is_checkpoint(real) is None:
            found.append(here.relative_to(base).as_posix())
            dirs[:] = []  # a checkpoint's own sub-folders are not others
        if len(found) >= limit:
            break
    return found


def choose(store: Store, config: ServeConfig, path: Path) -> dict[str, Any]:
    """Record ``path`` as the checkpoint to run from the next job on (module doc)."""
    choice = {"checkpoint": str(path), "base": config.checkpoint, "at": time.time()}
    store.set_meta(CHOICE, choice)
    return choice


def wanted_checkpoint(store: Store, config: ServeConfig) -> str:
    """The checkpoint the worker should run: the last switch made while the server ran
    with this ``--checkpoint``, else ``--checkpoint`` itself."""
    choice = store.get_meta(CHOICE)
    if isinstance(choice, dict) and choice.get("base") == config.checkpoint and isinstance(choice.get("checkpoint"),
                                                                                            str):
        return choice["checkpoint"]
    return config.checkpoint
