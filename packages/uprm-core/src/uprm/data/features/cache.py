"""The feature cache: each expert's frozen perception (``Expert.extract``), run once per
clip and stored, so training reads tensors instead of decoding videos and running
HigherHRNet/RelTR/SAM/the video tower every epoch (DESIGN §2: "extract(): no grad,
cacheable").

Layout (one safetensors file per video, window and expert)::

    CACHE/<video_id>/<window>_f<F>/<expert>.safetensors

``<window>`` is ``<start>-<end>`` in seconds (3 decimals) or ``full``; ``F`` the number
of sampled frames. Each file's safetensors metadata records what made it:

- ``uprm.key``: the *staleness key* — what changes features, and nothing else: the
  expert's ``extraction_config()`` (its name, ``feature_version`` and extraction
  options, and e.g. a weights file's hash), the expert context, and a fingerprint of
  the frozen perception weights (so two randomly initialised towers never share
  entries). Package versions are *not* part of it: a release that changes no extractor
  does not re-extract a corpus (an extractor that changes bumps its ``feature_version``);
- ``uprm.clip``: the clip's id, path, window, timestamps, frame indices, duration, and
  a content fingerprint of the video and of each sidecar file (:func:`input_fingerprint`:
  size plus a hash of the whole file, or of its head, tail and evenly spaced strides for
  a large one), so a video replaced by another of the same size, or a keypoint file
  edited in place, makes the entry stale;
- ``uprm.versions`` (information only, never compared): uprm-core's version and the
  expert's distribution and version;
- ``uprm.written_by``: the process that wrote it (``index/count``).

An entry is used only when its format, key and input fingerprints match what the
current expert would write; otherwise it is recomputed. Files are written atomically
(temporary file + ``os.replace``), so a run killed with ``kill -9`` leaves complete
entries and, at worst, a temporary file that the next run removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from uprm.data.records import ClipKey
from uprm.errors import CacheError
from uprm.experts.base import Expert
from uprm.types import VideoClip
from uprm.utils import atomic_path, jsonable

#: a temporary file of an entry older than this (seconds) was left by a killed writer
STALE_TEMPORARY_S = 600.0

__all__ = [
    "CACHE_FORMAT",
    "CacheEntry",
    "FeatureCache",
    "entry_spec",
    "input_fingerprint",
    "perception_fingerprint",
]

CACHE_FORMAT = "2"
#: a file up to this size is hashed whole; a larger one by samples
WHOLE_FILE_BYTES = 8 << 20
_SAMPLE_BYTES = 1 << 20  # head and tail
_STRIDES, _STRIDE_BYTES = 16, 64 << 10


# --------------------------------------------------------------------------- staleness
_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _perception_tensors(expert: Expert) -> list[tuple[str, torch.Tensor]]:
    out = []
    for name in expert.perception_names:
        module = getattr(expert, name, None)
        if isinstance(module, torch.nn.Module):
            out += [(f"{name}.{key}", value) for key, value in sorted(module.state_dict(keep_vars=True).items())]
    return out


def perception_fingerprint(expert: Expert) -> str:
    """A hash of the expert's frozen perception weights (names, shapes, dtypes, values),
    so features made by differently initialised or differently loaded backbones are
    never mixed. Remembered per expert until a weight is replaced or changed in place
    (``load_state_dict``), when it is computed again."""
    tensors = _perception_tensors(expert)
    signature = tuple((name, t.data_ptr(), t._version) for name, t in tensors)
    cached = _FINGERPRINTS.get(expert)
    if cached is not None and cached[0] == signature:
        return cached[1]
    h = hashlib.blake2b(digest_size=16)
    for name, value in tensors:
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest = h.hexdigest()
    _FINGERPRINTS[expert] = (signature, digest)
    return digest


def _expert_version(expert: Expert) -> dict[str, str | None]:
    from uprm.plugins.manager import expert_infos

    info = None
    try:
        info = expert_infos().get(expert.name)
    except Exception:  # a broken registry must not stop reading a cache
        info = None
    if info is not None and info.cls is type(expert):
        return {"distribution": info.distribution, "version": info.version}
    return {"distribution": None, "version": None}


def entry_spec(expert: Expert) -> dict[str, str]:
    """What a valid entry of ``expert`` must carry: the staleness key (``uprm.key``,
    compared verbatim) and, for information only, the versions (``uprm.versions``)."""
    from uprm._version import __version__

    key = {
        "extraction": jsonable(expert.extraction_config()),
        "context": expert.ctx.to_dict(),
        "perception": perception_fingerprint(expert),
    }
    versions = {"uprm-core": __version__, **_expert_version(expert)}
    return {
        "uprm.key": json.dumps(key, sort_keys=True, separators=(",", ":")),
        "uprm.versions": json.dumps(versions, sort_keys=True, separators=(",", ":")),
    }


#: the metadata fields of an entry that decide whether it is stale
STALENESS_FIELDS = ("uprm.key",)

_INPUTS: dict[tuple[str, int, int], str] = {}


def input_fingerprint(path: str | os.PathLike | None) -> str | None:
    """A content fingerprint of an input file, cheap on long videos: its size and a
    BLAKE2b hash of the whole file up to 8 MiB, else of its first and last MiB and 16
    evenly spaced 64-KiB strides. ``None`` when there is no such file. Memoised per
    (path, size, mtime) in the process; the file's modification time is not part of the
    fingerprint, so a corpus copied elsewhere keeps its cache."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    memo = (str(path), st.st_size, st.st_mtime_ns)
    digest = _INPUTS.get(memo)
    if digest is None:
        digest = _INPUTS[memo] = f"{st.st_size}:{_sampled_hash(Path(path), st.st_size)}"
    return digest


def _sampled_hash(path: Path, size: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        if size <= WHOLE_FILE_BYTES:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
            return h.hexdigest()
        offsets = [0, size - _SAMPLE_BYTES] + [
            _SAMPLE_BYTES + (size - 2 * _SAMPLE_BYTES) * k // (_STRIDES + 1) for k in range(1, _STRIDES + 1)
        ]
        for offset in offsets:
            fh.seek(offset)
            h.update(fh.read(_SAMPLE_BYTES if offset in (0, size - _SAMPLE_BYTES) else _STRIDE_BYTES))
    return h.hexdigest()


def _input_fingerprints(key: ClipKey) -> dict[str, str | None]:
    inputs = {"video": input_fingerprint(key.path)}
    for name, path in key.sidecars:
        inputs[name] = input_fingerprint(path)
    return inputs


@dataclass
class CacheEntry:
    """A cached entry: the features and what the file says about them."""

    features: dict[str, torch.Tensor]
    clip: dict[str, Any]
    metadata: dict[str, str]

    @property
    def num_frames(self) -> int:
        return int(self.clip.get("num_frames", 0))


class FeatureCache:
    """A folder of cached features (the layout in this module's docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: ClipKey, expert: str) -> Path:
        return self.root / key.folder / key.window_tag / f"{expert}.safetensors"

    def status(self, key: ClipKey, expert: str, spec: Mapping[str, str] | None = None) -> str:
        """``"ok"``, ``"missing"``, or ``"stale: <why>"`` (a corrupt file is stale)."""
        path = self.path(key, expert)
        if not path.exists():
            return "missing"
        try:
            meta = self._metadata(path)
        except Exception as exc:
            return f"stale: unreadable ({type(exc).__name__})"
        return self._check(meta, key, spec)

    def _check(self, meta: Mapping[str, str], key: ClipKey, spec: Mapping[str, str] | None) -> str:
        if meta.get("uprm.format") != CACHE_FORMAT:
            return f"stale: cache format {meta.get('uprm.format')!r}, expected {CACHE_FORMAT!r}"
        try:
            clip = json.loads(meta.get("uprm.clip", "{}"))
        except ValueError:
            return "stale: unreadable clip metadata"
        saved = clip.get("inputs") or {}
        for name, now in _input_fingerprints(key).items():
            # an input that is gone cannot be checked: the entry stands (features may be kept
            # after the videos are deleted); one that exists must be the one extracted
            if now is not None and saved.get(name) != now:
                return f"stale: the {name} file changed" if saved.get(name) else f"stale: the {name} file is new"
        if spec is not None:
            for field_name in STALENESS_FIELDS:
                if meta.get(field_name) != spec.get(field_name):
                    return f"stale: {field_name.split('.', 1)[1]} differs"
        return "ok"

    @staticmethod
    def _metadata(path: Path) -> dict[str, str]:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})

    def read(self, key: ClipKey, expert: str, spec: Mapping[str, str] | None = None) -> CacheEntry | None:
        """The entry, or ``None`` when it is missing, stale or unreadable.
        Without ``spec`` only the format and the input files are checked."""
        from safetensors import safe_open

        path = self.path(key, expert)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                if self._check(meta, key, spec) != "ok":
                    return None
                features = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
            return CacheEntry(features, json.loads(meta["uprm.clip"]), meta)
        except Exception:
            return None

    def write(self, key: ClipKey, expert: str, features: Mapping[str, torch.Tensor], spec: Mapping[str, str],
              clip: VideoClip, written_by: str = "0/1") -> Path:
        """Store ``features`` atomically with the metadata described above."""
        from safetensors.torch import save_file

        tensors = {}
        for name, value in features.items():
            if not isinstance(value, torch.Tensor):
                raise CacheError(f"expert {expert!r}: extract() returned {type(value).__name__} for {name!r}, "
                                 "not a tensor; only tensors can be cached")
            tensors[name] = value.detach().cpu().contiguous().clone()
        clip_meta = {
            "video_id": key.video_id,
            "path": key.path,
            "media": key.media,
            "window": list(key.window) if key.window is not None else None,
            "num_frames": int(clip.num_frames),
            "timestamps": [round(float(t), 6) for t in clip.timestamps.tolist()],
            "frame_indices": list(clip.meta.get("frame_indices", [])),
            "duration": float(clip.duration),
            "source_size": clip.meta.get("source_size"),
            "inputs": _input_fingerprints(key),
        }
        metadata = {
            "uprm.format": CACHE_FORMAT,
            "uprm.expert": expert,
            **spec,
            "uprm.clip": json.dumps(jsonable(clip_meta), sort_keys=True, separators=(",", ":")),
            "uprm.written_by": written_by,
        }
        path = self.path(key, expert)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
            try:
                # only an old one: a fresh one is another process writing this entry right now
                # (two runs of different seeds sharing a cache), and taking it made that write fail
                if time.time() - stale.stat().st_mtime > STALE_TEMPORARY_S:
                    stale.unlink()
            except OSError:
                pass
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path


