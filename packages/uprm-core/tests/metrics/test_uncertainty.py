"""Bootstrap intervals over videos, paired comparisons, Holm and the probability of
improvement (uprm.metrics.uncertainty)."""

from __future__ import annotations

import numpy as np
import pytest

from uprm.metrics import MetricInputError
from uprm.metrics.uncertainty import Bootstrap, bootstrap, compare_paired, holm, probability_of_improvement


def _pooled_recall(hits_per_video: list[np.ndarray]):
    """Recall over the frames of the videos drawn (a pooled metric, not a mean of videos)."""
    def stat(units):
        frames = np.concatenate([hits_per_video[u] for u in units])
        return {"recall": frames.mean() if frames.size else None}
    return stat


def test_the_value_is_the_metric_on_all_videos_and_the_interval_brackets_it():
    rng = np.random.default_rng(3)
    videos = [rng.random(int(rng.integers(5, 40))) < p for p in rng.random(30)]
    est = bootstrap(_pooled_recall(videos), len(videos), Bootstrap(samples=400, seed=0))["recall"]
    assert est.value == pytest.approx(np.concatenate(videos).mean())
    low, high = est.ci
    assert low < est.value < high
    assert est.undefined == 0


def test_the_video_is_the_unit_so_correlated_frames_give_a_wide_interval():
    # 20 videos of 100 frames each, a video all hits or all misses: 20 draws, not 2,000
    videos = [np.full(100, i % 2 == 0) for i in range(20)]
    low, high = bootstrap(_pooled_recall(videos), 20, Bootstrap(samples=500, seed=1))["recall"].ci
    assert high - low > 0.3  # a frame-level bootstrap of 2,000 frames would give about 0.04
    frames = np.concatenate(videos)
    frame_level = bootstrap(lambda u: {"recall": frames[u].mean()}, frames.size, Bootstrap(samples=200, seed=1))
    assert frame_level["recall"].ci[1] - frame_level["recall"].ci[0] < 0.1


def test_same_seed_same_interval_and_zero_samples_gives_values_alone():
    videos = [np.array([True, False, True]), np.array([False]), np.array([True, True])]
    spec = Bootstrap(samples=100, seed=7)
    assert bootstrap(_pooled_recall(videos), 3, spec)["recall"].ci == bootstrap(_pooled_recall(videos), 3, spec)[
        "recall"].ci
    off = bootstrap(_pooled_recall(videos), 3, Bootstrap(samples=0))["recall"]
    assert off.ci is None and off.value == pytest.approx(4 / 6)


def test_undefined_resamples_are_left_out_and_counted():
    # the metric is undefined on a resample that draws only the video without frames
    videos = [np.array([], bool), np.array([True, False])]
    est = bootstrap(_pooled_recall(videos), 2, Bootstrap(samples=400, seed=0))["recall"]
    assert 50 < est.undefined < 150  # about a quarter of the resamples draw video 0 twice
    assert est.ci == (0.5, 0.5)


def test_seeds_that_disagree_widen_the_pooled_interval():
    rng = np.random.default_rng(0)
    base = rng.random(40)
    agree = np.stack([base, base, base])
    disagree = np.stack([base, base + 0.5, base - 0.5])

    def stat_of(table):
        return lambda seed, units: {"m": table[seed, units].mean()}

    spec = Bootstrap(samples=300, seed=2)
    narrow = bootstrap(stat_of(agree), 40, spec, n_seeds=3)["m"]
    wide = bootstrap(stat_of(disagree), 40, spec, n_seeds=3)["m"]
    assert narrow.value == pytest.approx(wide.value)  # the mean over seeds is the same
    assert (wide.ci[1] - wide.ci[0]) > 2 * (narrow.ci[1] - narrow.ci[0])


def _paired(a: np.ndarray, b: np.ndarray):
    both = np.concatenate([a, b])
    return lambda units: {"m": both[units].mean()}


def test_a_system_compared_with_itself_has_no_difference():
    a = np.random.default_rng(1).random(25)
    c = compare_paired(_paired(a, a.copy()), 25, Bootstrap(samples=200, seed=0))["m"]
    assert c.delta == 0.0 and c.ci == (0.0, 0.0) and c.p == 1.0 and not c.excludes_zero


def test_pairing_finds_a_small_steady_gain_that_the_spread_of_videos_would_hide():
    rng = np.random.default_rng(4)
    b = rng.random(40) * 10  # videos differ a lot
    a = b + 0.3 + rng.normal(0, 0.05, 40)  # A is a little better on every video
    c = compare_paired(_paired(a, b), 40, Bootstrap(samples=300, seed=0))["m"]
    assert c.a == pytest.approx(a.mean()) and c.b == pytest.approx(b.mean())
    assert c.delta == pytest.approx(a.mean() - b.mean())
    assert c.excludes_zero and 0.25 < c.ci[0] < c.ci[1] < 0.35
    assert c.p == pytest.approx(1 / 301)  # no permutation reaches the observed delta
    # unpaired, the two means' own intervals overlap: the gain is invisible without pairing
    ea = bootstrap(lambda u: {"m": a[u].mean()}, 40, Bootstrap(samples=300, seed=0))["m"]
    eb = bootstrap(lambda u: {"m": b[u].mean()}, 40, Bootstrap(samples=300, seed=0))["m"]
    assert ea.ci[0] < eb.ci[1]


def test_no_real_difference_gives_a_large_p_and_an_interval_around_zero():
    rng = np.random.default_rng(5)
    a, b = rng.random(30), rng.random(30)
    c = compare_paired(_paired(a, b), 30, Bootstrap(samples=300, seed=0))["m"]
    assert c.ci[0] < 0 < c.ci[1] and c.p > 0.05


def test_paired_comparison_over_seeds_uses_each_seeds_results():
    n = 20
    a = np.stack([np.full(n, 1.0), np.full(n, 3.0)])
    b = np.stack([np.full(n, 0.0), np.full(n, 0.0)])
    both = np.concatenate([a, b], axis=1)
    c = compare_paired(lambda seed, units: {"m": both[seed, units].mean()}, n, Bootstrap(samples=200, seed=0),
                       n_seeds=2)["m"]
    assert (c.a, c.b, c.delta) == (2.0, 0.0, 2.0)
    assert c.ci[0] == 1.0 and c.ci[1] == 3.0  # the seeds drawn: (0,0), (0,1), (1,1)


def test_holm_matches_the_hand_computation_and_keeps_unknowns():
    out = holm({"x": 0.01, "y": 0.04, "z": 0.03, "w": None})
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert out == {"x": 0.03, "y": 0.06, "z": 0.06, "w": None}
    assert holm({"only": 0.7}) == {"only": 0.7}
    assert holm({"a": 0.6, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def test_probability_of_improvement_by_hand():
    # task 1: X beats Y in 4 of 4 pairs; task 2: 1 win, 2 ties, 1 loss -> (1 + 1) / 4
    x = [[0.9, 0.8], [0.5, 0.6]]
    y = [[0.7, 0.75], [0.5, 0.6]]
    assert probability_of_improvement(x, y) == pytest.approx((1.0 + 0.5) / 2)
    assert probability_of_improvement(y, x) == pytest.approx(1 - 0.75)
    with pytest.raises(MetricInputError, match="same tasks"):
        probability_of_improvement([[1.0]], [[1.0], [2.0]])


@pytest.mark.parametrize("kwargs, match", [({"samples": -1}, "samples"), ({"samples": 1.5}, "samples"),
                                           ({"confidence": 1.0}, "confidence")])
def test_bad_settings_name_the_field(kwargs, match):
    with pytest.raises(MetricInputError, match=match):
        Bootstrap(**kwargs)


def test_no_videos_is_a_clear_error():
    with pytest.raises(MetricInputError, match="n_units"):
        bootstrap(lambda u: {"m": 0.0}, 0)
