"""segments_to_frames: the sample grid, the centre rule, clipping, degenerate videos."""

import math

import numpy as np
import pytest

from uprm import Segment
from uprm.metrics import MetricInputError, num_samples, segments_to_frames


def brute_force(segments, duration, rate):
    """The documented definition, one sample at a time."""
    n = num_samples(duration, rate)
    out = []
    for i in range(n):
        centre = (i / rate + min((i + 1) / rate, duration)) / 2
        out.append(any(s <= centre < e for s, e in segments))
    return np.array(out, bool)


def test_integer_seconds():
    got = segments_to_frames([(2, 6)], duration=10, rate=1)
    assert got.dtype == bool
    assert got.astype(int).tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]


def test_ucf_crime_frames_at_fps():
    # Abuse028: frames 165-240 at 30 fps in an 8640-frame video -> frames 165..239 (75 of them)
    fps = 30.0
    got = segments_to_frames([(165 / fps, 240 / fps)], duration=8640 / fps, rate=fps)
    assert got.size == 8640  # 8640 / 30 * 30 is not exactly 8640 in floats
    assert np.flatnonzero(got).tolist() == list(range(165, 240))


def test_half_open_on_centres():
    # centres 0.5, 1.5, 2.5: the segment [0.5, 1.5) holds the first only
    assert segments_to_frames([(0.5, 1.5)], 3, 1).tolist() == [True, False, False]
    assert segments_to_frames([(0.5, 1.5000001)], 3, 1).tolist() == [True, True, False]


def test_last_partial_sample_is_centred_on_what_it_covers():
    # 10.2 s at 1/s: 11 samples, the last covers [10, 10.2) with centre 10.1
    assert num_samples(10.2, 1) == 11
    assert segments_to_frames([(10.05, 10.2)], 10.2, 1).tolist() == [False] * 10 + [True]
    assert not segments_to_frames([(10.15, 12)], 10.2, 1).any()


def test_empty_overlapping_zero_length_and_out_of_range():
    assert not segments_to_frames([], 5, 1).any()
    assert not segments_to_frames(None, 5, 1).any()
    assert not segments_to_frames(np.zeros((0, 2)), 5, 1).any()
    assert segments_to_frames([(1, 3), (2, 4)], 5, 1).astype(int).tolist() == [0, 1, 1, 1, 0]
    assert not segments_to_frames([(2, 2)], 5, 1).any()
    assert segments_to_frames([(-5, 1.2)], 3, 1).tolist() == [True, False, False]
    assert not segments_to_frames([(20, 30)], 5, 1).any()
    assert segments_to_frames([(-1, 99)], 3, 1).all()


def test_one_frame_and_empty_videos():
    assert segments_to_frames([(0, 1 / 30)], 1 / 30, 30).tolist() == [True]
    assert segments_to_frames([(0, 0.004)], 0.01, 30).tolist() == [False]  # centre 0.005
    assert segments_to_frames([(0, 0.006)], 0.01, 30).tolist() == [True]
    assert segments_to_frames([(0, 1)], 0, 30).size == 0


def test_segment_objects_tensors_and_extra_fields():
    torch = pytest.importorskip("torch")
    want = segments_to_frames([(1, 2)], 4, 2)
    assert np.array_equal(segments_to_frames([Segment(1, 2, "fight", 0.9)], 4, 2), want)
    assert np.array_equal(segments_to_frames([(1, 2, "fight")], 4, 2), want)
    assert np.array_equal(segments_to_frames(torch.tensor([[1.0, 2.0]]), 4, 2), want)
    assert np.array_equal(segments_to_frames(np.array([[1, 2]]), 4, 2), want)


@pytest.mark.parametrize("seed", range(5))
def test_random_against_the_definition(seed):
    rng = np.random.default_rng(seed)
    duration = float(rng.uniform(0.01, 40))
    rate = float(rng.choice([1, 2, 7.5, 25, 29.97, 30]))
    starts = rng.uniform(-5, duration + 5, 8)
    segments = [(s, s + rng.exponential(3)) for s in starts]
    segments += [(round(s), round(s) + 2) for s in starts[:3]]  # boundaries on the grid
    assert np.array_equal(segments_to_frames(segments, duration, rate), brute_force(segments, duration, rate))


@pytest.mark.parametrize(
    ("segments", "duration", "rate", "message"),
    [
        ([(1, 2)], -1, 1, "duration"),
        ([(1, 2)], math.nan, 1, "duration"),
        ([(1, 2)], 5, 0, "rate"),
        ([(1, 2)], 5, -30, "rate"),
        ([(3, 2)], 5, 1, r"segments\[0\]: end 2.0 is before start 3.0"),
        ([(1, 2), (math.nan, 2)], 5, 1, r"segments\[1\]: times must be finite"),
        ([(1, math.inf)], 5, 1, "finite"),
        ([(1,)], 5, 1, r"segments\[0\]: expected a \(start, end\) segment"),
        (np.array([1.0, 2.0]), 5, 1, r"\[K, 2\]"),
    ],
)
def test_bad_input(segments, duration, rate, message):
    with pytest.raises(MetricInputError, match=message):
        segments_to_frames(segments, duration, rate)
    assert issubclass(MetricInputError, ValueError)
