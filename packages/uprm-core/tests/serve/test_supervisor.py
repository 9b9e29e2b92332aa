"""The supervisor's restarts without processes or waiting: ``_spawn`` hands out fake
workers that exit with scripted statuses after scripted run times (on a fake clock),
and the pauses are recorded instead of slept. tests/serve/test_server.py kills a real
worker and sees it come back."""

from __future__ import annotations

import os

import pytest

from uprm.serve.supervisor import Supervisor
from uprm.serve.worker import EXIT_FATAL


class FakeWorker:
    def __init__(self, clock: list[float], code: int, runs_for: float) -> None:
        self.clock, self.code, self.runs_for = clock, code, runs_for
        self.stdin = None

    def wait(self, timeout: float | None = None) -> int:
        self.clock[0] += self.runs_for
        return self.code

    def poll(self) -> int:
        return self.code


class FakeStore:
    def __init__(self) -> None:
        self.meta: list[dict] = []

    def set_meta(self, key: str, value: dict) -> None:
        assert key == "worker"
        self.meta.append(value)


def supervise(script, sleep=None, max_delay=30.0):
    """Run the supervisor's loop in this thread over ``script``: ``(exit status, seconds
    it ran)`` per worker started. Returns the supervisor, the pauses and the workers."""
    clock, waits, started = [1000.0], [], []
    store = FakeStore()

    class Scripted(Supervisor):
        def _spawn(self):
            if len(started) == len(script):
                pytest.fail("a worker was started that the script does not expect")
            started.append(FakeWorker(clock, *script[len(started)]))
            return started[-1]

    def record(seconds):
        waits.append(seconds)
        clock[0] += seconds
        if sleep is not None:
            sleep(sup, seconds)

    sup = Scripted(None, store, max_delay, sleep=record, clock=lambda: clock[0])
    sup._loop()
    return sup, waits, started, store


def test_a_worker_that_keeps_dying_is_restarted_after_doubling_pauses(caplog):
    script = [(1, 0.5), (-9, 3.0), (1, 0.1), (1, 0.1), (1, 0.1), (1, 0.1), (EXIT_FATAL, 2.0)]
    with caplog.at_level("WARNING", logger="uprm.serve"):
        _, waits, started, store = supervise(script)
    assert waits == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0] and len(started) == 7  # capped at max_delay
    assert [m["exit_code"] for m in store.meta] == [1, -9, 1, 1, 1, 1]
    assert all(m["state"] == "restarting" and m["server"] == os.getpid() for m in store.meta)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["the worker exited with status 1; restarting it in 2 s",
                         "the worker exited with status -9; restarting it in 4 s"]
    assert lines[-1] == "the worker cannot load the model (see above); jobs stay queued until a restart"


def test_the_back_off_restarts_after_a_worker_that_ran_a_minute():
    script = [(1, 5.0), (1, 5.0), (1, 61.0), (1, 5.0), (1, 5.0), (EXIT_FATAL, 1.0)]
    _, waits, started, store = supervise(script, max_delay=10.0)
    assert waits == [2.0, 4.0, 1.0, 2.0, 4.0] and len(started) == 6
    assert [m["exit_code"] for m in store.meta] == [1] * 5


def test_a_worker_that_cannot_load_the_model_is_not_restarted(caplog):
    with caplog.at_level("ERROR", logger="uprm.serve"):
        _, waits, started, store = supervise([(EXIT_FATAL, 4.0)])
    assert waits == [] and len(started) == 1 and store.meta == []
    assert "cannot load the model" in caplog.text


def test_stopping_during_a_pause_starts_no_other_worker():
    _, waits, started, _ = supervise([(1, 0.5)], sleep=lambda sup, s: sup.stop(grace=1))
    assert waits == [2.0] and len(started) == 1


def test_stopping_ends_the_pause_at_once():
    """The default pause is a wait that ``stop`` ends (a real thread, a pause of an hour)."""
    import threading

    started = threading.Event()

    class Dying(Supervisor):
        def _spawn(self):
            started.set()
            return FakeWorker([0.0], 1, 0.0)

    sup = Dying(None, FakeStore(), max_delay=3600.0)
    sup._restarting = sup._restarting.copy(wait=lambda state: 3600.0)
    thread = threading.Thread(target=sup._loop)
    thread.start()
    assert started.wait(30)
    sup.stop(grace=1)
    thread.join(30)
    assert not thread.is_alive()
