"""Keeping the worker processes alive beside the API (threads of the server process), or
on a host of ``uprm serve-worker`` (:class:`WorkerPool`: one :class:`Supervisor` per
``--workers`` slot).

The worker runs in its own process so the API stays light and responsive (it never
imports torch) and a crash while decoding or inferring cannot take the API down. The
supervisor starts it, wakes it when a job is accepted (a byte on its stdin), restarts it
when it dies — after 2 s, doubling up to ``max_delay`` (30 s) while it keeps dying
within a minute (tenacity's ``wait_exponential``), after 1 s and a fresh back-off when
it had run longer — and leaves it down when it could not load the model
(:data:`uprm.serve.worker.EXIT_FATAL`). Stopping closes the worker's stdin and sends
SIGTERM: a running job goes back to the queue. A worker killed while the others run is
restarted the same way; meanwhile a live sibling puts its job back in the queue and runs
it (:meth:`uprm.serve.store.Store.recover`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_never, wait_exponential

from uprm.serve.config import STORE_ENV, ServeConfig
from uprm.serve.store import Store

__all__ = ["Supervisor", "WorkerPool"]

log = logging.getLogger("uprm.serve")


#: a worker that ran this long (seconds) before it died is restarted after RESET_DELAY, with a fresh back-off
STEADY = 60.0
RESET_DELAY = 1.0
#: the first pause after a worker that died sooner (doubling, at most ``max_delay``)
FIRST_DELAY = 2.0


class _Died(Exception):
    """The worker died within :data:`STEADY` seconds of its start."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the worker exited with status {code}")
        self.code = code


class _CannotLoad(Exception):
    """The worker exited with :data:`~uprm.serve.worker.EXIT_FATAL`: it cannot load the model."""


class Supervisor:
    """Starts, wakes, restarts and stops the worker of ``config``.

    Args:
        max_delay: the longest pause before a restart (seconds).
        sleep: how the supervisor's thread pauses before a restart (tests pass one that
            records the pauses); by default a wait that :meth:`stop` cuts short.
        clock: monotonic seconds, to tell how long a worker ran (tests pass their own).
        slot: the worker's number on this host (``--workers``); ``remote``: a worker of
            ``uprm serve-worker``; ``config_file``: where its settings are (default
            ``DATA/serve.json``); ``key``: the meta key of its state; ``label``: its name
            in the log.
    """

    def __init__(self, config: ServeConfig, store: Store, max_delay: float = 30.0, *,
                 sleep: Callable[[float], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 slot: int = 0, remote: bool = False, config_file: Path | None = None, key: str = "worker",
                 label: str = "the worker") -> None:
        self.config, self.store, self.max_delay = config, store, max_delay
        self.slot, self.remote, self.config_file, self.key, self.label = slot, remote, config_file, key, label
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sleep = sleep or self._stop.wait
        self._clock = clock
        self._restarting = Retrying(
            stop=stop_never, wait=wait_exponential(multiplier=FIRST_DELAY, max=max_delay),
            retry=retry_if_exception_type(_Died), sleep=self._sleep, before_sleep=self._before_restart, reraise=True)

    def start(self) -> None:
        if self.config_file is None:
            self.config_file = self.config.write()
        self._thread = threading.Thread(target=self._loop, name="uprm-worker-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        # called from the supervisor's thread, which lives as long as the worker (it waits on
        # it): the worker's PR_SET_PDEATHSIG fires when the *thread* that started it ends
        from uprm.serve.worker import __name__ as module

        cmd = [sys.executable, "-m", module, str(self.config_file), str(os.getpid())]
        cmd += ["--slot", str(self.slot)] * (self.slot > 0 or self.remote) + ["--remote"] * self.remote
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.config.store is not None:  # whole, password included: never written to serve.json
            env[STORE_ENV] = self.config.store
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env)

    def _loop(self) -> None:
        while True:
            try:
                code = self._restarting(self._run_worker)
            except _CannotLoad:
                log.error("%s cannot load the model (see above); jobs stay queued until a restart", self.label)
                return
            if code is None:  # stopping
                return
            self._restart_in(code, RESET_DELAY)  # it ran STEADY s: a fresh back-off
            self._sleep(RESET_DELAY)

    def _run_worker(self) -> int | None:
        """Start the worker and wait for it. The exit status of a worker that ran
        :data:`STEADY` seconds, ``None`` when stopping; :class:`_Died` when it died sooner,
        :class:`_CannotLoad` when it could not load the model."""
        from uprm.serve.worker import EXIT_FATAL

        began = self._clock()
        with self._lock:
            if self._stop.is_set():
                return None
            self.proc = self._spawn()
        code = self.proc.wait()
        if self._stop.is_set():
            return None
        if code == EXIT_FATAL:
            raise _CannotLoad
        if self._clock() - began > STEADY:
            return code
        raise _Died(code)

    def _before_restart(self, state: RetryCallState) -> None:
        died = state.outcome.exception() if state.outcome else None
        self._restart_in(died.code if isinstance(died, _Died) else None, state.upcoming_sleep)

    def _restart_in(self, code: int | None, delay: float) -> None:
        log.warning("%s exited with status %s; restarting it in %.0f s", self.label, code, delay)
        self.store.set_meta(self.key, {"state": "restarting", "since": time.time(), "exit_code": code,
                                       "server": os.getpid()})  # this server's (uprm.serve.app.live_worker_state)

    def wake(self) -> None:
        """Tell the worker a job is waiting (ignored when it is down: it looks at start)."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.stdin is None or proc.poll() is not None:
                return
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(b"\n")
                proc.stdin.flush()

    def signal_stop(self) -> None:
        """Start stopping: no restart, the worker's stdin closed and SIGTERM sent."""
        self._stop.set()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
            proc.terminate()

    def stop(self, grace: float = 10.0) -> None:
        self.signal_stop()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(grace)


class WorkerPool:
    """``config.workers`` supervised workers on this host (``uprm serve --workers N``, or
    ``uprm serve-worker``, whose workers are ``remote``: no data-folder locks, their
    settings in a private temporary file rather than the shared ``DATA/serve.json``)."""

    def __init__(self, config: ServeConfig, store: Store, *, remote: bool = False) -> None:
        from uprm.serve.worker import state_key

        self.config, self.store, self.remote = config, store, remote
        self._folder: Path | None = None
        config_file = None
        if remote:
            self._folder = Path(tempfile.mkdtemp(prefix="uprm-serve-worker-"))
            config_file = self._folder / "serve.json"
            config_file.write_text(config.to_json(), encoding="utf-8")
        count = config.workers
        self.supervisors = [
            Supervisor(config, store, slot=slot, remote=remote, config_file=config_file, key=state_key(slot, remote),
                       label="the worker" if count == 1 else f"worker {slot}")
            for slot in range(count)]

    def start(self) -> None:
        for supervisor in self.supervisors:
            supervisor.start()

    def wake(self) -> None:
        """Tell every worker a job is waiting (a busy one looks when its job ends)."""
        for supervisor in self.supervisors:
            supervisor.wake()

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.supervisors if s.proc is not None and s.proc.poll() is None]

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every supervisor has ended (its worker cannot load the model, or
        :meth:`stop`); whether they all have."""
        for supervisor in self.supervisors:
            if supervisor._thread is not None:
                supervisor._thread.join(timeout)
        return not any(s._thread is not None and s._thread.is_alive() for s in self.supervisors)

    def stop(self, grace: float = 10.0) -> None:
        """Stop every worker at once (their running jobs go back to the queue)."""
        for supervisor in self.supervisors:
            supervisor.signal_stop()
        for supervisor in self.supervisors:
            supervisor.stop(grace)
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
