"""The one way from a checkpoint (or a built model) to a running model.

``uprm detect``, ``uprm eval``, ``uprm extract --model``, ``uprm serve``'s worker,
``uprm watch``, ``uprm train --init`` and ``uprm demo`` all load through
:func:`load_model`, so they resolve ``device="auto"`` the same way, merge expert
options the same way, refuse a checkpoint whose experts are not installed with the same
:class:`~uprm.errors.MissingExpertError`, and record the same fingerprint.

>>> loaded = uprm.load_model("runs/uprm", device="auto")      # doctest: +SKIP
>>> loaded.model, loaded.device, loaded.fingerprint           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uprm.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from uprm.modeling.model import UPRMModel

__all__ = ["LoadedModel", "load_model", "model_fingerprint", "resolve_device"]

#: the files of a checkpoint that decide what it computes
CHECKPOINT_FILES = ("config.json", "model.safetensors")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, and what identifies it.

    Attributes:
        model: the :class:`~uprm.UPRMModel`, in eval mode, on :attr:`device`.
        fingerprint: ``sha256:<hex>`` of the checkpoint's ``config.json`` and
            ``model.safetensors`` (a model object: of its config and trained weights).
            Outputs record it, so a rerun can tell whether they came from these weights.
        device: the torch device it runs on (``"cpu"``, ``"cuda:0"``, ...).
        checkpoint: the checkpoint folder it was loaded from (``None`` for a model object).
    """

    model: UPRMModel
    fingerprint: str
    device: str
    checkpoint: str | None = None


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"``: under ``torchrun`` (``LOCAL_RANK`` set) with GPUs, this process's own
    GPU; else ``cuda`` when available, else ``cpu``. ``None`` is ``"auto"``; anything else
    is returned as given (torch checks it when the model moves)."""
    if device not in (None, "auto"):
        return str(device)
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    local = os.environ.get("LOCAL_RANK")
    if local is not None and local.isdigit():
        return f"cuda:{int(local) % max(torch.cuda.device_count(), 1)}"
    return "cuda"


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_hash(path: Path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime) in the process."""
    from uprm.utils import file_sha256

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = file_sha256(path)
    return _FILE_HASHES[key]


def model_fingerprint(checkpoint_or_model: Any) -> str:
    """``sha256:<hex>`` over a checkpoint folder's ``config.json`` and
    ``model.safetensors`` (a missing file counts as ``-``), or, for a model object, over
    its config and its trained weights (what ``save_pretrained`` would write). A folder
    is identified by its files and a model object by its tensors, so the two kinds never
    compare equal; each is stable across runs and machines."""
    h = hashlib.sha256()
    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        root = Path(checkpoint_or_model)
        for name in CHECKPOINT_FILES:
            path = root / name
            h.update(f"{name}:{_file_hash(path) if path.is_file() else '-'};".encode())
        return f"sha256:{h.hexdigest()}"
    import torch

    model = checkpoint_or_model
    h.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.trainable_state_dict().items()):
        h.update(name.encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return f"sha256:{h.hexdigest()}"


def _looks_like_a_model(obj: Any) -> bool:
    """A stand-in for a :class:`~uprm.UPRMModel` (a wrapper that delegates to one, as
    tests script answers with): it has the model's config, trained state and modes."""
    return all(hasattr(obj, name) for name in ("config", "trainable_state_dict", "answer", "eval", "to"))


def load_model(checkpoint_or_model: Any, *, device: str | None = "auto", threads: int | None = None,
               expert_options: Mapping[str, Mapping[str, Any]] | None = None,
               overrides: Mapping[str, Any] | None = None) -> LoadedModel:
    """A model ready to run: loaded from a checkpoint folder (``uprm train --out DIR``,
    ``save_pretrained``) or given as a :class:`~uprm.UPRMModel`, in eval mode, on
    ``device``.

    Args:
        checkpoint_or_model: a checkpoint folder, or a built model (used as it is).
        device: ``"auto"`` (:func:`resolve_device`), a torch device, or ``None`` (leave a
            given model where it is; ``"auto"`` for a checkpoint).
        threads: torch CPU threads for this process (``None``: torch's default).
        expert_options: ``{expert: {option: value}}`` merged over the checkpoint's saved
            options (e.g. a pose model's weights path on this machine); the saved options
            not named here are kept.
        overrides: other ``UPRMConfig`` fields to change when loading a checkpoint, checked
            as the constructor checks them (e.g. ``{"backbone": "/models/video-llava"}``,
            the backbone's folder on this machine; ``uprm train --init`` passes the run's
            ``num_frames`` and ``z_loss_alpha``).

    Raises:
        uprm.errors.CheckpointError: no such folder, or a malformed checkpoint (names the file).
        uprm.errors.MissingExpertError: the checkpoint needs experts that are not
            installed (names the distribution to ``pip install``).
        ValueError: ``expert_options`` or ``overrides`` for a model object (they apply
            when loading).
    """
    if threads is not None:
        import torch

        if int(threads) < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(int(threads))
    from uprm.modeling.model import UPRMModel

    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        path = Path(checkpoint_or_model)
        if not path.exists():
            raise CheckpointError(f"{path}: no such checkpoint folder (give a folder saved by save_pretrained or "
                                  "`uprm train --out DIR`)")
        fingerprint = model_fingerprint(path)
        changes = dict(overrides or {})
        if expert_options:
            changes["expert_options"] = expert_options
        model = UPRMModel.from_pretrained(path, **changes)
        checkpoint: str | None = str(path)
    elif isinstance(checkpoint_or_model, UPRMModel) or _looks_like_a_model(checkpoint_or_model):
        if expert_options or overrides:
            raise ValueError("expert_options and overrides apply when loading a checkpoint, not to a built model")
        model, checkpoint = checkpoint_or_model, None
        fingerprint = model_fingerprint(model)
    else:
        raise TypeError(f"expected a UPRMModel or a checkpoint folder, got {type(checkpoint_or_model).__name__}")
    if device is None and checkpoint is None:
        resolved = str(model.device)
    else:
        resolved = resolve_device(device)
        model.to(resolved)
    return LoadedModel(model.eval(), fingerprint, resolved, checkpoint)
