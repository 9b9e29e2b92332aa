"""Window scheduling, skipping, the ring buffer, the stream clock, sources and settings
(pure logic with hand-made times; no model, no decoding)."""

from __future__ import annotations

import numpy as np
import pytest

from uprm.watch.frames import Frame, RingBuffer, StreamClock, output_size
from uprm.watch.schedule import GridView, WindowClock
from uprm.watch.settings import WatchError, WatchSettings
from uprm.watch.sources import parse_source, parse_sources


# ---------------------------------------------------------------------------- windows
def test_windows_sit_on_the_sampling_grid():
    clock = WindowClock(window=8.0, stride=2.0, num_frames=4)        # grid step 2 s, stride one step
    assert clock.interval == 2.0 and clock.step == 1 and clock.stride == 2.0
    assert clock.take(6.9) is None                                   # the first window's last point is 7 s
    assert clock.take(7.0) == (4, 0)
    assert clock.span(4) == (0.0, 8.0) and clock.times(4) == [1.0, 3.0, 5.0, 7.0]
    assert clock.take(8.5) is None and clock.take(9.0) == (5, 0)
    assert clock.span(5) == (2.0, 10.0) and clock.times(5) == [3.0, 5.0, 7.0, 9.0]   # shares 3 frames


def test_the_stride_is_rounded_to_the_grid():
    assert WindowClock(8.0, 3.0, 8).stride == 3.0                    # grid 1 s
    assert WindowClock(8.0, 3.0, 2).stride == 4.0                    # grid 4 s: 3 -> 4
    assert WindowClock(8.0, 0.1, 2).stride == 4.0                    # at least one step


def test_when_behind_only_the_latest_window_runs_and_the_rest_are_counted():
    clock = WindowClock(window=4.0, stride=2.0, num_frames=2)
    assert clock.take(3.0) == (2, 0)
    # inference took long: the stream is now at 11.2 s; windows ending at 6, 8, 10 s are due
    # (last points 5, 7, 9), and 12 s is not (11 s < 11.2 s ... its last point is 11): it is
    assert clock.take(11.2) == (6, 3)
    assert clock.span(6) == (8.0, 12.0)
    assert (clock.taken, clock.skipped) == (2, 3)
    assert clock.take(12.0) is None and clock.take(13.0) == (7, 0)


def test_due_time_and_room_for_paced_sources():
    clock = WindowClock(window=4.0, stride=2.0, num_frames=2)
    assert clock.due_at() == 3.0
    assert clock.has_room(4.9) and not clock.has_room(5.0)           # 5 s would make a second window due


def _camera(kind="stream", realtime=False):
    import threading

    from uprm.watch.reader import Camera
    from uprm.watch.sources import Source

    settings = WatchSettings(window=4.0, stride=2.0, realtime=realtime, pre_roll=0.0)
    return Camera(Source("cam", "udp://x", kind), settings, WindowClock(4.0, 2.0, 2), threading.Event())


def test_windows_lost_to_an_outage_are_not_counted_as_skipped():
    cam = _camera()
    for t in (0.0, 1.0, 2.0, 3.0):
        cam.push(frame(t))
    assert cam.take_window() == (2, 0)                                  # [0, 4)
    cam.session_start = 11.0                                            # reconnected: no frames from 3 to 11 s
    cam.push(frame(11.0))
    m, skipped = cam.take_window()                                      # due: windows ending 6, 8, 10, 12 s
    assert (m, skipped, cam.stats.outage) == (6, 0, 3)
    cam.push(frame(13.5))
    cam.push(frame(17.2))                                               # inference was slow: 14, 16 s passed over
    assert cam.take_window() == (9, 2) and cam.stats.outage == 3


def test_a_paced_file_takes_every_window_in_order():
    cam = _camera(kind="file")
    assert cam.paced
    for t in (0.0, 1.0, 2.0, 3.0, 9.5):                                 # frames far ahead of the inference loop
        cam.push(frame(t))
    assert [cam.take_window() for _ in range(5)] == [(2, 0), (3, 0), (4, 0), (5, 0), None]
    assert cam.stats.outage == 0


# ---------------------------------------------------------------------------- ring buffer
def frame(t, wall=None, seq=0):
    return Frame(np.full((4, 4, 3), int(t) % 256, np.uint8), float(t), 1000.0 + t if wall is None else wall, seq)


def test_the_ring_buffer_is_bounded_by_seconds_and_frames():
    ring = RingBuffer(seconds=3.0, max_frames=100)
    for i in range(100):
        ring.push(frame(i * 0.1))
    assert ring.latest().time == pytest.approx(9.9)
    assert ring.since(0.0)[0].time == pytest.approx(6.9) and len(ring) == 31
    small = RingBuffer(seconds=100.0, max_frames=5)
    for i in range(50):
        small.push(frame(i))
    assert len(small) == 5 and small.peak == 5 and [f.time for f in small.since(0)] == [45, 46, 47, 48, 49]


def test_picking_frames_for_sampling_points():
    ring = RingBuffer(seconds=60.0, max_frames=1000)
    for t in (0.0, 0.5, 1.0, 1.5, 4.0, 4.5):                          # a gap from 1.5 to 4 s
        ring.push(frame(t))
    picked = ring.pick([0.7, 1.5, 4.2], tolerance=1.0)
    assert [f.time for f in picked] == [0.5, 1.5, 4.0]                  # the last frame at or before
    assert [f.time for f in ring.pick([-0.2], tolerance=1.0)] == [0.0]  # none before: the first after
    assert ring.pick([3.0], tolerance=1.0) is None                      # 1.5 s from the nearest: a gap
    assert RingBuffer(1.0, 1).pick([0.0], 1.0) is None


def test_wall_time_of_a_stream_time():
    ring = RingBuffer(seconds=60.0, max_frames=1000)
    for t in (0.0, 1.0, 2.0):
        ring.push(frame(t, wall=500.0 + 2 * t))                       # arrivals 2 s apart
    assert ring.wall_at(1.0) == 502.0
    assert ring.wall_at(1.2) == pytest.approx(502.2)                     # nearest frame + offset


# ---------------------------------------------------------------------------- stream clock
def test_stream_time_counts_from_the_first_frame_by_pts():
    clock = StreamClock(live=True)
    assert clock.stamp(1.4, 100.0, 0.25) == 0.0                          # MPEG-TS starts at 1.4 s
    assert clock.stamp(1.65, 100.3, 0.25) == pytest.approx(0.25)          # pts, not arrival
    assert clock.stamp(2.4, 100.5, 0.25) == pytest.approx(1.0)


def test_stream_time_continues_across_a_reconnect():
    clock = StreamClock(live=True)
    clock.stamp(1.4, 100.0, 0.25)
    clock.stamp(3.4, 102.0, 0.25)                                        # t = 2.0
    clock.new_session()
    t = clock.stamp(1.4, 107.0, 0.25)                                    # the restarted encoder's pts
    assert t == pytest.approx(7.0)                                       # 2 s + 5 s of outage
    assert clock.stamp(1.65, 107.25, 0.25) == pytest.approx(7.25)


def test_pts_jumps_do_not_move_stream_time_backwards_or_far_ahead():
    clock = StreamClock(live=True, max_jump=5.0)
    clock.stamp(10.0, 100.0, 0.5)
    clock.stamp(10.5, 100.5, 0.5)
    assert clock.stamp(2.0, 101.0, 0.5) == pytest.approx(1.0)            # backwards: continue
    assert clock.stamp(2.5, 101.5, 0.5) == pytest.approx(1.5)
    assert clock.stamp(500.0, 102.0, 0.5) == pytest.approx(2.0)          # 500 s ahead in 0.5 s of wall time
    assert clock.discontinuities == 2
    assert clock.stamp(None, 103.0, 0.5) == pytest.approx(3.0)           # no pts: wall clock


def test_a_file_clock_follows_pts_however_fast_it_is_read():
    clock = StreamClock(live=False)
    assert [clock.stamp(t, 100.0, 0.25) for t in (0.0, 0.25, 30.0)] == [0.0, 0.25, 30.0]


def test_output_size():
    assert output_size(1920, 1080, 512) == (512, 288)
    assert output_size(64, 64, 512) == (64, 64)
    assert output_size(101, 51, None) == (100, 50)                       # even sides for H.264


# ---------------------------------------------------------------------------- grid view
def test_the_grid_view_holds_one_frame_per_grid_point():
    grid = GridView("cam1", interval=2.0, num_frames=2, meta={"source": "udp://x"})
    a, b, c = frame(1.0, seq=1), frame(3.0, seq=2), frame(5.0, seq=3)
    grid.add(0, a)
    grid.add(1, b)
    grid.add(1, c)                                                       # already held: kept
    clip = grid.window_clip(0)
    assert clip.frames.shape == (2, 3, 4, 4) and clip.timestamps.tolist() == [1.0, 3.0]
    assert clip.meta["window"] == [0.0, 4.0] and clip.meta["frame_indices"] == [1, 2]
    assert clip.meta["camera"] == "cam1" and clip.meta["source"] == "udp://x" and clip.video_id == "cam1"
    assert grid.needed([0, 1]) == [0, 1, 2] and list(grid.plan.indices(1)) == [1, 2]
    grid.release_before(1)
    assert list(grid.frames) == [1]


# ---------------------------------------------------------------------------- sources, settings
def test_sources(tmp_path):
    video = tmp_path / "shop.mp4"
    video.write_bytes(b"x")
    s = parse_source("rtsp://10.0.0.5:554/stream1?user=a", 1)
    assert (s.name, s.kind, s.live, s.rtsp) == ("cam1", "stream", True, True)
    assert "rtsp_transport" not in s.options  # negotiated when it opens (test_rtsp.py)
    s = parse_source("lobby=udp://127.0.0.1:5000?overrun_nonfatal=1", 2)
    assert (s.name, s.target, s.kind) == ("lobby", "udp://127.0.0.1:5000?overrun_nonfatal=1", "stream")
    assert parse_source("https://h/live.m3u8", 3).kind == "stream"
    s = parse_source(str(video), 4)
    assert (s.name, s.kind, s.live) == ("cam4", "file", False)
    assert parse_source(f"file://{video}", 5).target == str(video)
    assert parse_source("/dev/video0", 6).format == "v4l2"
    s = parse_source("door=avfoundation:0", 7)
    assert (s.name, s.kind, s.format, s.target) == ("door", "device", "avfoundation", "0")
    assert parse_source("dshow:video=USB Camera", 8).target == "video=USB Camera"


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(WatchError, match=r"cam1.*missing\.mp4"):
        parse_source(str(tmp_path / "missing.mp4"), 1)
    with pytest.raises(WatchError, match="unsupported source scheme 'gopher'"):
        parse_source("gopher://x", 1)
    with pytest.raises(WatchError, match="two cameras are named 'a'"):
        parse_sources(["a=udp://127.0.0.1:1", "a=udp://127.0.0.1:2"])
    with pytest.raises(WatchError, match="no source"):
        parse_sources([])


@pytest.mark.parametrize("bad", [{"window": 0}, {"stride": -1}, {"threshold": 1.2}, {"cooldown": -1},
                                 {"batch_size": 0}, {"max_side": 8}, {"reconnect_min": 5, "reconnect_max": 1}])
def test_bad_settings_are_named(bad):
    with pytest.raises(WatchError, match=next(iter(bad))):
        WatchSettings(**bad)


def test_unknown_setting():
    with pytest.raises(WatchError, match=r"unknown watch setting.*'windw'"):
        WatchSettings.from_options(windw=4)


def test_importing_the_watcher_loads_no_torch_and_no_video_library():
    """``uprm watch --help`` and the event logic stay light: torch and PyAV load when a
    watch starts."""
    import json
    import subprocess
    import sys

    code = ("import sys, uprm, uprm.watch, uprm.watch.watcher, uprm.cli.watch\n"
            "assert callable(uprm.watch)\n"
            "import json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    assert not {"torch", "av", "numpy", "PIL", "transformers"} & loaded
