"""The event state machine on hand-made score sequences (no model, no video)."""

from __future__ import annotations

import pytest

from uprm.watch.events import EventTracker, WindowScore

WINDOW, STRIDE = 4.0, 2.0


def windows(scores, causes=None, weights=None):
    """Windows [2i, 2i + 4) with the given P(yes)."""
    out = []
    for i, p in enumerate(scores):
        start = i * STRIDE
        cause = (causes or {}).get(i, "a fight" if p >= 0.5 else "")
        out.append(WindowScore(start, start + WINDOW, p, cause, (weights or {}).get(i, {"coarse": 1.0}),
                               start_wall=1000.0 + start, end_wall=1000.0 + start + WINDOW,
                               newest_wall=1000.0 + start + WINDOW))
    return out


def run(tracker, ws):
    return [(kind, i, event) for i, w in enumerate(ws) for kind, event in tracker.update(w)]


def test_nothing_below_the_threshold():
    tracker = EventTracker("cam", threshold=0.5, cooldown=4.0)
    assert run(tracker, windows([0.1, 0.49, 0.3, 0.0])) == []
    assert tracker.finish() == []


def test_opens_at_the_threshold_and_closes_after_the_cooldown():
    tracker = EventTracker("cam", threshold=0.5, cooldown=4.0)
    #          0    1    2    3    4    5    6    7
    scores = [0.1, 0.5, 0.9, 0.2, 0.1, 0.3, 0.1, 0.1]
    got = run(tracker, windows(scores))
    assert [(k, i) for k, i, _ in got] == [("open", 1), ("close", 5)]
    # quiet from window 3 (ends at 10 s); window 5 ends at 14 s: 4 s of cool-down
    event = got[1][2]
    assert (event.start, event.end) == (2.0, 8.0)      # window 1's start to window 2's end
    assert (event.start_wall, event.end_wall) == (1002.0, 1008.0)
    assert event.windows == 2 and event.score == 0.9 and event.reason == "cooldown" and event.closed
    assert event.closed_at == 14.0 and event.number == 1


def test_a_dip_shorter_than_the_cooldown_keeps_one_event():
    tracker = EventTracker("cam", threshold=0.5, cooldown=4.0)
    scores = [0.9, 0.2, 0.3, 0.8, 0.1, 0.1, 0.1]   # dip of two windows (2 s of quiet) then threat again
    got = run(tracker, windows(scores))
    assert [(k, i) for k, i, _ in got] == [("open", 0), ("close", 6)]
    assert got[1][2].end == 3 * STRIDE + WINDOW and got[1][2].windows == 2


def test_a_dip_as_long_as_the_cooldown_makes_two_events():
    tracker = EventTracker("cam", threshold=0.5, cooldown=2.0)
    scores = [0.9, 0.2, 0.3, 0.8, 0.1]
    got = run(tracker, windows(scores))
    assert [(k, i) for k, i, _ in got] == [("open", 0), ("close", 2), ("open", 3)]
    assert [e.number for _, _, e in got] == [1, 1, 2]
    assert got[0][2] is got[1][2] and got[2][2] is tracker.current


def test_zero_cooldown_closes_at_the_first_window_below():
    tracker = EventTracker("cam", threshold=0.5, cooldown=0.0)
    got = run(tracker, windows([0.7, 0.8, 0.4, 0.9]))
    assert [(k, i) for k, i, _ in got] == [("open", 0), ("close", 2), ("open", 3)]


def test_score_cause_and_weights_of_an_event():
    tracker = EventTracker("cam", threshold=0.5, cooldown=0.0)
    ws = windows([0.6, 0.9, 0.7, 0.1], causes={0: "", 1: "a person grabbing a bag", 2: "running"},
                 weights={0: {"pose": 0.0, "coarse": 1.0}, 1: {"pose": 1.0, "coarse": 0.0},
                          2: {"pose": 0.5, "coarse": 0.5}})
    got = run(tracker, ws)
    opened, closed = got[0][2], got[1][2]
    assert opened is closed
    assert closed.score == 0.9 and closed.cause == "a person grabbing a bag"   # the best window's cause
    total = 0.6 + 0.9 + 0.7
    assert closed.expert_weights["pose"] == pytest.approx((0.9 * 1.0 + 0.7 * 0.5) / total)
    assert closed.expert_weights["coarse"] == pytest.approx((0.6 * 1.0 + 0.7 * 0.5) / total)


def test_the_open_record_has_the_opening_window_only():
    tracker = EventTracker("cam", threshold=0.5, cooldown=4.0)
    (kind, event), = tracker.update(windows([0.8])[0])
    d = event.to_dict()
    assert kind == "open" and d["windows"] == 1 and d["end"] == 4.0 and not d["closed"]
    assert event.opened_by.p_yes == 0.8


def test_located_threat_times_set_start_and_end():
    tracker = EventTracker("cam", threshold=0.5, cooldown=0.0)
    w1 = WindowScore(10.0, 14.0, 0.9, "x", threat_start=11.5, threat_end=13.0)
    w2 = WindowScore(12.0, 16.0, 0.9, "x", threat_start=12.0, threat_end=14.5)
    w3 = WindowScore(14.0, 18.0, 0.1)
    tracker.update(w1)
    tracker.update(w2)
    (_, event), = tracker.update(w3)
    assert (event.start, event.end) == (11.5, 14.5)


def test_finish_closes_the_open_event_with_its_reason():
    tracker = EventTracker("cam", threshold=0.5, cooldown=100.0)
    run(tracker, windows([0.9, 0.9, 0.1, 0.1]))
    (kind, event), = tracker.finish("shutdown", at=20.0)
    assert kind == "close" and event.reason == "shutdown" and event.closed_at == 20.0
    assert tracker.current is None and tracker.finish() == []


def test_event_ids_name_camera_utc_start_and_number():
    tracker = EventTracker("lobby", threshold=0.5, cooldown=0.0)
    w = WindowScore(0.0, 4.0, 0.9, start_wall=1767225600.0)      # 2026-01-01T00:00:00Z
    (_, event), = tracker.update(w)
    assert event.id == "lobby-20260101T000000Z-1"


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"threshold": -0.1}, {"cooldown": -1.0}])
def test_bad_settings(bad):
    with pytest.raises(ValueError):
        EventTracker("cam", **bad)
