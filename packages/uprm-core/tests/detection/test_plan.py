"""Window plans: every window samples F frames uniformly, overlapping windows sample the
same grid frames, and what a batch holds does not grow with the video."""

from __future__ import annotations

import pytest

from uprm.detection import plan_windows


def test_overlapping_windows_sample_the_same_frames():
    plan = plan_windows(40.0, window=8.0, stride=4.0, num_frames=8)
    assert plan.interval == 1.0
    assert [plan.span(w) for w in range(3)] == [(0.0, 8.0), (4.0, 12.0), (8.0, 16.0)]
    assert plan.times(0) == [0.5 + i for i in range(8)]  # the centres of 8 equal parts, as training samples
    assert set(plan.times(0)) & set(plan.times(1)) == {4.5, 5.5, 6.5, 7.5}  # half of each window is shared
    assert plan.span(len(plan) - 1) == (32.0, 40.0)
    assert len(plan.all_indices()) == 40  # 9 windows x 8 frames, but 40 distinct frames


def test_starts_snap_to_the_grid_and_every_window_is_full_length():
    plan = plan_windows(30.0, window=10.0, stride=4.0, num_frames=8)  # interval 1.25 s: 4 s is not on the grid
    for w in range(len(plan)):
        start, end = plan.span(w)
        assert end - start == pytest.approx(10.0)
        assert abs(start - round(start / 4.0) * 4.0) <= 1.25 / 2 or w == len(plan) - 1
        assert plan.times(w) == pytest.approx([start + (i + 0.5) * 1.25 for i in range(8)])
    assert plan.span(len(plan) - 1)[1] <= 30.0


def test_short_video_is_one_window_and_the_tail_is_covered():
    short = plan_windows(5.0, window=8.0, stride=4.0, num_frames=4)
    assert len(short) == 1 and short.span(0) == (0.0, 5.0) and short.times(0) == [0.625, 1.875, 3.125, 4.375]
    plan = plan_windows(21.0, window=8.0, stride=4.0, num_frames=8)
    assert plan.span(len(plan) - 1) == (13.0, 21.0)  # a last window ending at the end, on the grid


def test_a_stride_below_the_interval_keeps_each_window_once():
    plan = plan_windows(20.0, window=8.0, stride=0.5, num_frames=4)  # interval 2 s
    assert list(plan.starts) == sorted(set(plan.starts)) == list(range(7))


def test_buffer_bound_does_not_grow_with_the_video():
    short = plan_windows(60.0, 8.0, 4.0, 8)
    hour = plan_windows(3600.0, 8.0, 4.0, 8)
    assert len(hour) == 899
    assert hour.max_frames_held(4) == short.max_frames_held(4) == 3 * 4 + 8  # (B - 1) strides + one window


@pytest.mark.parametrize("bad", [dict(duration=0.0), dict(window=0.0), dict(stride=-1.0), dict(num_frames=0)])
def test_bad_arguments(bad):
    args = {"duration": 10.0, "window": 8.0, "stride": 4.0, "num_frames": 8, **bad}
    with pytest.raises(ValueError):
        plan_windows(**args)
