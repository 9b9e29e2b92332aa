"""The worker: one process that holds the model and runs the jobs, oldest first.

Started by the server (:mod:`uprm.serve.supervisor`) as ``python -m uprm.serve.worker
DATA/serve.json SERVER_PID``. It

1. dies with the server (Linux ``PR_SET_PDEATHSIG``; elsewhere it notices between
   batches), so a SIGKILLed server never leaves a worker behind;
2. takes ``DATA/worker.lock`` (``flock``), so two workers never share a data folder —
   a restarted server's worker waits until the old one is gone — and only then puts the
   jobs a dead worker left ``running`` back in the queue;
3. publishes the installed experts, loads the model once, says it is ready;
4. between jobs, loads the checkpoint chosen through ``POST /v1/model`` if another was
   chosen (:mod:`uprm.serve.models`: a running job finishes on its model);
5. claims the oldest queued job, runs :func:`uprm.detection.detect_video` on it, writes
   what ``uprm detect`` writes (``DATA/results/<job>/<video_id>.json``, the timeline and
   evidence sheets) and marks the job done or failed; waits on its stdin for the next
   job (the server writes a byte per accepted job; end of file means the server is gone).

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

import contextlib
import fcntl
import logging
import os
import re
import secrets
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from uprm.serve.config import ServeConfig
from uprm.serve.store import Job, JobStore

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


class Progress:
    """The ``on_progress`` callback of a job: reports ``(windows done)`` through
    ``report`` at most every ``every`` seconds of ``clock`` (the first report and the last
    window always), and raises :class:`Stop` when the server process ``parent`` is gone."""

    def __init__(self, total: int, report: Callable[[int], None], parent: int | None = None,
                 every: float = 0.25, clock: Callable[[], float] | None = None) -> None:
        from uprm.utils import Throttle

        self.total, self.report, self.parent = total, report, parent
        self.throttle = Throttle(every, clock)
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if self.parent is not None and os.getppid() != self.parent:
            raise Stop("the server is gone")
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


class Worker:
    """The worker's loop over the jobs of one data folder."""

    def __init__(self, config: ServeConfig, store: JobStore, parent: int | None,
                 wake_fd: int | None = None) -> None:
        self.config, self.store, self.parent, self.wake_fd = config, store, parent, wake_fd
        self.model: Any = None
        self.fingerprint: str | None = None
        self.checkpoint: str | None = None

    def _state(self, state: str, **extra: Any) -> None:
        """The worker's state for ``/healthz``, tied to this process and its server."""
        self.store.set_meta("worker", {"state": state, "since": time.time(), "pid": os.getpid(),
                                       "server": self.parent, **extra})

    def serve(self) -> int:
        self._state("starting")
        for job_id in self.store.requeue_running():
            log.warning("job %s was running when the last worker stopped: queued again", job_id)
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
            job = self.store.claim(self.config.max_attempts)
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
        loaded = load_model(checkpoint, device=cfg.device, threads=cfg.threads,
                            expert_options=cfg.expert_options or None)
        self.model, self.fingerprint, self.checkpoint = loaded.model, loaded.fingerprint, checkpoint
        mcfg = self.model.config
        self.store.set_meta("model", {"experts": list(mcfg.expert_names or []), "router": mcfg.router,
                                      "num_frames": mcfg.num_frames, "device": loaded.device,
                                      "threads": torch.get_num_threads(), "fingerprint": loaded.fingerprint,
                                      "checkpoint": checkpoint_name(cfg, checkpoint), "since": time.time()})

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
        try:
            result = self._detect(job)
        except (Stop, KeyboardInterrupt):
            self.store.release(job.id)
            raise
        except Exception as exc:
            code, message = self._describe(job, exc)
            self.store.fail(job.id, code, message)
        else:
            self.store.finish(job.id, result, self.fingerprint)
            log.info("job %s done", job.id)

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
        self.store.set_progress(job.id, 0, total)

        def draw(n: int, segment: Any, evidence: Any) -> None:
            render_evidence(out / vid / f"{n}.png", segment, evidence, dict(model.block.experts), vid, n)
            sheets[n] = f"{vid}/{n}.png"

        progress = Progress(total, lambda done: self.store.set_progress(job.id, done, total), self.parent)
        detection = detect_video(path, model, on_segment=draw if cfg.evidence else None, on_progress=progress,
                                 **cfg.video_kwargs())
        detection.video, detection.video_id = job.name, vid
        write_video_outputs(out, detection, {**cfg.requested(), "checkpoint": self.fingerprint}, sheets, "serve")
        return vid

    def _video_path(self, job: Job) -> Path:
        """The job's file; a path job is resolved under the media root again (a symlink
        may have been swapped in since it was accepted), by its name relative to it."""
        if job.source == "path":
            from uprm.serve.media import resolve_media_path

            return resolve_media_path(self.config.media_root, job.name)
        return Path(job.video)


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = ServeConfig.from_json(Path(args[0]).read_text(encoding="utf-8"))
    parent = int(args[1]) if len(args) > 1 else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s uprm-worker[%(process)d] %(levelname)s %(message)s")
    if parent is not None:
        _die_with(parent)
    signal.signal(signal.SIGTERM, _raise_stop)
    from uprm.offline import configure_offline

    configure_offline()
    store = JobStore(config.db_path)
    try:
        with exclusive(config.root / "worker.lock"):
            return Worker(config, store, parent, sys.stdin.fileno() if parent is not None else None).serve()
    except (Stop, KeyboardInterrupt):
        log.info("stopped")
        return 0
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
