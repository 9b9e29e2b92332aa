"""The ablation's intervals, paired differences from full, Holm's correction, the
probability of improvement, the table's marks and the forest plot, on a made-up ablation
whose answer is known: per-video units made by the evaluation's own scoring
(:func:`uprm.evaluation.scoring.score`) from hand-made predictions.

The world: 30 videos of 20 s — 10 Fighting, 10 Arson (a threat from 5 s to 15 s) and
10 Normal. ``full`` finds each threat with a segment whose start is drawn per (seed,
video) in 5-9 s; ``wo_pose`` draws its Arson segments from the same distribution
(independently) but predicts nothing on Fighting (every Fighting second missed);
``wo_ptr`` draws all its segments from full's distribution, independently (a variant no
better and no worse).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from uprm.ablation.effects import Effects, check_same_videos, measure, metric_key
from uprm.ablation.errors import AblationError
from uprm.ablation.forest import effects_figure, plot_effects
from uprm.ablation.table import MARK, Column, Row, markdown, write_tables
from uprm.evaluation.intervals import VideoUnits
from uprm.evaluation.scoring import ScoreInputs, score
from uprm.evaluation.truth import VideoTruth
from uprm.metrics.uncertainty import Bootstrap

SEEDS = (0, 1, 2)
CATEGORIES = ("Fighting", "Arson", "Normal")
VARIANTS = ("full", "wo_pose", "wo_ptr")
WORDS = ["a", "man", "hits", "another", "near", "the", "door", "while", "fire", "starts", "in", "bin"]


def _truth() -> dict[str, VideoTruth]:
    out = {}
    for i in range(30):
        category = CATEGORIES[i // 10]
        segments = [] if category == "Normal" else [(5.0, 15.0)]
        out[f"{category.lower()}{i % 10}"] = VideoTruth(f"{category.lower()}{i % 10}", 20.0, segments, category)
    return out


def _units(variant: str, seed: int, drop: tuple[str, ...] = (), texts: bool = False) -> VideoUnits:
    """One run's units: its predictions scored by the evaluation's own code."""
    truth = {v: t for v, t in _truth().items() if v not in drop}
    draw = np.random.default_rng(1000 * seed + VARIANTS.index(variant))
    predictions, answers, videos = [], [], []
    for vid, t in truth.items():
        start = float(draw.uniform(5.0, 9.0))
        if t.category == "Normal" or (variant == "wo_pose" and t.category == "Fighting"):
            continue
        predictions.append((vid, start, 15.0, float(draw.uniform(0.5, 1.0))))
        if texts:
            answers.append((" ".join(draw.choice(WORDS, 8)), " ".join(draw.choice(WORDS, 8))))
            videos.append(vid)
    inputs = ScoreInputs(truth, predictions, (0.1, 0.5, 0.7), texts=answers, text_videos=videos, sbert=False)
    score(inputs)
    return inputs.units


def _grid(**drops: tuple[str, ...]) -> dict[str, dict[int, VideoUnits]]:
    return {v: {s: _units(v, s, drops.get(f"{v}{s}", ())) for s in SEEDS} for v in VARIANTS}


@pytest.fixture(scope="module")
def effects() -> Effects:
    return measure(_grid(), Bootstrap(samples=300, seed=4), order=VARIANTS)


def test_a_variant_blind_to_a_category_differs_there_and_not_elsewhere(effects):
    hurt = effects.vs_full["wo_pose"]
    fighting = hurt["per_category/Fighting/fnr"]
    assert fighting.a == 100.0 and fighting.delta == pytest.approx(100.0 - fighting.b)  # delta = variant - full
    assert fighting.delta > 0 and fighting.ci[0] > 0 and fighting.excludes_zero
    assert hurt["fnr"].ci[0] > 0 and hurt["f2"].ci[1] < 0  # it misses more, it scores less
    arson = hurt["per_category/Arson/fnr"]  # wo_pose is as good as full on Arson
    assert arson.delta != 0.0 and arson.ci[0] < 0 < arson.ci[1] and not arson.excludes_zero
    assert hurt["per_category/Arson/fnr"].p > 0.05
    same = effects.vs_full["wo_ptr"]  # the same distribution, other draws
    for key in ("fnr", "f2", "map_average", "per_category/Fighting/fnr", "per_category/Arson/fnr"):
        assert same[key].delta != 0.0 and same[key].ci[0] < 0 < same[key].ci[1], key
    assert "full" not in effects.vs_full


def test_each_metric_is_the_mean_over_seeds_with_an_interval_around_it(effects):
    grid = _grid()
    for variant in VARIANTS:
        everything = np.arange(30)
        for flat in ("fnr", "f2", "map/0.7", "per_category/Arson/f2"):
            per_seed = [grid[variant][s].statistic(everything)[flat] for s in SEEDS]
            estimate = effects.estimates[variant][metric_key(flat)]
            assert estimate.value == pytest.approx(np.mean(per_seed))
            assert estimate.ci[0] <= estimate.value <= estimate.ci[1] and estimate.ci[0] < estimate.ci[1]
    assert set(effects.estimates["full"]) >= {"fnr", "f2", "map_0.1", "map_0.5", "map_0.7", "map_average"}
    assert effects.videos == sorted(_truth()) and effects.seeds == {v: list(SEEDS) for v in VARIANTS}


def test_the_seeds_widen_the_interval():
    """Seeds that disagree: the interval pools them (videos and seeds resampled)."""
    one = {"full": {0: _units("full", 0)}}
    spread = {"full": {0: _units("full", 0), 1: _units("wo_pose", 1)}}  # one seed blind to Fighting
    narrow = measure(one, Bootstrap(samples=300, seed=1)).estimates["full"]["fnr"]
    wide = measure(spread, Bootstrap(samples=300, seed=1)).estimates["full"]["fnr"]
    assert (wide.ci[1] - wide.ci[0]) > 2 * (narrow.ci[1] - narrow.ci[0])


def _holm_by_hand(p: dict[str, float]) -> dict[str, float]:
    ordered = sorted(p, key=p.get)
    out, running = {}, 0.0
    for rank, name in enumerate(ordered):
        running = max(running, min(1.0, (len(p) - rank) * p[name]))
        out[name] = running
    return out


def _columns() -> list[Column]:
    return [Column("fnr", "FNRs↓"), Column("f2", "F2"), Column("map_average", "Average")]


def _rows() -> list[Row]:
    """The table's rows as the runs' reports give them (each seed's metric on all videos)."""
    grid = _grid()
    values = {v: [grid[v][s].statistic(np.arange(30)) for s in SEEDS] for v in VARIANTS}
    return [Row(v, list(SEEDS), {k: [r[k.replace("_", "/")] for r in values[v]] for k in ("fnr", "f2", "map_average")})
            for v in VARIANTS]


def test_the_json_holds_the_differences_from_full_and_holm_checks_by_hand(effects, tmp_path):
    paths = write_tables(tmp_path, _columns(), _rows(), [], {}, effects)
    saved = json.loads(paths["json"].read_text())
    rows = {r["variant"]: r for r in saved["rows"]}
    assert "vs_full" not in rows["full"] and set(rows["wo_pose"]["vs_full"]) >= {"fnr", "map_0.1", "map_average"}
    assert saved["bootstrap"]["samples"] == 300 and saved["bootstrap"]["delta"] == "variant − full"
    assert saved["bootstrap"]["unit"] == "video and seed"
    for key in ("fnr", "f2", "map_average", "per_category/Fighting/fnr", "per_category/Arson/f2"):
        p = {v: rows[v]["vs_full"][key]["p"] for v in ("wo_pose", "wo_ptr")}
        assert {v: rows[v]["vs_full"][key]["p_holm"] for v in p} == pytest.approx(_holm_by_hand(p))
    fighting = rows["wo_pose"]["vs_full"]["per_category/Fighting/fnr"]
    assert fighting["p"] < 0.01 and fighting["p_holm"] == pytest.approx(min(1.0, 2 * fighting["p"]))
    assert fighting["delta"] == pytest.approx(fighting["variant"] - fighting["full"])
    assert rows["wo_pose"]["metrics"]["fnr"]["ci"] == list(effects.estimates["wo_pose"]["fnr"].ci)
    assert rows["wo_pose"]["intervals"]["per_category/Arson/fnr"]["ci"] is not None
    assert rows["wo_pose"]["p_improvement"] == effects.improvement["wo_pose"]
    header = paths["csv"].read_text().splitlines()[0].split(",")
    assert {"fnr_low", "fnr_high", "fnr_delta", "fnr_delta_low", "fnr_delta_high", "fnr_p_holm",
            "p_improvement"} <= set(header)


def _by_hand(full: np.ndarray, other: np.ndarray) -> float:
    """Mean over tasks of P(x > y) + P(x = y) / 2 over all pairs of runs."""
    per_task = [np.mean([(x > y) + 0.5 * (x == y) for x in full[t] for y in other[t]]) for t in range(len(full))]
    return float(np.mean(per_task))


def test_probability_of_improvement_over_categories_and_seeds(effects):
    grid = _grid()
    assert effects.tasks == ["Arson", "Fighting"]  # Normal has no threat second

    def scores(variant):
        return np.array([[grid[variant][s].statistic(np.arange(30))[f"per_category/{t}/f2"] for s in SEEDS]
                         for t in effects.tasks])

    for variant in ("wo_pose", "wo_ptr"):
        assert effects.improvement[variant] == pytest.approx(_by_hand(scores("full"), scores(variant)))
    blind = scores("wo_pose")
    assert (blind[1] == 0).all() and (scores("full")[1] > 0).all()  # full beats it at every pair on Fighting


def test_the_table_shows_intervals_marks_and_the_differences(effects):
    text = markdown(_columns(), _rows(), ["a note"], effects)
    lines = text.splitlines()
    main = {line.split(" | ")[0].lstrip("| "): line for line in lines[:5] if line.startswith("| ")}
    fnr = effects.estimates["wo_pose"]["fnr"]
    assert f"| {fnr.value:.2f} [{fnr.ci[0]:.2f}, {fnr.ci[1]:.2f}] {MARK} |" in main["w/o HPE (pose)"]  # misses more
    assert MARK not in main["w/o PTR (basic router)"] and MARK not in main["UPRM (full)"]
    assert main["UPRM (full)"].rstrip(" |").endswith("–")  # no P(full better) of full against itself
    assert f"| {effects.improvement['wo_pose']:.2f} |" in main["w/o HPE (pose)"]
    assert "| Variant − UPRM (full) | Δ FNRs↓ | Δ F2 | Δ Average |" in text
    d = effects.vs_full["wo_pose"]["fnr"]
    assert f"{d.delta:+.2f} [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}] {MARK}" in text
    assert "draws the 30 test videos with replacement and the 3 seed(s) with replacement" in text
    assert "Holm-corrected" in text and "per-category F2" in text and text.rstrip().endswith("- a note")


def test_without_resamples_the_table_keeps_mean_and_std():
    plain = measure(_grid(), Bootstrap(samples=0), order=VARIANTS)
    assert plain.vs_full["wo_pose"]["fnr"].ci is None and plain.vs_full["wo_pose"]["fnr"].delta > 0
    rows = [Row("full", [0, 1], {"fnr": [50.0, 54.0], "f2": [60.0, 62.0], "map_average": [40.0, None]})]
    text = markdown(_columns(), rows, (), plain)
    assert "| UPRM (full) | 0,1 | 52.00 ± 2.83 | 61.00 ± 1.41 | 40.00 | – | – |" in text
    assert MARK not in text and "Δ FNRs↓" not in text and "no intervals: --bootstrap 0" in text


def test_the_forest_plot_has_a_panel_per_metric(effects, tmp_path):
    columns = [("fnr", "FNRs↓"), ("f2", "F2"), ("map_average", "Average"), ("sbert", "SB")]  # SB: never scored
    figure = effects_figure(effects, columns, {"wo_pose": "w/o HPE"})
    assert len(figure.axes) == 3
    assert [ax.get_title() for ax in figure.axes] == ["FNRs↓ (worse →)", "F2 (← worse)", "Average (← worse)"]
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["w/o HPE", "wo_ptr"]
    path = plot_effects(effects, columns, {}, tmp_path / "ablation_effects.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_effects(measure(_grid(), Bootstrap(samples=0)), columns, {}, tmp_path / "none.png") is None


def test_runs_on_other_videos_are_refused_by_name():
    grid = _grid(wo_pose1=("arson3", "normal7"))
    with pytest.raises(AblationError, match=r"full/seed0 and wo_pose/seed1 did not evaluate the same videos.*only "
                                            r"in full/seed0: arson3, normal7; only in wo_pose/seed1: none"):
        measure(grid, Bootstrap(samples=10))
    other_truth = _grid()
    other_truth["wo_ptr"][2].categories[0] = "Arson"  # scored against another ground truth
    with pytest.raises(AblationError, match=r"full/seed0 and wo_ptr/seed2 were scored against different ground truth "
                                            r".* for 1 video\(s\): fighting0"):
        measure(other_truth, Bootstrap(samples=10))
    assert len(check_same_videos(_grid())) == 30
