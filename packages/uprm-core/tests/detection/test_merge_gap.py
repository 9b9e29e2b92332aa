"""The merge gap: by default ``uprm detect`` joins threat segments one sampling interval
(``Δ = window / num_frames``) apart, or closer; ``merge_gap=0`` keeps them apart. Tested
on the merger with the spans of real window plans, and end to end with the trained tiny
checkpoint on a video whose two threat windows lie exactly one interval apart."""

from __future__ import annotations

import pytest

from uprm.detection import SegmentMerger, WindowResult, detect_video, plan_windows

CAUSE = "a person grabbing a bag"


def _one_interval_apart(window: float, num_frames: int):
    """The plan of a 100-s video whose windows start every ``window + Δ`` seconds, so each
    window ends exactly one sampling interval before the next one starts."""
    interval = window / num_frames
    plan = plan_windows(100.0, window, window + interval, num_frames)
    assert plan.starts[:3] == (0, num_frames + 1, 2 * num_frames + 2)
    return plan


def _merged(plan, gap: float, threats=(True, True, False)) -> list[tuple[float, float]]:
    """The merged segments when window ``w`` says yes iff ``threats[w]`` (its segment:
    the whole window)."""
    merger = SegmentMerger(gap)
    out = []
    for w, threat in enumerate(threats):
        start, end = plan.span(w)
        result = WindowResult(w, start, end, p_yes=0.9 if threat else 0.1, threat=threat, score=0.9 if threat else 0,
                              segments=[(start, end)] if threat else [])
        out += [seg for seg, _ in merger.add(result)]
    out += [seg for seg, _ in merger.finish()]
    return [(s.start, s.end) for s in out]


@pytest.mark.parametrize(("window", "num_frames"), [(8.0, 2), (8.0, 4), (8.0, 8), (12.0, 3)])
def test_segments_one_sampling_interval_apart_merge_with_the_interval_as_gap(window, num_frames):
    plan = _one_interval_apart(window, num_frames)
    (a0, a1), (b0, b1) = plan.span(0), plan.span(1)
    assert b0 - a1 == pytest.approx(plan.interval)
    assert _merged(plan, plan.interval) == [(a0, b1)]
    assert _merged(plan, 0.0) == [(a0, a1), (b0, b1)]
    assert _merged(plan, plan.interval * 0.99) == [(a0, a1), (b0, b1)]  # the interval is the limit


@pytest.mark.parametrize(("window", "num_frames"), [(8.0, 3), (10.0, 3), (8.0, 6)])
def test_segments_one_interval_apart_merge_when_the_interval_has_many_decimals(window, num_frames):
    plan = _one_interval_apart(window, num_frames)
    merged = _merged(plan, plan.interval, threats=(True,) * 4)  # windows 0-3, each one Δ after the last
    assert merged == [(plan.span(0)[0], plan.span(3)[1])]


@pytest.fixture(scope="module")
def two_threat_windows(make_video, tmp_path_factory):
    """A 40-s video, bright (the trained threat) over 0-20 s, and its sidecars. With 8-s
    windows every 12 s and the detector's 2 frames (Δ = 4 s) the windows are 0-8, 12-20,
    24-32 and 32-40 s: the first two see only bright frames, 8 s - 12 s is one interval."""
    root = tmp_path_factory.mktemp("merge-gap")
    return make_video(root, "gap", 40.0, (0.0, 20.0)), root


def test_detect_video_merges_segments_one_interval_apart_by_default(detector, two_threat_windows):
    video, sidecars = two_threat_windows
    default = detect_video(video, detector, 8.0, 12.0, sidecar_dir=sidecars)
    assert [(w.start, w.end, w.threat) for w in default.windows] == [
        (0.0, 8.0, True), (12.0, 20.0, True), (24.0, 32.0, False), (32.0, 40.0, False)]
    assert default.settings["interval"] == 4.0 and default.settings["merge_gap"] == 4.0
    [seg] = default.segments
    assert (seg.start, seg.end, seg.cause, seg.windows) == (0.0, 20.0, CAUSE, [0, 1])

    apart = detect_video(video, detector, 8.0, 12.0, sidecar_dir=sidecars, merge_gap=0.0)
    assert apart.settings["merge_gap"] == 0.0
    assert [(s.start, s.end, s.windows) for s in apart.segments] == [(0.0, 8.0, [0]), (12.0, 20.0, [1])]
    narrow = detect_video(video, detector, 8.0, 12.0, sidecar_dir=sidecars, merge_gap=3.9)
    assert len(narrow.segments) == 2
