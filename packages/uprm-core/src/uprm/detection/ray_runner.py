"""Detection as a Ray job: ``uprm detect VIDEOS… --ray [ADDRESS]``, ``uprm.detect(...,
ray=...)``.

The same detection as a local run, spread over a Ray cluster:

* **Chunks, not files.** Each video is probed (its duration) by a small CPU task, its
  windows are planned as a local run plans them (:func:`~uprm.detection.plan.plan_windows`)
  and cut into chunks of about ``chunk_windows`` windows, rounded to whole batches
  (:meth:`~uprm.detection.plan.WindowPlan.chunks`), so an hour-long video and a
  one-minute clip spread evenly and a chunk's batches are those of a local run.
* **Decoding beside the model.** A CPU task decodes a chunk's grid frames
  (:func:`decode_chunk`) while the replicas answer other chunks; the driver keeps at most
  one chunk per replica decoded ahead. These tasks reserve no CPU of Ray's accounting (the
  replicas reserve theirs), so they use what a replica leaves idle.
* **Replicas.** An actor per replica loads the checkpoint itself from its path (the same
  path on every node: a shared folder; it is never pickled) and answers chunks
  (:func:`~uprm.detection.runner.answer_windows`: perception, the UPE block and the LLM,
  exactly as a local run). One replica per GPU when the cluster has GPUs; on CPUs
  ``replicas`` (default 1) with ``threads`` torch threads each (default: the CPUs
  shared out). Each replica checks that its checkpoint's fingerprint is the driver's.
* **Dynamic balance.** The driver hands the next chunk to whichever replica is free.
* **A replica that dies** (killed, out of memory, its node lost) has its chunk handed to
  another replica and is replaced by a new one while more work waits than the live
  replicas hold (up to :data:`RESTARTS_PER_REPLICA` times per replica in a job); a chunk
  whose replica dies :data:`CHUNK_ATTEMPTS` times fails its video (the others go on), as
  an error in a video (a bad file) fails only that video. When every replica has died
  past its restarts the job stops: the videos finished are written, each one left fails
  with ``every replica died (...)`` and the last death's cause, and a rerun does them
  (a replica that died in an earlier job of the process is started anew, not counted as
  a restart).
* **Kept for the next job.** The replicas stay up for the next job of the process with
  the same checkpoint and plan (:func:`start_replicas` starts them ahead, :func:`release`
  ends them).
* **The driver writes.** Chunks are merged in time order into segments
  (:func:`~uprm.detection.runner.merge_answers`), evidence sheets drawn, and each video's
  files written atomically by the driver as a local run writes them; a rerun skips
  finished videos. Outputs equal a local run's but for the run-specific fields:
  ``timings``, ``stats.seconds``, ``stats.windows_per_s`` (the replicas' time),
  ``stats.frames_decoded`` (a frame two chunks share is decoded by both).

``ray`` is imported only here, inside the functions that run a job: ``pip install
"uprm-core[ray]"``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uprm.detection.plan import WindowPlan, plan_windows
from uprm.errors import MissingExtraError, UPRMError
from uprm.options import DetectOptions

__all__ = [
    "CHUNK_ATTEMPTS",
    "CHUNK_WINDOWS",
    "RESTARTS_PER_REPLICA",
    "ChunkTask",
    "DecodedChunk",
    "RayEvent",
    "RayStats",
    "RemoteError",
    "ReplicaPlan",
    "check_count",
    "connect",
    "decode_chunk",
    "describe",
    "detect_on_ray",
    "import_ray",
    "plan_replicas",
    "portable",
    "ray_address",
    "release",
    "run_job",
    "run_on_ray",
    "start_replicas",
]

#: windows per chunk by default (rounded up to whole batches): about a minute of video
#: at the default 4-s stride
CHUNK_WINDOWS = 16
#: a chunk whose replica dies this many times fails its video
CHUNK_ATTEMPTS = 3
#: how many times a dead replica is replaced by a new one
RESTARTS_PER_REPLICA = 3

_ADDRESS = re.compile(r"[\w.\-]+:\d+")


def import_ray(feature: str = "uprm detect --ray") -> Any:
    """The ``ray`` module, or :class:`~uprm.errors.MissingExtraError` naming
    ``pip install "uprm-core[ray]"`` (:func:`uprm.extras.require`)."""
    from uprm.extras import require

    require("ray", feature=feature)
    try:
        import ray
    except ImportError as exc:  # found but broken: still the extra to (re)install
        raise MissingExtraError(feature, {"ray": ["ray"]}) from exc
    return ray


def ray_address(value: bool | str) -> bool | str:
    """``True`` (start or join a Ray on this machine, ``ray.init()``) or a cluster's
    address as ``ray.init(address=...)`` takes it (``auto``, ``local``, ``HOST:PORT``,
    ``ray://HOST:10001``); anything else is a ``ValueError``."""
    if value is True or value == "":
        return True
    if isinstance(value, str) and (value in ("auto", "local") or "://" in value or _ADDRESS.fullmatch(value)):
        return value
    raise ValueError(f"ray={value!r} is not a Ray address: give True (start or join a Ray on this machine), "
                     "'auto' (the cluster this machine belongs to), 'HOST:PORT' or 'ray://HOST:10001' (on the "
                     "command line, --ray alone must be followed by another option or come last)")


def connect(address: bool | str, feature: str = "uprm detect --ray") -> Any:
    """The ``ray`` module, connected: an already initialised Ray is used as it is;
    else ``ray.init()`` (``address=True``) or ``ray.init(address=...)``. A Ray started
    here stays up for the rest of the process (``ray.shutdown()`` ends it)."""
    address = ray_address(address)
    ray = import_ray(feature)
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
        if address is not True:
            kwargs["address"] = address
        ray.init(**kwargs)
    return ray


@dataclass(frozen=True)
class ReplicaPlan:
    """How many model replicas, and what each reserves: ``num_gpus`` GPUs and
    ``num_cpus`` CPUs, with ``threads`` torch threads on ``device``."""

    count: int
    threads: int
    num_cpus: int
    num_gpus: int
    device: str

    def describe(self) -> str:
        where = f"{self.num_gpus} GPU + {self.num_cpus} CPU" if self.num_gpus else f"{self.num_cpus} CPU"
        return f"{self.count} replica(s), each {where}, {self.threads} thread(s)"


def check_count(name: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is ``None`` or a whole number of at least 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def plan_replicas(cpus: float, gpus: float, replicas: int | None = None, threads: int | None = None,
                  device: str = "auto", node_cpus: float | None = None) -> ReplicaPlan:
    """The replicas of a Ray job on a cluster of ``cpus`` CPUs and ``gpus`` GPUs in all
    (``node_cpus``: the most CPUs of one node). With GPUs (and ``device`` not ``cpu``):
    one replica per GPU, or ``replicas`` ≤ the GPUs. Else ``replicas`` (default 1), each
    with ``threads`` (default: the CPUs shared out, at most one node's), needing
    ``replicas × threads`` CPUs. Raises ``ValueError`` naming what does not fit."""
    check_count("replicas", replicas)
    check_count("threads", threads)
    whole_cpus, whole_gpus = int(cpus), int(gpus)
    if whole_gpus > 0 and not device.startswith("cpu"):
        count = replicas or whole_gpus
        if count > whole_gpus:
            raise ValueError(f"{count} replicas need {count} GPUs (one each); the Ray cluster has {whole_gpus}")
        # a replica sees only its own GPU: "cuda:3" on the driver is "cuda" there
        return ReplicaPlan(count, threads or 1, threads or 1, 1, "cuda" if device.startswith("cuda") else device)
    if device.startswith("cuda"):
        raise ValueError(f"device {device!r}: the Ray cluster has no GPU")
    count = replicas or 1
    per_node = int(node_cpus if node_cpus is not None else cpus)
    each = threads or max(1, min(whole_cpus // count, per_node))
    if count * each > whole_cpus:
        raise ValueError(f"{count} replica(s) × {each} thread(s) need {count * each} CPUs; the Ray cluster has "
                         f"{whole_cpus} (lower --replicas or --threads)")
    if each > per_node:
        raise ValueError(f"a replica of {each} threads needs {each} CPUs on one node; the largest node has {per_node}")
    return ReplicaPlan(count, each, each, 0, device)


# -- what runs on the cluster -----------------------------------------------------------


class RemoteError(UPRMError):
    """An error raised on the cluster whose class cannot be rebuilt on the driver (its
    constructor takes other arguments than a message, as :class:`~uprm.errors.VideoError`'s):
    its class name (``kind``) and message, reported as a local run reports the error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (RemoteError, (self.kind, self.message))


def portable(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling, else a :class:`RemoteError` of it. Unpickling an
    exception calls what its ``__reduce__`` names with the arguments it gives; that call is
    tried here (no bytes are unpickled)."""
    try:
        rebuild, args = exc.__reduce__()[:2]
        rebuild(*args)
    except Exception:
        return RemoteError(type(exc).__name__, str(exc))
    return exc


def describe(exc: BaseException) -> str:
    """``"VideoError: <message>"``, what a failed video's report line says."""
    return str(exc) if isinstance(exc, RemoteError) else f"{type(exc).__name__}: {exc}"


@dataclass
class ChunkTask:
    """One chunk of one video: consecutive whole batches of its windows."""

    video: str
    video_id: str
    plan: WindowPlan
    windows: range
    number: int
    batch_size: int
    max_side: int | None
    sidecar_dir: str | None
    evidence: bool
    attempts: int = 0


@dataclass
class DecodedChunk:
    """A chunk's grid frames, decoded by a CPU task; read by the replica's
    :class:`~uprm.detection.frames.FrameBuffer` as if it were the open video
    (``frames_at``, ``info``, ``path``, ``rotation``)."""

    path: Path
    info: Any
    rotation: int
    times: list[float]
    pixels: np.ndarray
    stamps: list[float]
    indices: list[int]
    size: tuple[int, int]
    seconds: float

    def frames_at(self, times: Sequence[float]) -> tuple[np.ndarray, list[float], list[int], tuple[int, int]]:
        """The frames decoded for ``times`` (each one of :attr:`times`), as
        :meth:`uprm.data.VideoReader.frames_at` returns them."""
        row = {t: i for i, t in enumerate(self.times)}
        try:
            rows = [row[float(t)] for t in times]
        except KeyError as exc:
            raise ValueError(f"{self.path}: no frame was decoded for {exc.args[0]} s in this chunk") from None
        return self.pixels[rows], [self.stamps[r] for r in rows], [self.indices[r] for r in rows], self.size


def decode_chunk(task: ChunkTask) -> DecodedChunk:
    """Decode the grid frames of ``task``'s windows (a Ray CPU task), at the times a
    local run asks them."""
    from uprm.data import VideoReader

    start = time.perf_counter()
    plan = task.plan
    times = [min(plan.time_of(k), plan.duration) for k in plan.needed(task.windows)]
    try:
        with VideoReader(Path(task.video), max_side=task.max_side) as reader:
            pixels, stamps, indices, size = reader.frames_at(times)
            return DecodedChunk(reader.path, reader.info, getattr(reader, "rotation", 0), times, pixels, stamps,
                                indices, (int(size[0]), int(size[1])), time.perf_counter() - start)
    except Exception as exc:
        raise portable(exc) from None


def probe_duration(video: str, max_side: int | None) -> float:
    """A video's duration as a local run reads it (a Ray CPU task)."""
    from uprm.data import VideoReader

    try:
        with VideoReader(Path(video), max_side=max_side) as reader:
            return float(reader.info.duration)
    except Exception as exc:
        raise portable(exc) from None


@dataclass
class _Names:
    """What an evidence sheet needs of an expert on the driver: its vocabularies."""

    labels: Any = None
    predicates: Any = None


@dataclass
class ReplicaInfo:
    """A replica, once its model is loaded."""

    pid: int
    host: str
    node: str
    num_frames: int
    fingerprint: str
    experts: dict[str, _Names]


class _Replica:
    """A Ray actor holding one model, loaded from the checkpoint's path on its node. A
    load error is kept and raised by :meth:`info`, so the driver reports it (the
    checkpoint, a missing expert) instead of a dead actor."""

    def __init__(self, checkpoint: str, device: str, threads: int, expert_options: dict[str, dict[str, Any]]):
        self.error: BaseException | None = None
        self.model: Any = None
        try:
            from uprm.modeling.loading import load_model, model_fingerprint

            self.model = load_model(checkpoint, device=device, threads=threads,
                                    expert_options=expert_options or None).model
            self.fingerprint = model_fingerprint(checkpoint)
        except Exception as exc:
            self.error = exc

    def info(self) -> ReplicaInfo:
        if self.error is not None:
            raise portable(self.error)
        import ray

        experts = {name: _Names(getattr(e, "labels", None), getattr(e, "predicates", None))
                   for name, e in self.model.block.experts.items()}
        return ReplicaInfo(os.getpid(), socket.gethostname(), ray.get_runtime_context().get_node_id(),
                           int(self.model.config.num_frames), self.fingerprint, experts)

    def run(self, task: ChunkTask, decoded: DecodedChunk) -> Any:
        from uprm.detection.runner import answer_windows

        try:
            return answer_windows(self.model, decoded, task.plan, task.windows, batch_size=task.batch_size,
                                  video_id=task.video_id, sidecar_dir=task.sidecar_dir, evidence=task.evidence,
                                  timings={"decode": decoded.seconds})
        except Exception as exc:
            raise portable(exc) from None


# -- the driver -------------------------------------------------------------------------


@dataclass
class RayEvent:
    """What happened in a Ray job, for progress and tests: ``kind`` is one of
    ``replica_ready``, ``dispatched``, ``chunk_done``, ``replica_died``, ``video_done``,
    ``video_failed``; ``replica`` the replica's number, ``pid`` its process."""

    kind: str
    video_id: str | None = None
    chunk: int | None = None
    replica: int | None = None
    pid: int | None = None
    detail: str = ""


@dataclass
class RayStats:
    """What a Ray job did beyond the videos: its replicas, the deaths and retries."""

    replicas: str = ""
    chunks: int = 0
    deaths: int = 0
    restarts: int = 0
    retried_chunks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "chunks": self.chunks, "deaths": self.deaths, "restarts": self.restarts,
                "retried_chunks": self.retried_chunks}


@dataclass
class _Slot:
    """One replica of a pool: its actor, what it said once loaded, the call it is busy
    with (a chunk of a job that ended before it came back), its restarts."""

    index: int
    actor: Any = None
    info: ReplicaInfo | None = None
    busy: Any = None
    restarts: int = 0


class _Pool:
    """The replicas of this process's Ray jobs. They stay up after a job, for the next
    one with the same checkpoint and replica plan on the same cluster (``uprm.detect``
    in a loop loads the model once); another checkpoint or plan replaces them, and
    :func:`release` (or ``ray.shutdown()``) ends them."""

    def __init__(self, ray: Any, key: tuple, replicas: ReplicaPlan, checkpoint: str,
                 expert_options: Mapping[str, Any]) -> None:
        self.ray, self.key, self.replicas, self.checkpoint = ray, key, replicas, checkpoint
        self.expert_options = dict(expert_options)
        self.actor_class = ray.remote(num_cpus=replicas.num_cpus, num_gpus=replicas.num_gpus)(_Replica)
        self.slots = [_Slot(i) for i in range(replicas.count)]
        self.starting: dict[Any, _Slot] = {}
        self.num_frames: int | None = None
        self.experts: Mapping[str, Any] = {}
        for slot in self.slots:
            self.start(slot)

    def start(self, slot: _Slot) -> None:
        slot.actor = self.actor_class.remote(self.checkpoint, self.replicas.device, self.replicas.threads,
                                             self.expert_options)
        slot.info, slot.busy = None, None
        self.starting[slot.actor.info.remote()] = slot

    def close(self) -> None:
        for slot in self.slots:
            if slot.actor is not None:
                self.ray.kill(slot.actor, no_restart=True)
                slot.actor = None
        self.starting.clear()


_POOL: _Pool | None = None


def _pool(ray: Any, replicas: ReplicaPlan, checkpoint: str, fingerprint: str, options: DetectOptions) -> _Pool:
    """This process's pool for these replicas (:class:`_Pool`): the one kept from an
    earlier job when it matches, else a new one (the old one ended)."""
    global _POOL
    key = (*_session(ray), replicas, checkpoint, fingerprint,
           json.dumps(options.expert_options, sort_keys=True, default=str))
    if _POOL is not None and _POOL.key == key:
        return _POOL
    if _POOL is not None and _POOL.key[:2] != key[:2]:
        _POOL = None  # a pool of another Ray session: its actors ended with it
    release()
    _POOL = _Pool(ray, key, replicas, checkpoint, options.expert_options)
    return _POOL


def _session(ray: Any) -> tuple[Any, Any]:
    """Which Ray cluster and job this process is connected to (a pool belongs to one)."""
    context = ray.get_runtime_context()
    try:
        address = context.gcs_address
    except Exception:  # pragma: no cover - Ray Client does not say
        address = None
    return address, context.get_job_id()


def release() -> None:
    """End the replicas kept for the next Ray job of this process (:class:`_Pool`)."""
    global _POOL
    if _POOL is not None:
        pool, _POOL = _POOL, None
        try:
            pool.close()
        except Exception:  # pragma: no cover - Ray already shut down
            pass


@dataclass
class _Video:
    path: Path
    duration: float | None = None
    plan: WindowPlan | None = None
    parts: dict[int, Any] = field(default_factory=dict)
    chunks: int = 0
    failed: bool = False
    done: bool = False


#: called when every chunk of a video is answered: (the video's path, its plan, its
#: parts in time order, the experts' vocabularies); writes or keeps the result
Finish = Callable[[Path, WindowPlan, list[Any], Mapping[str, Any]], None]


def _unwrap(exc: BaseException) -> BaseException:
    """The exception raised on the cluster (``RayTaskError.cause``), or ``exc``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class _Job:
    """The driver's loop: probe videos, plan and decode chunks, hand them to free
    replicas, replace dead ones, merge and finish each video."""

    def __init__(self, pool: _Pool, options: DetectOptions, fingerprint: str, chunk_windows: int, finish: Finish,
                 on_event: Callable[[RayEvent], None] | None, progress: Any):
        self.pool, self.ray, self.options, self.fingerprint = pool, pool.ray, options, fingerprint
        self.chunk_windows, self.finish, self.on_event, self.progress = chunk_windows, finish, on_event, progress
        self.count = pool.replicas.count
        self.stats = RayStats(replicas=pool.replicas.describe())
        self.failures: list[tuple[Path, BaseException]] = []
        self.unprobed: deque[_Video] = deque()
        self.probed: deque[_Video] = deque()
        self.queued: deque[ChunkTask] = deque()  # planned, not decoding yet
        self.ready: deque[tuple[ChunkTask, Any]] = deque()  # decoding or decoded, not dispatched
        self.probing: dict[Any, _Video] = {}
        self.running: dict[Any, tuple[_Slot, ChunkTask | None, Any]] = {}
        self.idle: list[_Slot] = []
        for slot in pool.slots:  # the pool's replicas: loaded, still busy with an earlier job's chunk, or starting
            if slot.busy is not None:
                self.running[slot.busy] = (slot, None, None)
            elif slot.info is not None and slot.actor is not None:
                self.idle.append(slot)
            slot.restarts = 0  # the limit is per job
        # replicas that died in an earlier job: started anew when work waits, not restarts
        self.revive = {slot.index for slot in pool.slots if slot.actor is None}
        self.videos: dict[str, _Video] = {}
        self.remaining = 0  # videos neither done nor failed
        self.last_death = ""
        self.decode = self.ray.remote(num_cpus=0)(decode_chunk)
        self.probe = self.ray.remote(num_cpus=0)(probe_duration)

    def emit(self, kind: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(RayEvent(kind, **fields))

    # -- replicas

    def on_started(self, ref: Any, slot: _Slot) -> None:
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self.died(slot, exc)
            return
        except Exception as exc:  # the checkpoint cannot load: every replica would fail alike
            raise _unwrap(exc) from None
        if info.fingerprint != self.fingerprint:
            raise ValueError(f"replica {slot.index} on {info.host} loaded another checkpoint from "
                             f"{self.pool.checkpoint} ({info.fingerprint}) than this machine sees ({self.fingerprint}): "
                             "the checkpoint must be the same files at the same path on every node, and must not "
                             "change during a job")
        slot.info = info
        self.pool.num_frames, self.pool.experts = info.num_frames, info.experts
        self.idle.append(slot)
        self.emit("replica_ready", replica=slot.index, pid=info.pid)

    def died(self, slot: _Slot, exc: BaseException) -> None:
        self.stats.deaths += 1
        self.last_death = " ".join(str(exc).split())[:400] or type(exc).__name__
        self.emit("replica_died", replica=slot.index, pid=slot.info.pid if slot.info else None,
                  detail=self.last_death)
        self.ray.kill(slot.actor, no_restart=True)
        slot.actor, slot.info, slot.busy = None, None, None

    def replace(self) -> None:
        """Start a new replica in place of a dead one (up to :data:`RESTARTS_PER_REPLICA`
        times each in this job; one that died in an earlier job is started anew) while
        more work waits than the live replicas hold: not to load a model for a job's last
        chunk."""
        live = sum(slot.actor is not None for slot in self.pool.slots)
        waiting = len(self.queued) + len(self.ready) + len(self.probed) + len(self.probing) + len(self.unprobed)
        for slot in self.pool.slots:
            if waiting <= live:
                return
            if slot.actor is None and slot.index in self.revive:
                self.revive.discard(slot.index)
            elif slot.actor is None and slot.restarts < RESTARTS_PER_REPLICA:
                slot.restarts += 1
                self.stats.restarts += 1
            else:
                continue
            self.pool.start(slot)
            live += 1

    # -- videos and chunks

    def fail(self, video: _Video, exc: BaseException) -> None:
        if not (video.failed or video.done):
            video.failed = True
            self.remaining -= 1
            self.failures.append((video.path, exc))
            self.emit("video_failed", video_id=video.path.stem, detail=f"{type(exc).__name__}: {exc}")

    def plan_chunks(self, video: _Video) -> None:
        opts = self.options
        try:
            video.plan = plan_windows(video.duration, opts.window, opts.stride, self.pool.num_frames)  # type: ignore[arg-type]
        except ValueError as exc:
            self.fail(video, exc)
            return
        chunks = video.plan.chunks(self.chunk_windows, opts.batch_size)
        video.chunks = len(chunks)
        self.stats.chunks += len(chunks)
        if self.progress is not None:
            self.progress.total = (self.progress.total or 0) + len(video.plan)
            self.progress.refresh()
        for n, windows in enumerate(chunks):
            self.queued.append(ChunkTask(str(video.path), video.path.stem, video.plan, windows, n, opts.batch_size,
                                         opts.max_side, opts.sidecar_dir, opts.evidence))

    def feed(self) -> None:
        """Keep the pipeline full: probes ahead of planning, one decoded chunk ahead per
        replica, a chunk on every free replica, a new replica for a dead one."""
        count = self.count
        self.replace()
        while self.unprobed and len(self.probing) < count + 1 and len(self.queued) + len(self.ready) < 2 * count:
            video = self.unprobed.popleft()
            self.probing[self.probe.remote(str(video.path), self.options.max_side)] = video
        while self.pool.num_frames is not None and self.probed:
            self.plan_chunks(self.probed.popleft())
        while self.queued and len(self.ready) < count:
            task = self.queued.popleft()
            if not self.videos[task.video_id].failed:
                self.ready.append((task, self.decode.remote(task)))
        while self.idle and self.ready:
            task, decoded = self.ready.popleft()
            if self.videos[task.video_id].failed:
                continue
            slot = self.idle.pop(0)
            self.running[slot.actor.run.remote(task, decoded)] = (slot, task, decoded)
            self.emit("dispatched", video_id=task.video_id, chunk=task.number, replica=slot.index,
                      pid=slot.info.pid if slot.info else None)

    def on_probed(self, ref: Any, video: _Video) -> None:
        try:
            video.duration = self.ray.get(ref)
        except Exception as exc:  # a bad file: reported, the others go on
            self.fail(video, _unwrap(exc))
            return
        self.probed.append(video)

    def on_answered(self, ref: Any, slot: _Slot, task: ChunkTask | None, decoded: Any) -> None:
        try:
            part = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:  # the replica died: its chunk goes to another
            self.died(slot, exc)
            if task is not None:
                self.retry(task, decoded, exc)
            return
        except Exception as exc:  # an error of this video (a bad file, an expert's): it fails, the others go on
            self.idle.append(slot)
            if task is not None:
                self.fail(self.videos[task.video_id], _unwrap(exc))
            return
        self.idle.append(slot)
        if task is None:  # an earlier job's chunk
            return
        self.emit("chunk_done", video_id=task.video_id, chunk=task.number, replica=slot.index)
        if self.progress is not None:
            self.progress.update(len(task.windows))
        video = self.videos[task.video_id]
        if not video.failed:
            video.parts[task.number] = part
            if len(video.parts) == video.chunks:
                self.done(video)

    def retry(self, task: ChunkTask, decoded: Any, exc: BaseException) -> None:
        """Hand a dead replica's chunk to the next free one, or fail its video after
        :data:`CHUNK_ATTEMPTS` deaths."""
        video = self.videos[task.video_id]
        task.attempts += 1
        if task.attempts >= CHUNK_ATTEMPTS:
            self.fail(video, RuntimeError(f"chunk {task.number} (windows {task.windows.start}-{task.windows.stop - 1})"
                                          f": its replica died {task.attempts} times (out of memory?): {exc}"))
        elif not video.failed:
            self.stats.retried_chunks += 1
            self.ready.appendleft((task, decoded))

    def done(self, video: _Video) -> None:
        parts = [video.parts[n] for n in range(video.chunks)]
        video.parts = {}
        try:
            self.finish(video.path, video.plan, parts, self.pool.experts)  # type: ignore[arg-type]
        except Exception as exc:
            self.fail(video, exc)
            return
        video.done = True
        self.remaining -= 1
        self.emit("video_done", video_id=video.path.stem)

    # -- the loop

    def run(self, paths: Sequence[Path]) -> None:
        for path in paths:
            video = _Video(Path(path))
            self.videos[video.path.stem] = video
            self.unprobed.append(video)
        self.remaining = len(self.videos)
        while self.remaining:
            self.feed()
            pending = [*self.probing, *self.pool.starting, *self.running]
            if not pending:
                break
            [ref], _ = self.ray.wait(pending, num_returns=1)
            if ref in self.probing:
                self.on_probed(ref, self.probing.pop(ref))
            elif ref in self.pool.starting:
                self.on_started(ref, self.pool.starting.pop(ref))
            else:
                self.on_answered(ref, *self.running.pop(ref))
        for ref, (slot, _, _) in self.running.items():  # chunks of failed videos: their replicas are busy
            slot.busy = ref
        left = [v for v in self.videos.values() if not (v.failed or v.done)]
        for video in left:  # nothing can run any more: every replica died past its restarts
            self.fail(video, RuntimeError(
                f"every replica died ({self.stats.deaths} deaths, {self.stats.restarts} restarts, at most "
                f"{RESTARTS_PER_REPLICA} per replica): the job stopped before this video (a rerun does it); "
                f"the last death: {self.last_death}"))


def _replicas(checkpoint: str | os.PathLike, options: DetectOptions, ray: bool | str, replicas: int | None,
              fingerprint: str | None) -> tuple[_Pool, str]:
    """Connect, plan the replicas for the cluster and get this process's pool of them
    (started, or kept from an earlier job), with the checkpoint's fingerprint."""
    from uprm.modeling.loading import model_fingerprint

    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError("a Ray job needs a checkpoint folder (every replica loads it from its path), not a model "
                        f"object ({type(checkpoint).__name__})")
    check_count("replicas", replicas)  # before connecting: a bad number fails at once
    address = ray_address(ray)
    path = str(Path(checkpoint).expanduser().resolve())
    fingerprint = fingerprint or model_fingerprint(path)
    ray_module = connect(address)
    nodes = [n for n in ray_module.nodes() if n.get("Alive")]
    resources = ray_module.cluster_resources()
    plan = plan_replicas(resources.get("CPU", 0), resources.get("GPU", 0), replicas, options.threads, options.device,
                         max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=None))
    return _pool(ray_module, plan, path, fingerprint, options), fingerprint


def _warm() -> None:
    """Nothing: a CPU task that makes a worker import this module (and decoding) ahead."""
    import uprm.data.video  # noqa: F401


def start_replicas(checkpoint: str | os.PathLike, options: DetectOptions | None = None, *, ray: bool | str = True,
                   replicas: int | None = None) -> ReplicaPlan:
    """Start the replicas of a Ray job with these settings without waiting for them (or
    keep those already up): they load the checkpoint while the caller does something else,
    and the next job of this process with the same checkpoint, options and ``replicas``
    (:func:`run_on_ray`, ``detect_files(..., ray=)``, ``uprm.detect(..., ray=)``) uses
    them. A CPU task per replica has decoding imported ahead too. Returns the plan."""
    pool, _ = _replicas(checkpoint, options or DetectOptions(), ray, replicas, None)
    warm = pool.ray.remote(num_cpus=0)(_warm)
    for _ in range(pool.replicas.count):
        warm.remote()
    return pool.replicas


def run_on_ray(paths: Sequence[str | os.PathLike], checkpoint: str | os.PathLike, options: DetectOptions,
               finish: Finish, *, ray: bool | str = True, replicas: int | None = None,
               chunk_windows: int | None = None, fingerprint: str | None = None,
               on_event: Callable[[RayEvent], None] | None = None,
               progress: bool = False) -> tuple[list[tuple[Path, BaseException]], RayStats]:
    """Run the detection of ``paths`` on Ray and call ``finish(path, plan, parts,
    experts)`` on the driver as each video's chunks are all answered (in time order:
    :func:`~uprm.detection.runner.merge_answers` merges them). Returns the videos that
    failed, each with its error, and the job's :class:`RayStats`. The replicas stay up
    for the next job of this process with the same checkpoint and plan (:func:`release`
    ends them)."""
    from tqdm.auto import tqdm

    check_count("chunk_windows", chunk_windows)
    pool, fingerprint = _replicas(checkpoint, options, ray, replicas, fingerprint)
    with tqdm(total=0, unit="window", desc="ray", disable=not progress, leave=False) as bar:
        job = _Job(pool, options, fingerprint, chunk_windows or CHUNK_WINDOWS, finish, on_event,
                   bar if progress else None)
        try:
            job.run([Path(p) for p in paths])
        except BaseException:  # a load error, an interrupt: the replicas go too
            release()
            raise
    return job.failures, job.stats


def run_job(job: Any, paths: Sequence[Path], report: Any, *, ray: bool | str, replicas: int | None = None,
            chunk_windows: int | None = None, on_event: Callable[[RayEvent], None] | None = None) -> RayStats:
    """``detect_files(..., ray=...)``: the videos ``paths`` of a
    :func:`~uprm.detection.detect_files` run (its ``_Job``: options, output folder,
    requested settings) detected on Ray; each video is written by the driver as a local
    run writes it, and recorded in ``report`` (done or failed)."""
    from uprm.detection.runner import merge_answers

    if not paths:
        return RayStats()
    kwargs = job.video_kwargs()
    kwargs.pop("batch_size")

    def finish(path: Path, plan: WindowPlan, parts: list[Any], experts: Mapping[str, Any]) -> None:
        job.write(path, lambda draw: merge_answers(path, plan, parts, batch_size=job.options.batch_size,
                                                   on_segment=draw, **kwargs), experts)
        report.done.append(path.stem)

    failures, stats = run_on_ray(paths, job.model_or_checkpoint, job.options, finish, ray=ray, replicas=replicas,
                                 chunk_windows=chunk_windows, fingerprint=job.requested["checkpoint"],
                                 on_event=on_event, progress=job.progress)
    for path, exc in failures:
        report.failed.append((str(path), describe(exc)))
        report.errors.append(exc)
    return stats


def detect_on_ray(video: str | os.PathLike, checkpoint: str | os.PathLike, options: DetectOptions, *,
                  ray: bool | str = True, replicas: int | None = None, chunk_windows: int | None = None,
                  progress: bool = False) -> Any:
    """``uprm.detect(video, checkpoint, ..., ray=...)``: one video's
    :class:`~uprm.detection.VideoDetection`, its chunks answered by the replicas of a
    Ray job (no files written, no evidence kept). Raises the video's error."""
    from uprm.detection.runner import merge_answers

    found: list[Any] = []
    opts = options.replace(evidence=False)
    kwargs = {**opts.video_kwargs(), "taxonomy": opts.taxonomy}
    kwargs.pop("batch_size")

    def finish(path: Path, plan: WindowPlan, parts: list[Any], experts: Mapping[str, Any]) -> None:
        found.append(merge_answers(path, plan, parts, batch_size=opts.batch_size, **kwargs))

    failures, _ = run_on_ray([video], checkpoint, opts, finish, ray=ray, replicas=replicas,
                             chunk_windows=chunk_windows, progress=progress)
    if failures:
        raise failures[0][1]
    return found[0]
