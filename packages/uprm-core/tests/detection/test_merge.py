"""Merging window answers into segments, on hand-made windows and on real ClipAnswers."""

from __future__ import annotations

import pytest

from uprm import ClipAnswers
from uprm.detection import SegmentMerger, WindowResult, merge_windows, window_result


def win(i, start, end, score=0.0, segments=None, cause="", weights=None):
    """Window ``i``; a threat when ``segments`` is given."""
    return WindowResult(i, start, end, p_yes=score, threat=segments is not None, score=score, cause=cause,
                        expert_weights=weights or {"pose": 0.5, "coarse": 0.5}, segments=segments or [])


def test_overlapping_windows_merge_with_max_score_best_cause_and_weighted_weights():
    windows = [
        win(0, 0, 8),
        win(1, 4, 12, 0.2, [(6.0, 12.0)], "loitering", {"pose": 1.0, "coarse": 0.0}),
        win(2, 8, 16, 0.6, [(8.0, 14.0)], "a fight", {"pose": 0.0, "coarse": 1.0}),
        win(3, 12, 20),
    ]
    [seg] = merge_windows(windows)
    assert (seg.start, seg.end, seg.score, seg.cause) == (6.0, 14.0, 0.6, "a fight")
    assert seg.windows == [1, 2]
    assert seg.expert_weights == pytest.approx({"pose": 0.25, "coarse": 0.75})  # weighted 0.2 : 0.6


def test_adjacent_segments_merge_within_the_gap_and_not_beyond():
    windows = [win(0, 0, 8, 0.5, [(1.0, 3.0)]), win(1, 4, 12, 0.5, [(4.0, 6.0)]), win(2, 8, 16, 0.5, [(9.5, 11.0)])]
    assert [(s.start, s.end) for s in merge_windows(windows, gap=1.0)] == [(1.0, 6.0), (9.5, 11.0)]
    assert [(s.start, s.end) for s in merge_windows(windows, gap=0.0)] == [(1.0, 3.0), (4.0, 6.0), (9.5, 11.0)]
    assert [(s.start, s.end) for s in merge_windows(windows, gap=3.5)] == [(1.0, 11.0)]


def test_a_segment_bridging_two_merges_them_all():
    windows = [win(0, 0, 8, 0.3, [(0.0, 2.0), (6.0, 8.0)]), win(1, 1, 9, 0.9, [(1.5, 6.5)], "bridge")]
    [seg] = merge_windows(windows)
    assert (seg.start, seg.end, seg.cause, seg.windows) == (0.0, 8.0, "bridge", [0, 1])


def test_no_threat_gives_nothing_and_zero_scores_average_plainly():
    assert merge_windows([win(0, 0, 8), win(1, 4, 12)]) == []
    [seg] = merge_windows([win(0, 0, 8, 0.0, [(0.0, 8.0)], weights={"coarse": 1.0}),
                           win(1, 4, 12, 0.0, [(4.0, 12.0)], weights={"coarse": 0.0})])
    assert seg.expert_weights == {"coarse": 0.5}


def test_segments_are_handed_out_as_soon_as_no_later_window_can_touch_them():
    merger = SegmentMerger(gap=1.0)
    assert merger.add(win(0, 0, 8, 0.5, [(0.0, 4.0)]), payload="evidence-0") == []
    assert merger.add(win(1, 4, 12)) == []  # 4 + 1 >= 4: still open
    closed = merger.add(win(2, 8, 16))
    assert [(s.start, s.end) for s, _ in closed] == [(0.0, 4.0)] and closed[0][1] == "evidence-0"
    assert merger.open == [] and merger.finish() == []
    with pytest.raises(ValueError, match="time order"):
        merger.add(win(3, 2, 10))


def test_the_best_windows_payload_is_kept():
    merger = SegmentMerger()
    merger.add(win(0, 0, 8, 0.2, [(0.0, 8.0)]), payload="low")
    merger.add(win(1, 4, 12, 0.7, [(4.0, 12.0)]), payload="high")
    merger.add(win(2, 8, 16, 0.4, [(8.0, 16.0)]), payload="middle")
    [(seg, payload)] = merger.finish()
    assert payload == "high" and seg.score == 0.7


def test_window_result_from_clip_answers():
    yes = ClipAnswers(identify="Yes, there exists a threat.", locate="The threat occurs between 2 and 5 seconds.",
                      attribute="The threat is attributed to a man hitting a door.", p_yes=0.8, locate_prob=0.5,
                      expert_weights={"pose": 0.3, "coarse": 0.7})
    r = window_result(3, yes, (100.0, 108.0), 600.0)
    assert (r.threat, r.score, r.cause, r.segments) == (True, pytest.approx(0.4), "a man hitting a door",
                                                       [(102.0, 105.0)])
    unclear = ClipAnswers(identify="Yes, there exists a threat.", locate="Somewhere.", p_yes=0.9)
    assert window_result(0, unclear, (8.0, 16.0), 20.0).segments == [(8.0, 16.0)]  # no time named: the window
    clamped = ClipAnswers(identify="yes", locate="between 6 and 30 seconds", p_yes=0.9)
    assert window_result(0, clamped, (8.0, 16.0), 20.0).segments == [(14.0, 16.0)]
    no = ClipAnswers(identify="No, there is no threat.", locate="between 1 and 2 seconds", p_yes=0.1)
    r = window_result(1, no, (0.0, 8.0), 20.0)
    assert (r.threat, r.score, r.segments, r.p_yes) == (False, 0.0, [], 0.1)
