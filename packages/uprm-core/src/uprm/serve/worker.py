"""The worker: one process that holds the model and runs the jobs, oldest first.

Started by the server (:mod:`uprm.serve.supervisor`) as ``python -m uprm.serve.worker
DATA/serve.json SERVER_PID [--slot K] [--remote]`` — one per ``--workers`` slot, or by
``uprm serve-worker`` on another host (``--remote``). It

1. dies with the server (Linux ``PR_SET_PDEATHSIG``; elsewhere it notices between
   batches), so a SIGKILLed server never leaves a worker behind;
2. takes its slot's lock in the data folder (``DATA/worker.lock``, ``worker-K.lock``:
   ``flock``), so a restarted server's worker waits until the old one of its slot is
   gone (workers of ``uprm serve-worker`` take none: they share the folder with other
   hosts);
3. puts the jobs of dead workers back in the queue (:meth:`~uprm.serve.store.Store.recover`:
   a worker of this machine whose process is gone, or a lease that expired), at its start
   and between jobs, so a live sibling takes over a killed worker's job;
4. publishes the installed experts, loads the model once (with ``--workers N`` on GPUs:
   slot K on ``cuda:K``; on CPUs the torch threads split between the workers), says it
   is ready;
5. between jobs, loads the checkpoint chosen through ``POST /v1/model`` if another was
   chosen (:mod:`uprm.serve.models`: a running job finishes on its model);
6. claims the oldest queued job, renews its lease from a heartbeat thread while it runs
   :func:`uprm.detection.detect_video` on it, writes what ``uprm detect`` writes
   (``DATA/results/<job>/<video_id>.json``, the timeline and evidence sheets) and marks
   the job done or failed; waits on its stdin for the next job (the server writes a byte
   per accepted job; end of file means the server is gone; a remote worker polls).

Media must resolve on every worker: an upload is read from this worker's own
``DATA/uploads`` and a path job under its own ``--media-root``; a file that is not there
fails the job with ``media_not_found``, naming the file and this host.

Progress: ``detect_video`` calls back after each batch of windows
(``on_progress``); :class:`Progress` writes ``(windows done, windows)`` to the store at
most every quarter second (the first and the last report always) and stops the job when
the server process is gone.

The worker's state in the store (``starting``, ``loading``, ``ready``, ``failed``) carries
its pid and its server's pid: the API reports readiness only for a live worker of the
running server, never what a worker of an earlier server wrote.

SIGTERM or Ctrl-C while a job runs puts it back in the queue without counting the
attempt; any other death of the worker counts one, and a job whose runs killed the
worker ``max_attempts`` times fails.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import logging
import os
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from uprm.serve.config import ServeConfig
from uprm.serve.store import Job, Store, worker_id

__all__ = ["EXIT_FATAL", "Progress", "Stop", "main", "safe_video_id"]

#: the worker's exit status when the model cannot be loaded (the server does not restart it)
EXIT_FATAL = 3
PR_SET_PDEATHSIG = 1
log = logging.getLogger("uprm.serve.worker")


class Stop(BaseException):  # a signal to unwind, like KeyboardInterrupt
    """The worker was asked to stop (SIGTERM) or lost its server."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def safe_video_id(name: str) -> str:
    """A file-name-safe video id from a video's name (``shop cam 1.mp4`` → ``shop_cam_1``)."""
    stem = Path(name.replace("\\", "/")).stem
    return re.sub(r"[^\w.-]+", "_", stem).strip("._")[:100] or "video"


class Lost(Exception):
    """The job's lease expired and the job went to another worker: this run is dropped."""


class Progress:
    """The ``on_progress`` callback of a job: reports ``(windows done)`` through
    ``report`` at most every ``every`` seconds of ``clock`` (the first report and the last
    window always), raises :class:`Stop` when the server process ``parent`` is gone and
    calls ``check`` (which raises :class:`Lost` when the job is no longer this worker's)."""

    def __init__(self, total: int, report: Callable[[int], None], parent: int | None = None,
                 every: float = 0.25, clock: Callable[[], float] | None = None,
                 check: Callable[[], None] | None = None) -> None:
        from uprm.utils import Throttle

        self.total, self.report, self.parent, self.check = total, report, parent, check
        self.throttle = Throttle(every, clock)
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if self.parent is not None and os.getppid() != self.parent:
            raise Stop("the server is gone")
        if self.check is not None:
            self.check()
        if self.throttle.ready(force=done >= self.total):
            self.report(min(done, self.total))


def experts_report() -> dict[str, Any]:
    """What ``uprm experts --json`` prints: the installed experts and broken plugins."""
    from uprm.errors import DuplicateExpertError
    from uprm.plugins.manager import get_plugin_host

    host = get_plugin_host()
    try:
        infos = host.experts()
    except DuplicateExpertError as exc:
        return {"experts": [], "broken": [], "error": str(exc)}
    return {
        "experts": [{"name": i.name, "granularity": i.granularity, "distribution": i.distribution,
                     "version": i.version, "plugin": i.plugin, "class": f"{i.cls.__module__}.{i.cls.__qualname__}"}
                    for i in infos.values()],
        "broken": [{"plugin": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
                   for p in host.broken()],
    }


def state_key(slot: int = 0, remote: bool = False) -> str:
    """The meta key of a worker's state: ``worker`` (the first slot of ``uprm serve``),
    ``worker.K``, or ``worker@HOST.K`` for ``uprm serve-worker``'s."""
    if remote:
        return f"worker@{socket.gethostname()}.{slot}"
    return "worker" if slot == 0 else f"worker.{slot}"


class Heartbeat:
    """A daemon thread that renews the lease of the worker's current job every quarter
    lease; when a renewal finds the job gone to another worker it marks it lost."""

    def __init__(self, store: Store, worker: str, lease: float) -> None:
        self.store, self.worker, self.lease = store, worker, lease
        self.job: str | None = None
        self.lost: str | None = None
        self._wake = threading.Event()
        threading.Thread(target=self._loop, name="uprm-worker-lease", daemon=True).start()

    def hold(self, job_id: str | None) -> None:
        self.job, self.lost = job_id, None

    def stop(self) -> None:
        self._wake.set()

    def check(self) -> None:
        if self.lost is not None and self.lost == self.job:
            raise Lost(f"job {self.lost} went to another worker (this worker's lease expired)")

    def _loop(self) -> None:
        while not self._wake.wait(self.lease / 4):
            job = self.job
            if job is None:
                continue
            try:
                if not self.store.renew(job, self.worker, self.lease):
                    self.lost = job
            except Exception as exc:  # the store is unreachable for a moment: try again
                log.warning("cannot renew the lease of job %s: %s", job, exc)


class Worker:
    """The worker's loop over the jobs of one store.

    Args:
        slot: this worker's number among ``workers`` on this host (its GPU, its state key).
        workers: how many workers this host runs (they split the CPU threads).
        key: the meta key of its state (:func:`state_key`).
    """

    def __init__(self, config: ServeConfig, store: Store, parent: int | None,
                 wake_fd: int | None = None, *, slot: int = 0, workers: int | None = None,
                 key: str = "worker") -> None:
        self.config, self.store, self.parent, self.wake_fd = config, store, parent, wake_fd
        self.slot, self.workers, self.key = slot, workers or (config.workers if config else 1), key
        self.id = worker_id()
        self.heartbeat: Heartbeat | None = None
        self.model: Any = None
        self.fingerprint: str | None = None
        self.checkpoint: str | None = None

    def _state(self, state: str, **extra: Any) -> None:
        """The worker's state for ``/healthz``, tied to this process and its server."""
        self.store.set_meta(self.key, {"state": state, "since": time.time(), "pid": os.getpid(),
                                       "server": self.parent, "host": socket.gethostname(), **extra})

    def _recover(self) -> None:
        for job_id in self.store.recover():
            log.warning("job %s was running on a worker that stopped: queued again", job_id)

    def serve(self) -> int:
        self._state("starting")
        self._recover()
        self.heartbeat = Heartbeat(self.store, self.id, self.config.lease)
        self.store.set_meta("experts", experts_report())
        self._state("loading")
        try:
            self._load_first()
        except Exception as exc:  # a bad checkpoint: said once, not retried for ever
            log.exception("cannot load the checkpoint %s", self.config.checkpoint)
            self._state("failed", error=f"{type(exc).__name__}: {exc}")
            return EXIT_FATAL
        self._state("ready")
        while True:
            self.switch()  # between jobs only: a running job finishes on the model it started with
            self._recover()
            job = self.store.claim(self.config.max_attempts, worker=self.id, lease=self.config.lease)
            if job is not None:
                self.run(job)
            elif not self._wait():
                return 0

    def _load_first(self) -> None:
        """The checkpoint chosen through ``POST /v1/model`` (:mod:`uprm.serve.models`), or
        ``--checkpoint``; a chosen one that does not load is reported and ``--checkpoint``
        runs instead."""
        from uprm.serve.models import wanted_checkpoint

        wanted = wanted_checkpoint(self.store, self.config)
        if wanted == self.config.checkpoint or not self._switch_to(wanted):
            self._load(self.config.checkpoint)

    def switch(self) -> None:
        """Load the checkpoint chosen since the last job, if another was chosen."""
        from uprm.serve.models import wanted_checkpoint

        wanted = wanted_checkpoint(self.store, self.config)
        if wanted != self.checkpoint:
            self._switch_to(wanted)

    def _switch_to(self, path: str) -> bool:
        """Load ``path`` in place of the running model; on failure keep the old model,
        forget the choice (so it is not retried for ever) and say why in ``GET /v1/model``."""
        from uprm.serve.models import CHOICE, SWITCH, checkpoint_name

        name = checkpoint_name(self.config, path)
        log.info("switching the model to %s", name)
        try:
            self._load(path)
        except Exception as exc:
            log.exception("cannot load the checkpoint %s; keeping the model that runs", path)
            error = f"{type(exc).__name__}: {exc}".replace(str(Path(path).resolve()), name).replace(path, name)
            self.store.set_meta(SWITCH, {"state": "failed", "checkpoint": name, "error": error, "at": time.time()})
            choice = self.store.get_meta(CHOICE)
            if isinstance(choice, dict) and choice.get("checkpoint") == path:  # not a newer choice
                self.store.set_meta(CHOICE, {**choice, "checkpoint": self.checkpoint or self.config.checkpoint})
            return False
        self.store.set_meta(SWITCH, {"state": "done", "checkpoint": name, "fingerprint": self.fingerprint,
                                     "at": time.time()})
        return True

    def _load(self, checkpoint: str) -> None:
        import torch

        from uprm.modeling.loading import load_model
        from uprm.serve.models import checkpoint_name

        cfg = self.config
        loaded = load_model(checkpoint, device=self._device(), threads=self._threads(),
                            expert_options=cfg.expert_options or None)
        self.model, self.fingerprint, self.checkpoint = loaded.model, loaded.fingerprint, checkpoint
        mcfg = self.model.config
        self.store.set_meta("model", {"experts": list(mcfg.expert_names or []), "router": mcfg.router,
                                      "num_frames": mcfg.num_frames, "device": loaded.device,
                                      "threads": torch.get_num_threads(), "fingerprint": loaded.fingerprint,
                                      "checkpoint": checkpoint_name(cfg, checkpoint), "since": time.time()})

    def _device(self) -> str:
        """``--device``; with several workers and ``auto``, slot K's own GPU (``cuda:K``,
        modulo the GPUs), or the CPU."""
        device = self.config.device
        if device != "auto" or self.workers == 1:
            return device
        import torch

        if not torch.cuda.is_available():
            return "cpu"
        return f"cuda:{self.slot % max(1, torch.cuda.device_count())}"

    def _threads(self) -> int | None:
        """``--threads``; by default, with several workers, this host's cores split between them."""
        if self.config.threads is not None or self.workers == 1:
            return self.config.threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // self.workers)

    def _wait(self, timeout: float = 1.0) -> bool:
        """Wait for a wake-up byte; ``False`` when the server is gone (end of file)."""
        if self.parent is not None and os.getppid() != self.parent:
            return False
        if self.wake_fd is None:
            time.sleep(min(timeout, 0.2))
            return True
        ready, _, _ = select.select([self.wake_fd], [], [], timeout)
        return not ready or bool(os.read(self.wake_fd, 4096))

    def run(self, job: Job) -> None:
        log.info("job %s: %s", job.id, job.name)
        if self.heartbeat is not None:
            self.heartbeat.hold(job.id)
        try:
            result = self._detect(job)
        except (Stop, KeyboardInterrupt):
            self.store.release(job.id, worker=self.id)
            raise
        except Lost as exc:
            log.warning("%s; its run here is dropped", exc)
        except Exception as exc:
            code, message = self._describe(job, exc)
            self.store.fail(job.id, code, message, worker=self.id)
        else:
            if self.store.finish(job.id, result, self.fingerprint, worker=self.id):
                log.info("job %s done", job.id)
            else:
                log.warning("job %s went to another worker (this worker's lease expired); its result here is "
                            "dropped", job.id)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.hold(None)
            # A job leaves a few thousand objects in reference cycles (the matplotlib figures of
            # the timeline and sheets); with ~0.5 M long-lived objects the generational collector
            # reaches them rarely, so the worker grew ~1 MB per job (benchmarks/soak.md, finding 6).
            gc.collect()

    def _describe(self, job: Job, exc: Exception) -> tuple[str, str]:
        """A stable code and a message without server paths or tracebacks."""
        from uprm.detection import PerceptionError
        from uprm.errors import UPRMError, VideoError
        from uprm.serve.errors import ApiError

        if isinstance(exc, ApiError):  # the path job's file left the media root or vanished
            return exc.code, exc.detail
        if isinstance(exc, (UPRMError, ValueError, OSError)):
            code = ("video_error" if isinstance(exc, VideoError) else
                    "perception_error" if isinstance(exc, PerceptionError) else "detection_error")
            log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
            message = f"{type(exc).__name__}: {exc}".replace(job.video, job.name)
            return code, message.replace(self.config.data_dir, "<data>")
        incident = secrets.token_hex(6)
        log.error("job %s failed (incident %s)", job.id, incident, exc_info=exc)
        return "internal_error", f"an internal error stopped the job (incident {incident}; see the server log)"

    def _detect(self, job: Job) -> str:
        from uprm.data import probe_video
        from uprm.detection import detect_video, plan_windows, render_evidence, write_video_outputs

        path = self._video_path(job)
        cfg, model = self.config, self.model
        out, vid, sheets = cfg.results_dir / job.id, safe_video_id(job.name), {}
        total = len(plan_windows(probe_video(path).duration, cfg.window, cfg.stride, model.config.num_frames))
        self.store.set_progress(job.id, 0, total, worker=self.id)

        def draw(n: int, segment: Any, evidence: Any) -> None:
            render_evidence(out / vid / f"{n}.png", segment, evidence, dict(model.block.experts), vid, n)
            sheets[n] = f"{vid}/{n}.png"

        progress = Progress(total, lambda done: self.store.set_progress(job.id, done, total, worker=self.id),
                            self.parent, check=self.heartbeat.check if self.heartbeat is not None else None)
        detection = detect_video(path, model, on_segment=draw if cfg.evidence else None, on_progress=progress,
                                 **cfg.video_kwargs())
        detection.video, detection.video_id = job.name, vid
        write_video_outputs(out, detection, {**cfg.requested(), "checkpoint": self.fingerprint}, sheets, "serve")
        return vid

    def _video_path(self, job: Job) -> Path:
        """The job's file as this worker sees it: an upload in this worker's data folder;
        a path job resolved under this worker's media root again (a symlink may have been
        swapped in since it was accepted), by its name relative to it. A file that is not
        here fails the job naming the file and this host (``media_not_found``)."""
        from uprm.serve.errors import ApiError

        host = socket.gethostname()
        where = ("every worker needs the uploads and the media root at its --data-dir and --media-root: a "
                 "shared folder, see docs/serve.md")
        if job.source == "path":
            from uprm.serve.media import resolve_media_path

            try:
                return resolve_media_path(self.config.media_root, job.name)
            except ApiError as exc:
                if exc.code not in ("media_not_found", "media_root_disabled"):
                    raise
                raise ApiError(404, "media_not_found", f"{exc.detail} on host {host} ({where})") from None
        path = self.config.uploads_dir / Path(job.video).name
        if not path.is_file():
            raise ApiError(404, "media_not_found", f"the upload {job.name!r} (<data>/uploads/{path.name}) is not "
                                                   f"on host {host} ({where})")
        return path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (waiting for it), released at exit or death."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _die_with(parent: int) -> None:
    """Get SIGTERM when the server process dies (Linux); the loop checks ``getppid`` too."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the server died before prctl took effect
        raise SystemExit(0)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m uprm.serve.worker")
    parser.add_argument("config", type=Path, help="the settings (serve.json)")
    parser.add_argument("parent", type=int, nargs="?", default=None, help="the server's pid (die with it)")
    parser.add_argument("--slot", type=int, default=0, help="this worker's number on this host")
    parser.add_argument("--remote", action="store_true", help="a worker of uprm serve-worker (no data-folder lock)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    config = ServeConfig.from_json(args.config.read_text(encoding="utf-8"))
    parent = args.parent
    logging.basicConfig(level=logging.INFO, format="%(asctime)s uprm-worker[%(process)d] %(levelname)s %(message)s")
    if parent is not None:
        _die_with(parent)
    signal.signal(signal.SIGTERM, _raise_stop)
    from uprm.offline import configure_offline

    configure_offline()
    store = config.open_store()
    lock = contextlib.nullcontext() if args.remote else \
        exclusive(config.root / ("worker.lock" if args.slot == 0 else f"worker-{args.slot}.lock"))
    try:
        with lock:
            return Worker(config, store, parent, sys.stdin.fileno() if parent is not None else None, slot=args.slot,
                          key=state_key(args.slot, args.remote)).serve()
    except (Stop, KeyboardInterrupt):
        log.info("stopped")
        return 0
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
