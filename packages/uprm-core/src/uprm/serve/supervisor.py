"""Keeping one worker process alive beside the API (a thread of the server process).

The worker runs in its own process so the API stays light and responsive (it never
imports torch) and a crash while decoding or inferring cannot take the API down. The
supervisor starts it, wakes it when a job is accepted (a byte on its stdin), restarts it
with a growing pause when it dies, and leaves it down when it could not load the model
(:data:`uprm.serve.worker.EXIT_FATAL`). Stopping closes the worker's stdin and sends
SIGTERM: a running job goes back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time

from uprm.serve.config import ServeConfig
from uprm.serve.store import JobStore

__all__ = ["Supervisor"]

log = logging.getLogger("uprm.serve")


class Supervisor:
    """Starts, wakes, restarts and stops the worker of ``config``."""

    def __init__(self, config: ServeConfig, store: JobStore, max_delay: float = 30.0) -> None:
        self.config, self.store, self.max_delay = config, store, max_delay
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.config.write()
        self._thread = threading.Thread(target=self._loop, name="uprm-worker-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        # called from the supervisor's thread, which lives as long as the worker (it waits on
        # it): the worker's PR_SET_PDEATHSIG fires when the *thread* that started it ends
        from uprm.serve.worker import __name__ as module

        cmd = [sys.executable, "-m", module, str(self.config.root / "serve.json"), str(os.getpid())]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def _loop(self) -> None:
        from uprm.serve.worker import EXIT_FATAL

        delay = 1.0
        while not self._stop.is_set():
            began = time.monotonic()
            with self._lock:
                if self._stop.is_set():
                    return
                self.proc = self._spawn()
            code = self.proc.wait()
            if self._stop.is_set():
                return
            if code == EXIT_FATAL:
                log.error("the worker cannot load the model (see above); jobs stay queued until a restart")
                return
            delay = 1.0 if time.monotonic() - began > 60 else min(self.max_delay, delay * 2)
            log.warning("the worker exited with status %s; restarting it in %.0f s", code, delay)
            self.store.set_meta("worker", {"state": "restarting", "since": time.time(), "exit_code": code})
            self._stop.wait(delay)

    def wake(self) -> None:
        """Tell the worker a job is waiting (ignored when it is down: it looks at start)."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.stdin is None or proc.poll() is not None:
                return
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(b"\n")
                proc.stdin.flush()

    def stop(self, grace: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(grace)
