"""Atomic writes: all or nothing, with the usual file mode."""

import json
import os

import pytest

from uprm.utils import atomic_path, atomic_write_json, jsonable


def test_atomic_write_replaces_in_one_step_and_keeps_the_usual_mode(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_jsonable():
    from pathlib import Path

    assert jsonable({"p": Path("/x"), "t": (1, 2), "s": {2, 1}, "o": object()})["p"] == "/x"
    assert jsonable((1, {2})) == [1, [2]]


def test_file_sha256_is_the_content_digest_and_follows_changes(tmp_path):
    import hashlib

    from uprm.utils import file_sha256

    path = tmp_path / "w.pt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    os.utime(path, ns=(1, 1))
    path.write_bytes(b"abcd")  # new size and mtime: not served from the memo
    assert file_sha256(path) == hashlib.sha256(b"abcd").hexdigest()


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("start", [0.0, 0.1, 3600.0])  # a monotonic clock of a machine booted just now, or long ago
def test_a_throttle_lets_the_first_event_through_whatever_the_clock_reads(start):
    from uprm.utils import Throttle

    clock = _Clock(start)
    throttle = Throttle(10.0, clock=clock)
    assert throttle.ready() is True  # "never happened" — not "happened at the clock's zero"
    assert throttle.ready() is False
    clock.now = start + 9.99
    assert throttle.ready() is False
    assert throttle.ready(force=True) is True  # the last report of a job always goes through
    clock.now += 10.0
    assert throttle.ready() is True


def test_the_watcher_warns_of_skipped_windows_at_once_then_at_most_every_ten_seconds(caplog):
    import logging
    from types import SimpleNamespace

    from uprm.utils import Throttle
    from uprm.watch.watcher import Watcher

    clock = _Clock(1.0)  # a machine booted one second ago
    stats = SimpleNamespace(skipped=0)
    cam = SimpleNamespace(camera=SimpleNamespace(stats=stats, name="cam1"), skip_warning=Throttle(10.0, clock))
    with caplog.at_level(logging.WARNING, logger="uprm.watch"):
        Watcher._skipped(None, cam, 2)
        clock.now = 5.0
        Watcher._skipped(None, cam, 1)
        clock.now = 11.5
        Watcher._skipped(None, cam, 4)
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert warnings == ["camera cam1: inference is slower than real time: 2 window(s) skipped so far",
                        "camera cam1: inference is slower than real time: 7 window(s) skipped so far"]
