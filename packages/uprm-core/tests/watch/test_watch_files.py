"""``uprm.watch`` on video files with the tiny trained checkpoint: the event of a
synthetic threat video, its records and clip; several cameras batched together;
skipping when inference is slower than real time; stopping; bad inputs."""

from __future__ import annotations

import threading
import time

import pytest

import uprm
from uprm.watch import Watcher, WatchError, WatchSettings, read_alerts

CAUSE = "a person grabbing a bag"


def test_uprm_watch_is_the_package_and_calling_it_runs_watch(monkeypatch):
    import sys
    import types

    import uprm.watch as package
    from uprm.watch import watcher

    assert uprm.watch is package is sys.modules["uprm.watch"] and isinstance(package, types.ModuleType)
    assert package.watch is watcher.watch and package.Watcher is Watcher is watcher.Watcher
    calls, report = [], object()
    monkeypatch.setattr(package, "watch", lambda *args, **kwargs: calls.append((args, kwargs)) or report)
    assert uprm.watch(["cam1=a.mp4"], "ckpt", window=4, stride=2) is report  # the call goes to watch, as given
    assert calls == [((["cam1=a.mp4"], "ckpt"), {"window": 4, "stride": 2})]


def test_a_threat_video_gives_one_event_with_its_records_and_clip(tmp_path, make_video, watch_model):
    import av

    video = make_video(tmp_path / "shop.mp4", 20.0, (8.0, 12.0))
    alerts, clips = tmp_path / "alerts.jsonl", tmp_path / "clips"
    seen = []
    report = uprm.watch([f"shop={video}"], watch_model, window=4, stride=2, cooldown=2, alerts=str(alerts),
                        clips=str(clips), pre_roll=2, post_roll=2, on_alert=seen.append)
    # windows end every 2 s from 4 s to 20 s (9); those sampling 9 s or 11 s see the threat: [6,10) [8,12) [10,14)
    cam = report.cameras["shop"]
    assert (cam["windows"], cam["skipped"], cam["incomplete"], cam["state"]) == (9, 0, 0, "ended")
    assert report.stopped_by == "end of streams"
    records = read_alerts(alerts)
    assert records == seen and [r["type"] for r in records] == ["open", "close"]
    opened, closed = records
    assert opened["id"] == closed["id"] and opened["id"].startswith("shop-") and opened["camera"] == "shop"
    assert (opened["start"], opened["end"], opened["windows"]) == (6.0, 10.0, 1)
    assert (closed["start"], closed["end"], closed["windows"], closed["reason"]) == (6.0, 14.0, 3, "cooldown")
    assert closed["cause"] == CAUSE and closed["score"] > 0.5 and set(closed["expert_weights"]) == {
        "background", "coarse"}
    assert opened["latency_s"] >= 0 and opened["source"] == str(video)
    assert report.events == [closed] and report.alerts == 2 and report.latency["count"] == 1
    # the clip: 2 s of pre-roll, the event (6-14 s), 2 s of post-roll, at the buffer's 10 fps
    assert report.clips == [closed["clip"]] == [str(clips / f"{closed['id']}.mp4")]
    with av.open(closed["clip"]) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24").mean()) for f in c.decode(video=0)]
    assert 11.5 <= len(frames) / 10 <= 12.5
    bright = [t for t, level in frames if level > 128]
    assert bright[0] == pytest.approx(4.0, abs=0.3) and bright[-1] == pytest.approx(8.0, abs=0.4)


def test_alerts_carry_the_severity_of_the_site_taxonomy(tmp_path, make_video, watch_model):
    video = make_video(tmp_path / "shop.mp4", 12.0, (4.0, 8.0))
    site = tmp_path / "site.yaml"
    site.write_text("categories:\n  - name: BagSnatching\n    description: Someone grabs a bag.\n"
                    f"    severity: high\n    causes: [{CAUSE}]\n")
    alerts = tmp_path / "alerts.jsonl"
    uprm.watch([f"shop={video}"], watch_model, window=4, stride=2, cooldown=2, alerts=str(alerts), taxonomy=site)
    records = read_alerts(alerts)
    assert [r["type"] for r in records] == ["open", "close"] and records[-1]["cause"] == CAUSE
    assert all((r["category"], r["severity"]) == ("BagSnatching", "high") for r in records)


def test_a_quiet_video_raises_nothing_and_the_ring_buffer_stays_bounded(tmp_path, make_video, watch_model):
    video = make_video(tmp_path / "quiet.mp4", 30.0, (99.0, 99.0), fps=8)
    alerts = tmp_path / "alerts.jsonl"
    report = uprm.watch([str(video)], watch_model, window=4, stride=2, fps=8, pre_roll=1, alerts=str(alerts))
    cam = report.cameras["cam1"]
    assert cam["windows"] == 14 and report.events == [] and read_alerts(alerts) == []
    assert cam["frames_kept"] == 240 and cam["ring_peak_frames"] <= cam["ring_max_frames"] < 240 / 2
    assert report.window_lag["count"] == 14


def test_finished_clips_are_let_go_of_so_memory_does_not_grow_per_event(tmp_path, watch_model):
    """The soak's finding: every event's recorder (its thread, queue, locks: ~8 KB) was kept
    for good. Once its file is finished only the path stays."""
    import numpy as np

    from uprm.data import write_mp4

    threats = [(4.0, 6.0), (24.0, 26.0), (44.0, 46.0)]
    frames = (np.full((64, 64, 3), 230 if any(a <= i / 4 < b for a, b in threats) else 20, np.uint8)
              for i in range(60 * 4))
    video = write_mp4(tmp_path / "three.mp4", frames, fps=4, gop=4)
    settings = WatchSettings(window=4, stride=2, cooldown=2, pre_roll=1, post_roll=1, clips=str(tmp_path / "clips"))
    held: list[tuple[int, int]] = []  # at each open: recorders held, clips let go of
    watcher = Watcher([f"shop={video}"], watch_model, settings,
                      on_alert=lambda r: r["type"] == "open" and held.append((len(watcher.recorders),
                                                                             len(watcher.clips_written))))
    report = watcher.run()
    assert len(report.events) == 3 and len(report.clips) == 3 and all(p.endswith(".mp4") for p in report.clips)
    # the third event opens 20 s of stream after the second closed: the earlier clips are finished and let go
    assert held[0] == (1, 0) and held[2] == (1, 2)
    assert watcher.status()["clips"] == {"recording": 0, "written": 3, "failed": 0, "last_error": None}


def test_several_cameras_are_batched_together(tmp_path, make_video, watch_model, monkeypatch):
    import uprm.watch.watcher as watcher_module

    batches = []
    real = watcher_module.answer_windows

    def spy(model, features, threshold):
        batches.append(len(features))
        return real(model, features, threshold)

    monkeypatch.setattr(watcher_module, "answer_windows", spy)
    a = make_video(tmp_path / "a.mp4", 16.0, (6.0, 10.0))
    b = make_video(tmp_path / "b.mp4", 16.0, (99.0, 99.0))
    c = make_video(tmp_path / "c.mp4", 16.0, (0.0, 4.0))
    report = uprm.watch([f"a={a}", f"b={b}", f"c={c}"], watch_model, window=4, stride=2, cooldown=2, batch_size=2)
    assert sum(batches) == 3 * 7 and max(batches) == 2           # 7 windows a camera, at most 2 per pass
    assert batches.count(2) >= 3                                  # windows of different cameras share passes
    by_camera = {e["camera"]: e for e in report.events}
    assert set(by_camera) == {"a", "c"}
    assert (by_camera["a"]["start"], by_camera["a"]["end"]) == (4.0, 12.0)
    assert (by_camera["c"]["start"], by_camera["c"]["end"]) == (0.0, 6.0)


def test_slow_inference_skips_windows_instead_of_queueing_them(tmp_path, make_video, watch_model, monkeypatch):
    import uprm.watch.watcher as watcher_module

    real = watcher_module.answer_windows
    delay = 2.2

    def slow(model, features, threshold):
        time.sleep(delay)
        return real(model, features, threshold)

    monkeypatch.setattr(watcher_module, "answer_windows", slow)
    video = make_video(tmp_path / "live.mp4", 8.0, (2.0, 8.0))
    report = uprm.watch([str(video)], watch_model, window=2, stride=1, cooldown=2, realtime=True)
    cam = report.cameras["cam1"]
    # 7 windows are due in 8 s of real-time video (one a second); each answer takes 2.2 s
    assert cam["skipped"] >= 1 and cam["windows"] + cam["skipped"] + cam["incomplete"] <= 7
    assert cam["window_lag"]["max"] < 3 * (delay + 1.0)           # the backlog does not grow
    assert [e["camera"] for e in report.events] == ["cam1"]        # the threat is still caught


def _count_answered(monkeypatch, on_batch=None) -> list[int]:
    """Count the windows the watcher answers (one entry per batch); ``on_batch(n)`` after each."""
    import uprm.watch.watcher as watcher_module

    real, batches = watcher_module.answer_windows, []

    def counted(model, features, threshold):
        answers = real(model, features, threshold)
        batches.append(len(features))
        if on_batch is not None:
            on_batch(len(features))
        return answers

    monkeypatch.setattr(watcher_module, "answer_windows", counted)
    return batches


def test_a_stop_hook_closes_the_open_event_and_flushes(tmp_path, make_video, watch_model, monkeypatch):
    video = make_video(tmp_path / "long.mp4", 60.0, (2.0, 60.0))
    alerts = tmp_path / "alerts.jsonl"
    stop, answered = threading.Event(), _count_answered(monkeypatch)
    at_stop = []

    def on_alert(record):
        if record["type"] == "open":
            at_stop.append(sum(answered))
            stop.set()

    report = uprm.watch([str(video)], watch_model, window=4, stride=2, realtime=True, alerts=str(alerts),
                        stop=stop, on_alert=on_alert)
    records = read_alerts(alerts)
    assert [r["type"] for r in records] == ["open", "close"] and records[1]["reason"] == "shutdown"
    assert report.stopped_by == "stop"
    # no window is answered after the hook fired (the whole file would be 29 windows)
    assert sum(answered) == at_stop[0] == report.cameras["cam1"]["windows"] < 29


class _TickingClock:
    """The watcher's ``time`` module with a monotonic clock that moves one second per
    window answered (the rest is the real module): ``max_seconds`` in windows, not in
    however long this machine takes."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return 1000.0 + self.seconds

    def __getattr__(self, name: str):
        return getattr(time, name)


def test_max_seconds_stops_the_run_on_the_watchers_clock(tmp_path, make_video, watch_model, monkeypatch):
    import uprm.watch.watcher as watcher_module

    clock = _TickingClock()
    monkeypatch.setattr(watcher_module, "time", clock)

    def tick(n):
        clock.seconds += n

    answered = _count_answered(monkeypatch, tick)
    video = make_video(tmp_path / "long.mp4", 60.0, (99.0, 99.0))
    report = uprm.watch(str(video), watch_model, window=4, stride=2, max_seconds=3)  # paced by inference
    assert report.stopped_by == "max_seconds" and report.seconds == 3.0
    assert answered == [1, 1, 1] and report.cameras["cam1"]["windows"] == 3  # of the file's 29


def test_a_file_that_is_not_a_video_fails_its_camera_only(tmp_path, make_video, watch_model):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    good = make_video(tmp_path / "good.mp4", 8.0, (99.0, 99.0))
    report = uprm.watch([str(bad), str(good)], watch_model, window=4, stride=2)
    assert report.cameras["cam1"]["state"] == "failed" and "cannot open" in report.cameras["cam1"]["last_error"]
    assert report.cameras["cam2"]["state"] == "ended" and report.cameras["cam2"]["windows"] == 3


def test_an_expert_that_needs_sidecars_is_named(tmp_path, make_video):
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["coarse", "pose"], num_frames=2))
    video = make_video(tmp_path / "v.mp4", 6.0, (99.0, 99.0))
    with pytest.raises(WatchError, match=r"camera cam1: .*expert 'pose'.*pose\.weights"):
        uprm.watch([str(video)], model, window=4, stride=2)


def test_a_checkpoint_directory_and_settings_object(tmp_path, make_video, watch_checkpoint):
    video = make_video(tmp_path / "v.mp4", 8.0, (0.0, 8.0))
    settings = WatchSettings(window=4, stride=2, cooldown=0)
    watcher = Watcher([str(video)], str(watch_checkpoint), settings)
    report = watcher.run()
    assert [e["reason"] for e in report.events] == ["end of stream"] and report.events[0]["cause"] == CAUSE
    assert report.settings["num_frames"] == 2 and report.settings["stride_in_effect"] == 2.0


def test_a_batch_takes_the_longest_waiting_cameras_and_leaves_the_rest_due(tmp_path, watch_model):
    """The inference loop's gathering, driven by hand (readers not started): frames pushed
    into three live cameras' ring buffers, batches of two."""
    import numpy as np

    from uprm.watch.frames import Frame

    settings = WatchSettings(window=4, stride=2, batch_size=2)
    watcher = Watcher(["a=udp://127.0.0.1:1", "b=udp://127.0.0.1:2", "c=udp://127.0.0.1:3"], watch_model, settings)
    cams = {c.camera.name: c.camera for c in watcher.cams}
    latest = {"a": 3.2, "b": 5.1, "c": 4.0}                      # b's first window has waited longest (due at 3 s)
    for name, camera in cams.items():
        for i in range(round(latest[name] * 10) + 1):
            camera.push(Frame(np.full((8, 8, 3), 20, np.uint8), i / 10, 1000.0 + i / 10, i))
    lane = watcher.lanes[0]                                       # the one replica (replicas=1)
    due, taken = watcher._gather(lane)
    assert taken == 2 and [(d.cam.camera.name, d.m) for d in due] == [("b", 3), ("c", 2)]
    assert cams["b"].stats.skipped == 1                           # b was 2 windows behind: the older one skipped
    assert cams["a"].waiting() is not None and cams["a"].clock.next_end == 2   # a stays due, untouched
    watcher._run_batch(lane, due)
    assert cams["b"].stats.windows == cams["c"].stats.windows == 1 and cams["a"].stats.windows == 0
    due, _ = watcher._gather(lane)
    assert [d.cam.camera.name for d in due] == ["a"]
