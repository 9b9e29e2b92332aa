"""The feature cache: each expert's frozen perception (``Expert.extract``), run once per
clip and stored, so training reads tensors instead of decoding videos and running
HigherHRNet/RelTR/SAM/the video tower every epoch (DESIGN §2: "extract(): no grad,
cacheable").

Layout (one safetensors file per video, window and expert)::

    CACHE/<video_id>/<window>_f<F>/<expert>.safetensors

``<window>`` is ``<start>-<end>`` in seconds (3 decimals) or ``full``; ``F`` the number
of sampled frames. Each file's safetensors metadata records what made it:

- ``uprm.key``: the *staleness key* — the expert's ``extraction_config()``, the expert
  context, a fingerprint of the frozen perception weights (so two randomly initialised
  towers never share entries), and ``F``;
- ``uprm.versions``: uprm-core's version and the expert's distribution and version;
- ``uprm.clip``: the clip's id, path, window, timestamps, frame indices, duration, and
  the byte sizes of the video and of its sidecar files (a changed input is stale);
- ``uprm.written_by``: the process that wrote it (``index/count``).

An entry is used only when all of these match what the current expert would write;
otherwise it is recomputed. Files are written atomically (temporary file +
``os.replace``), so a run killed with ``kill -9`` leaves complete entries and, at worst,
a temporary file that the next run removes; re-running resumes where it stopped.
:func:`extract_features` shards the clips over processes with accelerate's
``PartialState().split_between_processes`` (``torchrun --nproc_per_node N -m uprm extract …``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from uprm.errors import UPRMError
from uprm.experts.base import Expert, ExpertContext
from uprm.types import VideoClip
from uprm.utils import atomic_path, jsonable

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_CONTEXT",
    "CacheEntry",
    "ClipKey",
    "ExtractionReport",
    "FeatureCache",
    "build_extractors",
    "clip_keys_from_records",
    "default_context",
    "entry_spec",
    "extract_features",
    "load_clip_for",
    "load_records",
    "parse_expert_options",
    "perception_fingerprint",
]

CACHE_FORMAT = "1"
#: the context ``uprm extract`` uses when no model is given (``uprm.testing.tiny_context``'s
#: dims: D = 32, 1 + 4×4 tokens per frame from 32-pixel frames)
DEFAULT_CONTEXT: dict[str, int] = {"hidden_size": 32, "tokens_per_frame": 17, "num_prefix_tokens": 1, "image_size": 32}


class CacheError(UPRMError):
    """A cache entry or an instruction file cannot be used; the message names the file."""


# --------------------------------------------------------------------------- clips
@dataclass(frozen=True)
class ClipKey:
    """One clip to extract: a video (or image) file, a window and a frame count.

    Attributes:
        video_id: the record's ``video_id`` (else the file's stem); names the cache folder.
        path: the video or image file (absolute).
        window: ``(start, end)`` seconds, or ``None`` for the whole file.
        num_frames: ``F`` frames sampled uniformly (1 for an image).
        media: ``"video"`` or ``"image"``.
        sidecars: ``(("keypoints", path), ("scene_graph", path))`` put into ``clip.meta``.
    """

    video_id: str
    path: str
    window: tuple[float, float] | None
    num_frames: int
    media: str = "video"
    sidecars: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def window_tag(self) -> str:
        if self.media == "image":
            return "image"
        if self.window is None:
            return f"full_f{self.num_frames}"
        return f"{self.window[0]:.3f}-{self.window[1]:.3f}_f{self.num_frames}"

    @property
    def folder(self) -> str:
        return _safe_name(self.video_id)

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.sidecars)


def _safe_name(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._@+=-]+", "_", text).strip("._") or "clip"
    if safe != text:  # keep distinct ids distinct after sanitising
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe


def load_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read an instruction JSON (docs/formats.md): a list of records, each with ``id``
    and one of ``video``/``image``. Errors name the file and the record."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CacheError(f"{path}: no such instruction file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, list):
        raise CacheError(f"{path}: an instruction file is a JSON list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise CacheError(f"{path}: record {i} is {type(rec).__name__}, not an object")
        if ("video" in rec) == ("image" in rec):
            raise CacheError(f"{path}: record {i} ({rec.get('id', '?')!r}) needs exactly one of 'video' or 'image'")
        window = rec.get("window")
        if window is not None and not (
            isinstance(window, (list, tuple)) and len(window) == 2 and all(isinstance(v, (int, float)) for v in window)
            and window[1] > window[0]
        ):
            raise CacheError(f"{path}: record {i} ({rec.get('id', '?')!r}): field 'window' must be [start, end] "
                             f"with end > start, got {window!r}")
    return data


def record_clip_key(record: Mapping[str, Any], base: str | os.PathLike, num_frames: int) -> ClipKey:
    """The clip a record asks about; paths resolve against ``base`` (the JSON's folder)."""
    base = Path(base)
    media = "image" if "image" in record else "video"
    path = (base / str(record[media])).resolve()
    window = record.get("window")
    sidecars = tuple(
        (name, str((base / str(record[name])).resolve())) for name in ("keypoints", "scene_graph") if record.get(name)
    )
    return ClipKey(
        video_id=str(record.get("video_id") or path.stem),
        path=str(path),
        window=(float(window[0]), float(window[1])) if window is not None and media == "video" else None,
        num_frames=1 if media == "image" else int(num_frames),
        media=media,
        sidecars=sidecars,
    )


def clip_keys_from_records(
    files: Iterable[str | os.PathLike], num_frames: int
) -> list[ClipKey]:
    """The distinct clips of some instruction files, in a stable order (sorted by id,
    window): identify/locate/attribute records of one window share one clip."""
    keys: dict[ClipKey, ClipKey] = {}
    for f in files:
        for rec in load_records(f):
            key = record_clip_key(rec, Path(f).parent, num_frames)
            keys.setdefault(key, key)
    return sorted(keys, key=lambda k: (k.video_id, k.path, k.window or (-1.0, -1.0), k.num_frames))


def load_clip_for(key: ClipKey) -> VideoClip:
    """Decode the clip of ``key`` (data-A's :func:`uprm.data.load_clip` /
    :func:`~uprm.data.load_image`) and put its sidecar paths into ``clip.meta``."""
    from uprm.data.video import load_clip, load_image

    if key.media == "image":
        clip = load_image(key.path)
    else:
        start, end = key.window if key.window is not None else (None, None)
        clip = load_clip(key.path, key.num_frames, start, end)
    clip.video_id = key.video_id
    clip.meta.update(key.meta)
    return clip


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
    """What a valid entry of ``expert`` must carry: the staleness key and versions,
    as canonical JSON strings (compared verbatim)."""
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


def _file_size(path: str | None) -> int | None:
    try:
        return os.stat(path).st_size if path else None
    except OSError:
        return None


def _input_sizes(key: ClipKey) -> dict[str, int | None]:
    sizes = {"video": _file_size(key.path)}
    for name, path in key.sidecars:
        sizes[name] = _file_size(path)
    return sizes


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
        now = _input_sizes(key)
        for name, size in (clip.get("inputs") or {}).items():
            if now.get(name) is not None and size is not None and now[name] != size:
                return f"stale: {name} file changed ({size} -> {now[name]} bytes)"
        if spec is not None:
            for field_name, expected in spec.items():
                if meta.get(field_name) != expected:
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
            "inputs": _input_sizes(key),
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
                stale.unlink()
            except OSError:
                pass
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path


# --------------------------------------------------------------------------- extractors
def default_context(num_frames: int = 8, **overrides: Any) -> ExpertContext:
    """The context ``uprm extract`` uses without a model: :data:`DEFAULT_CONTEXT`
    (tiny dims, as :func:`uprm.testing.tiny_context`) with ``num_frames``."""
    return ExpertContext(**{**DEFAULT_CONTEXT, "num_frames": int(num_frames), **overrides})


def _seed_for(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{name}".encode()).digest()[:4], "big")


def build_extractors(
    names: Sequence[str],
    ctx: ExpertContext | None = None,
    expert_options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Expert]:
    """Build the experts whose ``extract`` fills the cache — the one place that does it.

    Each expert is ``get_expert_class(name)(ctx, **expert_options[name])`` from the
    plugin registry, in eval mode on ``device``. Randomly initialised perception (no
    weights given) is seeded per expert from ``(seed, name)``, so it is the same in
    every process and run; :func:`perception_fingerprint` tells entries of different
    weights apart anyway.
    """
    from uprm.plugins.manager import get_expert_class

    if not names:
        raise ValueError("no experts to build")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise ValueError(f"expert(s) listed twice: {dupes}")
    expert_options = dict(expert_options or {})
    unknown = sorted(set(expert_options) - set(names))
    if unknown:
        raise ValueError(f"options given for expert(s) {unknown} that are not being built ({list(names)})")
    ctx = ctx or default_context()
    out: dict[str, Expert] = {}
    for name in names:
        cls = get_expert_class(name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_for(seed, name))
            expert = cls(ctx, **dict(expert_options.get(name, {})))
        out[name] = expert.to(device).eval()
    return out


def parse_expert_options(items: Iterable[str], names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``["pose.max_people=4", "coarse.vision_path=/models/lb"]`` → ``{"pose": {"max_people": 4}, ...}``.

    Values are read as JSON when they parse (numbers, booleans, null, lists, objects),
    else kept as strings."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        m = re.fullmatch(r"\s*([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)", item, flags=re.S)
        if m is None:
            raise ValueError(f"expert option {item!r} is not NAME.KEY=VALUE (e.g. pose.max_people=4)")
        name, key, raw = m.group(1), m.group(2), m.group(3).strip()
        if names is not None and name not in names:
            raise ValueError(f"expert option {item!r} is for {name!r}, which is not among the experts {list(names)}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(name, {})[key] = value
    return out


# --------------------------------------------------------------------------- extraction
@dataclass
class ExtractionReport:
    """What :func:`extract_features` did in this process."""

    clips: int = 0  # clips in this process's share
    written: int = 0  # entries written
    cached: int = 0  # entries already valid
    stale: int = 0  # entries recomputed because they were stale
    failed: list[tuple[str, str]] = field(default_factory=list)  # (clip, error)
    seconds: float = 0.0
    process: str = "0/1"

    def as_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "written": self.written, "cached": self.cached, "stale": self.stale,
                "failed": len(self.failed), "seconds": round(self.seconds, 3), "process": self.process}


def _partial_state():
    """accelerate's process state when several processes run (torchrun), else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=True)


def extract_features(
    keys: Sequence[ClipKey],
    experts: Mapping[str, Expert],
    cache: FeatureCache | str | os.PathLike,
    *,
    overwrite: bool = False,
    fail_fast: bool = False,
    progress: bool = True,
) -> ExtractionReport:
    """Fill ``cache`` with every expert's features of every clip in ``keys``.

    Valid entries are skipped (so a killed run resumes), stale ones recomputed, each
    clip is decoded once for all the experts that need it, and each entry is written
    atomically. Under ``torchrun`` (``WORLD_SIZE > 1``) the clips still to do are split
    between the processes with accelerate's ``PartialState().split_between_processes``.

    A clip that fails (a bad video, an expert error) is reported in the result and the
    others go on, unless ``fail_fast``.
    """
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    specs = {name: entry_spec(e) for name, e in experts.items()}
    state = _partial_state()
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    report = ExtractionReport(process=f"{rank}/{world}")
    start = time.perf_counter()

    todo: list[tuple[ClipKey, list[tuple[str, str]]]] = []  # (clip, [(expert, status)])
    for key in keys:
        need = []
        for name in experts:
            status = "overwrite" if overwrite else cache.status(key, name, specs[name])
            if status != "ok":
                need.append((name, status))
        todo.append((key, need))
    if state is not None:
        state.wait_for_everyone()  # every process has looked before anyone writes
    mine = todo
    if state is not None:
        with state.split_between_processes(todo) as share:
            mine = list(share)
    report.clips = len(mine)
    report.cached = sum(len(experts) - len(need) for _, need in mine)

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(mine), desc=f"extract [{', '.join(experts)}]" + (f" x{world} procs" if world > 1 else ""),
                   unit="clip")
    try:
        for key, need in mine:
            if need:
                try:
                    clip = load_clip_for(key)
                    for name, status in need:
                        feats = experts[name].extract(clip)
                        cache.write(key, name, feats, specs[name], clip, written_by=f"{rank}/{world}")
                        report.written += 1
                        report.stale += status.startswith("stale")
                except Exception as exc:
                    if fail_fast:
                        raise
                    where = f"{key.video_id} [{key.window_tag}] ({key.path})"
                    report.failed.append((where, f"{type(exc).__name__}: {exc}"))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if state is not None:
        state.wait_for_everyone()
    report.seconds = time.perf_counter() - start
    return report
