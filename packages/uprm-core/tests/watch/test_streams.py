"""``uprm watch`` on real live streams: a real ``ffmpeg`` streams a synthetic threat video
on loopback (MPEG-TS over UDP, and over HTTP), the watcher with the tiny trained
checkpoint raises the alert within the expected window, the stream is cut (ffmpeg
killed) and restarted, the watcher reconnects and the event opened before the cut is
closed after it; a webhook receiver checks the POSTs."""

from __future__ import annotations

import time

import pytest

from uprm.watch import Watcher, WatchSettings, read_alerts

WINDOW, STRIDE = 4.0, 2.0
ONSET = 4.0                 # the threat starts 4 s into the streamed video
CAUSE = "a person grabbing a bag"


def _open_alerts(records):
    return [r for r in records if r["type"] == "open"]


def test_udp_stream_alert_cut_and_reconnect(run_in_thread, tmp_path, make_video, watch_model, streamer, receiver, port, until):
    threat = make_video(tmp_path / "threat.mp4", 30.0, (ONSET, 30.0))
    quiet = make_video(tmp_path / "quiet.mp4", 30.0, (99.0, 99.0))
    hook = receiver()
    alerts = tmp_path / "alerts.jsonl"
    url = f"udp://127.0.0.1:{port()}"
    seen: list[dict] = []
    settings = WatchSettings(window=WINDOW, stride=STRIDE, cooldown=STRIDE, alerts=str(alerts), webhook=hook.url,
                             read_timeout=1.5, open_timeout=20, reconnect_min=0.5, reconnect_max=2)
    watcher = Watcher([f"door={url}"], watch_model, settings, on_alert=seen.append)
    camera = watcher.cams[0].camera
    running = run_in_thread(watcher)
    try:
        assert until(lambda: camera.state == "connecting", 10)        # the reader has bound the port
        time.sleep(0.5)
        first = streamer().start(threat, f"{url}?pkt_size=1316")

        # the alert: not before the threat is on the wire, within a window + stride (+ generous slack) after
        assert until(lambda: _open_alerts(seen), ONSET + WINDOW + STRIDE + 25), "no alert for the threat"
        opened = _open_alerts(seen)[0]
        raised = time.time() - first.started
        assert ONSET - 0.5 <= raised <= ONSET + WINDOW + STRIDE + 25
        assert opened["camera"] == "door" and opened["start"] <= ONSET + 1.0 < opened["end"]
        assert opened["cause"] == CAUSE and opened["score"] > 0.5 and opened["latency_s"] < 20

        # cut the stream while the event is open; the reader notices (read timeout) and retries
        time.sleep(1.0)
        first.cut()
        assert until(lambda: camera.stats.drops >= 1, 15), "the cut was not noticed"
        assert watcher.cams[0].tracker.current is not None              # the event stays open
        frames_before = camera.stats.frames_kept
        time.sleep(1.0)
        streamer().start(quiet, f"{url}?pkt_size=1316")                 # the camera comes back, quiet
        assert until(lambda: camera.stats.reconnects >= 1 and camera.stats.frames_kept > frames_before + 8, 30)
        assert until(lambda: any(r["type"] == "close" for r in seen), 30), "the event did not close"
    finally:
        report = running.stop()

    closed = next(r for r in seen if r["type"] == "close")
    assert closed["id"] == opened["id"] and closed["reason"] == "cooldown"   # one event across the cut
    assert closed["start"] == opened["start"] and closed["end"] >= opened["end"]
    assert len(_open_alerts(seen)) == 1
    cam = report.cameras["door"]
    assert cam["drops"] >= 1 and cam["reconnects"] >= 1 and cam["sessions"] >= 2
    assert cam["stream_seconds"] > closed["end"]                            # stream time went on after the cut
    # the JSONL file and the webhook got the same records
    assert read_alerts(alerts)[:2] == seen[:2]
    assert until(lambda: len(hook.bodies) >= 2, 10)
    assert [b["json"] for b in hook.bodies][:2] == seen[:2]
    assert report.webhook["sent"] >= 2 and report.webhook["dropped"] == 0


def test_http_stream_alert_then_shutdown(run_in_thread, tmp_path, make_video, watch_model, streamer, port, until):
    video = make_video(tmp_path / "threat.mp4", 40.0, (ONSET, 40.0))
    tcp = port(0x1)
    url = f"http://127.0.0.1:{tcp}/live.ts"
    server = streamer().start(video, url, listen=True)
    seen: list[dict] = []
    settings = WatchSettings(window=WINDOW, stride=STRIDE, cooldown=STRIDE, read_timeout=3, open_timeout=10,
                             reconnect_min=0.2, reconnect_max=1)
    watcher = Watcher([url], watch_model, settings, on_alert=seen.append)
    running = run_in_thread(watcher)
    try:
        assert until(lambda: _open_alerts(seen), ONSET + WINDOW + STRIDE + 25), "no alert for the threat"
        assert time.time() - server.started >= ONSET - 0.5
    finally:
        report = running.stop()
    assert [r["type"] for r in seen] == ["open", "close"] and seen[1]["reason"] == "shutdown"
    assert report.cameras["cam1"]["kind"] == "stream" and report.cameras["cam1"]["windows"] >= 2
    assert seen[0]["start"] <= ONSET + 1.0


@pytest.mark.parametrize("scheme", ["udp", "rtsp"])
def test_a_source_that_never_opens_is_retried_and_given_up(watch_model, scheme, port):
    url = f"rtsp://127.0.0.1:{port(0x1)}/none" if scheme == "rtsp" else f"udp://127.0.0.1:{port()}"
    settings = WatchSettings(window=WINDOW, stride=STRIDE, open_timeout=0.5, read_timeout=0.5, reconnect_min=0.1,
                             reconnect_max=0.2, max_reconnects=2)
    report = Watcher([url], watch_model, settings).run(max_seconds=30)
    cam = report.cameras["cam1"]
    assert cam["state"] == "failed" and cam["open_failures"] == 3 and cam["sessions"] == 0
    assert report.stopped_by == "end of streams"
