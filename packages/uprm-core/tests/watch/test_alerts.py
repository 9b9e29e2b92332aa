"""Alert sinks: the JSONL log (whole lines, fsync per record), the webhook sender
(delivery, retries with back-off, no retry on a client error, a dead receiver never
blocks, the queue is bounded, draining at close) and event clips (pre/post-roll)."""

from __future__ import annotations

import json
import os
import socket
import threading

import numpy as np
import pytest

from uprm.watch.alerts import AlertLog, WebhookSender, alert_record, read_alerts
from uprm.watch.clips import ClipRecorder
from uprm.watch.events import EventTracker, WindowScore
from uprm.watch.frames import Frame
from uprm.watch.shards import host_name


def _event(reason=None):
    tracker = EventTracker("cam1", threshold=0.5, cooldown=0.0)
    tracker.update(WindowScore(10.0, 14.0, 0.9, "a fight", {"pose": 0.7, "coarse": 0.3}, start_wall=1767225610.0,
                               end_wall=1767225614.0, newest_wall=1767225614.0))
    if reason:
        return tracker.finish(reason, 20.0)[0][1]
    return tracker.current


def test_records_of_open_and_close():
    opened = alert_record("open", _event(), source="udp://127.0.0.1:5000", written_at=1767225614.5, latency=0.5,
                          host="watch-1", shard="2/3")
    assert opened == {
        "type": "open", "id": "cam1-20260101T000010Z-1", "camera": "cam1", "source": "udp://127.0.0.1:5000",
        "number": 1, "start": 10.0, "end": 14.0, "start_wall": "2026-01-01T00:00:10.000+00:00",
        "end_wall": "2026-01-01T00:00:14.000+00:00", "score": 0.9, "cause": "a fight",
        "category": None, "severity": None,  # "a fight" is no cause phrasing of UCF-Crime's categories
        "expert_weights": {"pose": 0.7, "coarse": 0.3}, "windows": 1,
        "written_at": "2026-01-01T00:00:14.500+00:00", "host": "watch-1", "shard": "2/3", "latency_s": 0.5}
    closed = alert_record("close", _event("shutdown"), source="x", written_at=1767225620.0, clip="clips/a.mp4")
    assert closed["reason"] == "shutdown" and closed["duration"] == 4.0 and closed["clip"] == "clips/a.mp4"
    assert "latency_s" not in closed
    # by default: this machine (or $UPRM_HOST_NAME), the one shard of one
    assert (closed["host"], closed["shard"]) == (host_name(), "1/1")


def test_the_host_name_comes_from_the_option_the_environment_or_the_machine(monkeypatch):
    monkeypatch.delenv("UPRM_HOST_NAME", raising=False)
    assert host_name() == socket.gethostname()
    monkeypatch.setenv("UPRM_HOST_NAME", "watch-2")
    assert host_name() == "watch-2" and host_name("gate-box") == "gate-box"
    assert alert_record("open", _event(), source="x", written_at=1.0)["host"] == "watch-2"


def test_a_record_has_the_severity_of_its_causes_category():
    from uprm.taxonomy import parse_taxonomy

    site = parse_taxonomy("categories:\n  - {name: Brawl, description: People fight., severity: critical,\n"
                          "     causes: [a fight]}\n", "site.yaml")
    record = alert_record("open", _event(), source="x", written_at=1767225614.5, taxonomy=site)
    assert (record["category"], record["severity"]) == ("Brawl", "critical")
    assert list(record)[:12] == ["type", "id", "camera", "source", "number", "start", "end", "start_wall",
                                 "end_wall", "score", "cause", "category"]  # the fields before stay as they were
    event = _event()
    event.cause = "a person smashing a window"  # one of UCF-Crime's Vandalism phrasings: the default taxonomy
    assert alert_record("close", event, source="x", written_at=1.0)["severity"] == "low"


def test_the_log_appends_whole_lines_and_fsyncs_each(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "sub" / "alerts.jsonl"
    path.parent.mkdir()
    path.write_text('{"type": "open", "id": "earlier"}\n')               # an earlier run's records stay
    log = AlertLog(path)
    big = "x" * 5000                                                       # longer than a pipe buffer

    def writer(n):
        for i in range(25):
            log.write({"type": "open", "id": f"{n}-{i}", "cause": big})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 101 and all(json.loads(line)["type"] == "open" for line in lines)
    assert {json.loads(line)["id"] for line in lines[1:]} == {f"{n}-{i}" for n in range(4) for i in range(25)}
    assert len(synced) == 100 and log.written == 100
    with pytest.raises(ValueError, match="closed"):
        log.write({})


def test_reading_alerts_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"type": "open", "id": "a"}\n{"type": "close", "id": "a"}\n{"type": "op')
    assert [r["type"] for r in read_alerts(path)] == ["open", "close"]


def test_webhook_delivers_json(receiver):
    r = receiver()
    sender = WebhookSender(r.url, backoff=0.05)
    for i in range(3):
        assert sender.submit({"id": i, "type": "open"})
    sender.close(drain=10)
    assert [b["json"]["id"] for b in r.bodies] == [0, 1, 2]
    assert all(b["type"] == "application/json" for b in r.bodies)
    assert sender.stats == {"sent": 3, "failed": 0, "dropped": 0, "retries": 0, "unsent": 0}


def test_webhook_retries_server_errors_with_backoff(receiver):
    r = receiver(fail_first=2, fail_status=503)
    waits: list[float] = []
    sender = WebhookSender(r.url, retries=3, backoff=0.2, sleep=waits.append)
    sender.submit({"id": "a"})
    sender.close(drain=10)
    assert [b["json"]["id"] for b in r.bodies] == ["a"] and r.requests == 3
    assert sender.stats["retries"] == 2 and sender.stats["sent"] == 1
    assert waits == [0.2, 0.4]                                            # back-off 0.2 s, then 0.4 s


def test_webhook_backoff_doubles_up_to_its_cap_then_gives_up(caplog):
    calls, waits = [], []

    def post(url, record, timeout):
        calls.append((url, record["id"], timeout))
        return 503

    sender = WebhookSender("http://hooks.invalid/x", retries=6, backoff=0.5, max_backoff=3.0, timeout=2.5,
                           post=post, sleep=waits.append)
    with caplog.at_level("INFO", logger="uprm.watch"):
        sender.submit({"id": "a"})
        sender.close(drain=10)
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]                        # webhook_backoff doubling, capped
    assert calls == [("http://hooks.invalid/x", "a", 2.5)] * 7              # the first try + webhook_retries
    assert sender.stats == {"sent": 0, "failed": 1, "dropped": 0, "retries": 6, "unsent": 0}
    gave_up = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in gave_up] == ["webhook http://hooks.invalid/x: alert a not delivered (HTTP 503)"]
    assert "retrying in 0.5 s" in caplog.records[0].getMessage()


def test_webhook_gives_up_after_its_retries_on_a_real_receiver(receiver):
    r = receiver(fail_first=100, fail_status=500)
    waits: list[float] = []
    sender = WebhookSender(r.url, retries=2, backoff=0.05, sleep=waits.append)
    sender.submit({"id": "a"})
    sender.submit({"id": "b"})
    sender.close(drain=10)
    assert r.requests == 6 and waits == [0.05, 0.1] * 2                   # each record: 1 + 2 tries
    assert sender.stats == {"sent": 0, "failed": 2, "dropped": 0, "retries": 4, "unsent": 0}


def test_webhook_gives_up_and_does_not_retry_client_errors(receiver):
    r = receiver(fail_first=100, fail_status=400)
    waits: list[float] = []
    sender = WebhookSender(r.url, retries=3, backoff=0.05, sleep=waits.append)
    sender.submit({"id": "a"})
    sender.close(drain=10)
    assert r.requests == 1 and sender.stats["failed"] == 1 and sender.stats["retries"] == 0 and waits == []


@pytest.mark.parametrize("status", [408, 429])
def test_webhook_retries_timeouts_and_rate_limits(receiver, status):
    r = receiver(fail_first=1, fail_status=status)
    waits: list[float] = []
    sender = WebhookSender(r.url, retries=3, backoff=0.05, sleep=waits.append)
    sender.submit({"id": "a"})
    sender.close(drain=10)
    assert r.requests == 2 and sender.stats["sent"] == 1 and waits == [0.05]


def test_webhook_retries_refused_connections(port):
    url = f"http://127.0.0.1:{port(0x1)}/hook"                            # nothing listens there
    waits: list[float] = []
    sender = WebhookSender(url, retries=2, backoff=0.05, timeout=2, sleep=waits.append)
    sender.submit({"id": "a"})
    sender.close(drain=10)
    assert sender.stats["failed"] == 1 and sender.stats["retries"] == 2 and waits == [0.05, 0.1]


def test_a_receiver_down_for_minutes_gets_every_record_in_order_once_it_is_back():
    """The default sender retries until delivered (the soak's finding: 5 retries gave a
    record up after 15.5 s, and an outage of minutes lost every record written in it)."""
    calls, waits = [], []

    def post(url, record, timeout):
        calls.append(record["id"])
        if len(calls) <= 12:  # down: 12 refused connections, ~4 minutes of back-off
            raise ConnectionRefusedError(111, "Connection refused")
        return 200

    sender = WebhookSender("http://hooks.invalid/x", post=post, sleep=waits.append)
    for record in ("a", "b", "c"):
        sender.submit({"id": record})
    sender.close(drain=10)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]  # doubling, capped at 30 s
    assert calls == ["a"] * 13 + ["b", "c"]                                              # the others waited, in order
    assert sender.stats == {"sent": 3, "failed": 0, "dropped": 0, "retries": 12, "unsent": 0}


def test_closing_cuts_the_back_off_short_and_counts_the_record_unsent():
    tried = threading.Event()

    def post(url, record, timeout):
        tried.set()
        return 503

    sender = WebhookSender("http://hooks.invalid/x", retries=3, backoff=3600.0, post=post)  # waits an hour
    sender.submit({"id": "a"})
    assert tried.wait(30)
    sender.close(drain=0.2)                                                # the wait is cut short
    assert not sender._thread.is_alive()
    assert sender.stats == {"sent": 0, "failed": 0, "dropped": 0, "retries": 1, "unsent": 1}


def test_a_slow_receiver_never_blocks_submit_and_the_queue_is_bounded():
    release, started = threading.Event(), threading.Event()

    def post(url, record, timeout):                                       # a receiver that hangs until released
        started.set()
        release.wait(60)
        return 200

    sender = WebhookSender("http://hooks.invalid/x", queue_size=5, retries=0, post=post)
    assert sender.submit({"id": 0}) and started.wait(30)                  # the thread is stuck in the first POST
    accepted = [sender.submit({"id": i}) for i in range(1, 200)]          # returns while the POST hangs
    assert sum(accepted) == 5 and sender.stats["dropped"] == 194            # queue of 5, the rest dropped
    release.set()
    sender.close(drain=30)
    assert sender.stats == {"sent": 6, "failed": 0, "dropped": 194, "retries": 0, "unsent": 0}


def test_records_left_at_close_are_counted_unsent(receiver):
    r = receiver(delay=1.0)
    sender = WebhookSender(r.url, queue_size=5, retries=0, timeout=5)
    for i in range(6):
        sender.submit({"id": i})
    sender.close(drain=0.5)                                                # the rest cannot be sent in time
    assert sender.stats["unsent"] >= 1
    assert sender.stats["unsent"] + sender.stats["sent"] + sender.stats["dropped"] <= 6


# ---------------------------------------------------------------------------- clips
def _frames(times, level):
    return [Frame(np.full((32, 48, 3), level(t), np.uint8), t, 1000.0 + t, i) for i, t in enumerate(times)]


def test_a_clip_has_the_pre_roll_the_event_and_the_post_roll(tmp_path):
    import av

    level = lambda t: 230 if 4.0 <= t < 6.0 else 20                       # noqa: E731
    times = [i / 4 for i in range(40)]                                     # 10 s at 4 fps
    ring = _frames(times[:18], level)                                      # buffered up to 4.25 s
    pre = [f for f in ring if f.time >= 4.0 - 2.0]                         # event at 4 s, 2 s of pre-roll
    rec = ClipRecorder(tmp_path / "clips" / "e.mp4", fps=4, first=pre)
    for f in _frames(times, level)[18:]:                                   # live frames
        if f.time == 7.0:
            rec.close_at(6.0 + 2.0)                                        # closed: end 6 s, 2 s of post-roll
        rec.feed(f)
    path = rec.join(30)
    assert path == tmp_path / "clips" / "e.mp4" and rec.error is None
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 25                                               # 2.0 ... 8.0 s at 4 fps
    bright = [i for i, f in enumerate(frames) if f.mean() > 128]
    assert bright == list(range(8, 16))                                    # 4-6 s: after 2 s of pre-roll
    assert frames[0].shape == (32, 48, 3)


def test_a_clip_keeps_real_time_when_frames_arrive_irregularly(tmp_path):
    import av

    frames = _frames([0.0, 0.25, 1.5, 1.75, 2.0], lambda t: 20)             # a 1.25 s hole
    rec = ClipRecorder(tmp_path / "c.mp4", fps=4, first=frames)
    rec.stop()
    path = rec.join(30)
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 9                      # 2.0 s at 4 fps, the hole filled


def test_a_clip_is_cut_at_its_maximum_length(tmp_path):
    rec = ClipRecorder(tmp_path / "c.mp4", fps=4, first=_frames([i / 4 for i in range(40)], lambda t: 20),
                       max_seconds=2.0)
    assert rec.join(30) is not None
    import av

    with av.open(str(rec.written)) as c:
        assert sum(1 for _ in c.decode(video=0)) in (8, 9)


def test_an_empty_clip_writes_nothing(tmp_path):
    rec = ClipRecorder(tmp_path / "c.mp4", fps=4)
    rec.stop()
    assert rec.join(30) is None and not (tmp_path / "c.mp4").exists() and "no frames" in rec.error
