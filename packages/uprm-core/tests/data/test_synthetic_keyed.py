"""The keyed world (``design="keyed"``, ``uprm data synthetic --design keyed``): each threat
and its twin, scripted from one random stream, differ in exactly the channel design.json
names — checked here directly on generated pixels, keypoints and scene graphs — and the
world is written, split and balanced so the rest of the library reads it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from uprm.cli._synthetic import synthetic_command
from uprm.synthetic import KEYED_CATEGORIES, KEYED_DESIGN, NORMAL, WorldConfig, generate_world, make_keyed_video
from uprm.synthetic.keyed import CHANNELS, KeyedScene, keyed_plan, keyed_splits
from uprm.synthetic.scene import BLEND_S

CONFIG = WorldConfig(design="keyed", size=64, min_duration=8.0, max_duration=10.0)
PAIRS = [(category, pair, seed) for seed in (0, 7) for pair, category in enumerate(KEYED_CATEGORIES * 2)]


def _pair(category: str, pair: int, seed: int, config: WorldConfig = CONFIG):
    """The threat and the twin of one pair, under one id (so their sidecars can be compared whole)."""
    return (make_keyed_video(pair, seed, category, True, "same_id", config),
            make_keyed_video(pair, seed, category, False, "same_id", config))


def _inputs(video) -> dict:
    return {"videos": video.frames(), "keypoints": video.keypoints_json(), "scene_graphs": video.scene_graph_json()}


def _equal(a, b) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else a == b


# --------------------------------------------------------------------------- the invariants, per category
@pytest.mark.parametrize(("category", "pair", "seed"), PAIRS)
def test_threat_and_twin_differ_in_exactly_the_channel_the_design_names(category, pair, seed):
    threat, twin = _pair(category, pair, seed)
    assert threat.category == category and twin.category == NORMAL
    assert threat.segments and not twin.segments
    # what people do (the stage-1 pose captions of uprm.ablation.stage1) differs only when the pose does
    assert (threat.activities != twin.activities) == (KEYED_DESIGN[category]["channel"] == "pose")
    a, b = _inputs(threat), _inputs(twin)
    expected = KEYED_DESIGN[category]["inputs"]
    assert {name: "same" if _equal(a[name], b[name]) else "differ" for name in a} == expected


def test_each_category_is_keyed_to_one_channel_and_all_four_channels_are_used():
    assert set(KEYED_DESIGN) == set(KEYED_CATEGORIES)
    assert {d["channel"] for d in KEYED_DESIGN.values()} == set(CHANNELS) == {"pose", "relation", "background",
                                                                             "coarse"}
    for d in KEYED_DESIGN.values():
        assert list(d["inputs"].values()).count("differ") == 1 and d["twin"] and d["what differs"]
        if d["channel"] in ("pose", "relation"):  # the pixels never show these
            assert d["inputs"]["videos"] == "same"


@pytest.mark.parametrize("pair", [0, 4, 8])
def test_pose_keyed_fight_and_dance_differ_only_in_the_fighters_joints_during_the_bout(pair):
    threat, twin = _pair("Fighting", pair, 3)
    (start, end), = threat.segments
    a, b = threat.keypoints_json(), twin.keypoints_json()
    assert a["images"] == b["images"]
    by_frame = {}
    for x, y in zip(a["annotations"], b["annotations"], strict=True):
        assert (x["image_id"], x["track_id"]) == (y["image_id"], y["track_id"])
        if x["keypoints"] != y["keypoints"]:
            by_frame.setdefault(x["image_id"], set()).add(x["track_id"])
    fighters = {int(p.key[len("person"):]) for p in threat.scene.persons[:2]}
    times = {i / threat.fps for i in by_frame}
    assert all(tracks <= fighters for tracks in by_frame.values())
    assert all(start - 1e-9 <= t <= end + BLEND_S + 1e-9 for t in times), (sorted(times), start, end)
    in_bout = [i for i in range(threat.num_frames) if start <= i / threat.fps < end]
    assert len(set(in_bout) & set(by_frame)) >= 0.9 * len(in_bout)


@pytest.mark.parametrize("pair", [1, 5, 9])
def test_relation_keyed_graphs_differ_only_in_who_owns_the_bag_the_passer_by_carries(pair):
    threat, twin = _pair("Stealing", pair, 3)
    (start, end), = threat.segments

    def without_ownership(graph):
        return [[t for t in f["triplets"] if t["predicate"] != "belonging_to"] for f in graph["frames"]]

    a, b = threat.scene_graph_json(), twin.scene_graph_json()
    assert without_ownership(a) == without_ownership(b)
    checked = 0
    for fa, fb in zip(a["frames"], b["frames"]):
        carried = [t for t in fa["triplets"] if t["predicate"] in ("carrying", "holding")]
        if not (start <= fa["timestamp"] < end and carried):
            continue
        carrier = carried[0]["subject"]["box"]
        owner_a = [t["object"]["box"] for t in fa["triplets"] if t["predicate"] == "belonging_to"]
        owner_b = [t["object"]["box"] for t in fb["triplets"] if t["predicate"] == "belonging_to"]
        assert owner_b == [carrier] and owner_a and owner_a != [carrier], fa["timestamp"]
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("pair", [2, 6, 10])
def test_background_keyed_pixels_differ_only_at_the_bin_while_it_burns_or_glows(pair):
    threat, twin = _pair("Arson", pair, 3)
    (start, end), = threat.segments
    glow, = threat.scene.glows
    x0, _, x1, y1 = threat.scene.bin.box
    cx, reach = (x0 + x1) / 2, glow.width / 2 + 2  # + 2 px: the downsampling's blur
    changed_frames = 0
    for i in range(threat.num_frames):
        t = i / threat.fps
        diff = np.abs(threat.scene.render(t).astype(int) - twin.scene.render(t).astype(int)).max(-1)
        ys, xs = np.nonzero(diff)
        if len(xs) == 0:
            continue
        changed_frames += 1
        assert start - 1e-9 <= t <= end, (t, start, end)
        assert (np.abs(xs + 0.5 - cx) <= reach).all() and (ys <= y1 + 2).all()
    assert changed_frames >= 0.8 * (min(end, threat.duration) - start) * threat.fps


@pytest.mark.parametrize("pair", [3, 7, 11])
def test_coarse_keyed_pixels_differ_in_the_lane_from_the_moment_the_cars_part_ways(pair):
    threat, twin = _pair("RoadAccidents", pair, 3)
    (start, _), = threat.segments
    impact = start + 0.3
    lane = threat.scene.layout.drive_y * threat.scene.height
    car_height = max(c.box(0)[3] - c.box(0)[1] for c in threat.scene.cars)
    first = None
    for i in range(threat.num_frames):
        t = i / threat.fps
        diff = np.abs(threat.scene.render(t).astype(int) - twin.scene.render(t).astype(int)).max(-1)
        ys, _ = np.nonzero(diff)
        if len(ys):
            first = t if first is None else first
            assert ((ys >= lane - car_height - 2) & (ys <= lane + 2)).all()
    assert first is not None and impact - 0.9 - 1e-9 <= first <= impact + 0.5


def test_pixels_are_a_function_of_positions_not_poses():
    video = make_keyed_video(0, 1, "Fighting", True, config=CONFIG)
    scene = video.scene
    assert isinstance(scene, KeyedScene)
    t = video.segments[0][0] + 1.0
    states = scene.person_states(t)
    frame = scene.render(t)
    bent = {k: type(s)(**{**s.__dict__, "joints": s.joints * 0.5 + 3.0, "head": s.head + 7.0})
            for k, s in states.items()}
    scene._states[t] = bent  # the same people at the same places with other limbs
    assert np.array_equal(scene.render(t), frame)
    assert scene.boxes(t, bent) == scene.boxes(t, states)  # and the scene graph's boxes


def test_a_pose_probe_tells_the_fight_from_the_dance_on_held_out_pairs():
    """Eight frames a video (as the model samples them): each person's joints about the
    hips and their motion over one frame, over body height; a small MLP (max over people)
    learns fight frames from the twins' dance frames of other pairs."""
    rows, labels, pairs = [], [], []
    for pair in range(0, 4 * 14, 4):
        threat_video, twin = _pair("Fighting", pair, 11)
        (start, end), = threat_video.segments  # the twin dances over the same seconds
        for v, threat in ((threat_video, True), (twin, False)):
            for k in range(16):
                t = round((start + (k + 0.5) * (end - start) / 16) * v.fps) / v.fps
                now, before = v.scene.person_states(t), v.scene.person_states(t - 1 / v.fps)
                people = [np.concatenate([((s.joints - s.joints[[11, 12]].mean(0)) / s.height).ravel(),
                                          ((s.joints - before[key].joints) / s.height).ravel()])
                          for key, s in now.items() if key in before]
                rows.append(np.stack(people))
                labels.append(float(threat))
                pairs.append(pair)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: threads only contend
    try:
        accuracy = _fit_probe(rows, labels, pairs)
    finally:
        torch.set_num_threads(threads)
    assert accuracy >= 0.9, accuracy


def _fit_probe(rows, labels, pairs) -> float:
    """Held-out accuracy of a small MLP (max over people) trained on the pairs below 40."""
    width = max(len(r) for r in rows)
    x = torch.zeros(len(rows), width, 68)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for j, r in enumerate(rows):
        x[j, : len(r)], mask[j, : len(r)] = torch.tensor(r, dtype=torch.float32), True
    y, pairs_t = torch.tensor(labels), torch.tensor(pairs)
    train, test = pairs_t < 40, pairs_t >= 40
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(68, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(mlp.parameters(), 3e-3)

    def score(xs, ms):
        return mlp(xs).squeeze(-1).masked_fill(~ms, -1e4).amax(-1)

    for _ in range(200):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(score(x[train], mask[train]), y[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = score(x[test], mask[test]) > 0
    return (pred == y[test].bool()).float().mean().item()


# --------------------------------------------------------------------------- the world: plan, splits, files
def test_the_default_keyed_world_has_64_test_videos_balanced_and_pairs_never_split():
    config = WorldConfig(design="keyed")
    assert config.categories == KEYED_CATEGORIES and config.normal_fraction == 0.5
    for videos, test_pairs in ((400, 8), (200, 4), (800, 15)):
        slots = keyed_plan(videos, config)
        splits = keyed_splits(slots, config.splits, seed=0)
        for category in KEYED_CATEGORIES:
            mine = [s for s in slots if s.category == category]
            assert sum(s.threat for s in mine) == sum(not s.threat for s in mine) == videos // 8
            assert sum(splits[s.video_id] == "test" for s in mine) == 2 * test_pairs
        for threat, twin in zip(slots[::2], slots[1::2]):
            assert (threat.pair, threat.threat, twin.threat) == (twin.pair, True, False)
            assert splits[threat.video_id] == splits[twin.video_id]
    with pytest.raises(ValueError, match="a positive multiple of 8, got 12"):
        keyed_plan(12, config)


def test_keyed_config_validates_and_the_default_config_is_unchanged():
    assert "design" not in WorldConfig().to_dict()
    assert WorldConfig(design="keyed").to_dict()["design"] == "keyed"
    assert WorldConfig(design="keyed", categories=("Arson", "Fighting")).categories == ("Arson", "Fighting")
    with pytest.raises(ValueError, match="design must be one of"):
        WorldConfig(design="keyd")
    with pytest.raises(ValueError, match=r"unknown categories \['Assault'\] for the keyed design"):
        WorldConfig(design="keyed", categories=("Assault",))
    with pytest.raises(ValueError, match="unknown keyed category 'Assault'"):
        make_keyed_video(0, 0, "Assault", True)


@pytest.fixture(scope="module")
def keyed_world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("keyed")
    world = generate_world(out, 8, seed=2, progress=False, design="keyed", size=48, min_duration=6.0,
                           max_duration=7.0, splits=(1.0, 0.0, 1.0))
    return out, world


def test_keyed_world_files_keep_each_pair_identical_where_the_design_says(keyed_world):
    from uprm.data import load_clip

    out, world = keyed_world
    design = json.loads((out / "design.json").read_text())
    assert world["design"] == "design.json" and world["config"]["design"] == "keyed"
    for p in design["pairs"]:
        inputs = design["categories"][p["category"]]["inputs"]
        for folder, ext in (("videos", ".mp4"), ("keypoints", ".json"), ("scene_graphs", ".json")):
            a, b = ((out / folder / f"{p[role]}{ext}").read_bytes() for role in ("threat", "twin"))
            if ext == ".json":  # the files name their own video
                a, b = (x.replace(p[role].encode(), b"ID") for x, role in ((a, "threat"), (b, "twin")))
            assert (a == b) == (inputs[folder] == "same"), (p["category"], folder)
        if inputs["videos"] == "same":  # what the coarse tower gets: the same decoded frames
            clips = [load_clip(out / "videos" / f"{p[role]}.mp4", 8) for role in ("threat", "twin")]
            assert torch.equal(clips[0].frames, clips[1].frames)


def test_keyed_world_is_written_as_any_world_with_its_pairs_in_world_json(keyed_world):
    from uprm.data import read_activitynet

    out, world = keyed_world
    design = json.loads((out / "design.json").read_text())
    by_id = {v["video_id"]: v for v in world["videos"]}
    anet = {a.video_id: a for a in read_activitynet(out / "annotations" / "activitynet.json")}
    for p in design["pairs"]:
        threat, twin = by_id[p["threat"]], by_id[p["twin"]]
        assert threat["keyed"] == {"category": p["category"], "channel": p["channel"], "role": "threat",
                                   "pair": p["pair"]}
        assert twin["keyed"] == dict(threat["keyed"], role="twin")
        assert anet[p["threat"]].category == p["category"] and anet[p["twin"]].category == NORMAL
        assert threat["split"] == twin["split"] == p["split"] == "test"  # 1 pair a category, a tie goes to test
        assert (threat["scene"], threat["duration"]) == (twin["scene"], twin["duration"])
    records = json.loads((out / "instructions" / "synthetic_test.json").read_text())
    assert {r["video_id"] for r in records} == set(by_id)
    assert design["counts"]["test"] == {c: {"threat": 1, "twin": 1} for c in KEYED_CATEGORIES}
    assert list(design["counts"]) == ["train", "val", "test"] and not any(
        r["threat"] + r["twin"] for split in ("train", "val") for r in design["counts"][split].values())
    assert not list(out.rglob("*.tmp"))


def test_a_default_world_keeps_its_fingerprint_and_drops_a_stale_design(tmp_path):
    (tmp_path / "design.json").write_text("{}")
    world = generate_world(tmp_path, 1, seed=5, progress=False, size=48, min_duration=6.0, max_duration=7.0)
    assert not (tmp_path / "design.json").exists() and "design" not in world and "design" not in world["config"]
    meta = json.loads(next((tmp_path / "meta").iterdir()).read_text())
    assert meta["fingerprint"] == "05c385433119bdfb"  # what this configuration gave before designs existed
    assert "keyed" not in meta


# --------------------------------------------------------------------------- the command line
def test_cli_renders_a_tiny_keyed_world_with_a_consistent_design(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(synthetic_command, [
        "--design", "keyed", "--videos", "8", "--size", "32", "--fps", "4", "--duration", "6,6",
        "--splits", "1,0,1", "--seed", "4", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "keyed to:   Fighting pose, Stealing relation, Arson background, RoadAccidents coarse" in result.output
    assert "test videos: 8 (Fighting 1 + 1 twins" in result.output
    design = json.loads((out / "design.json").read_text())
    assert {c: d["channel"] for c, d in design["categories"].items()} == {
        "Fighting": "pose", "Stealing": "relation", "Arson": "background", "RoadAccidents": "coarse"}
    assert set(design["channels"]) == {"pose", "relation", "background", "coarse"}
    world = json.loads((out / "world.json").read_text())
    ids = {v["video_id"] for v in world["videos"]}
    assert {i for p in design["pairs"] for i in (p["threat"], p["twin"])} == ids and len(ids) == 8
    for vid in ids:
        frames = json.loads((out / "keypoints" / f"{vid}.json").read_text())["images"]
        graph = json.loads((out / "scene_graphs" / f"{vid}.json").read_text())
        assert (out / "videos" / f"{vid}.mp4").stat().st_size > 0
        assert len(frames) == len(graph["frames"]) == 24 and graph["width"] == 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--videos", "10"], "a positive multiple of 8, got 10"),
        (["--videos", "8", "--normal-fraction", "0.3"], "--normal-fraction does not apply"),
        (["--videos", "8", "--categories", "Assault"], "unknown categories ['Assault'] for the keyed design"),
    ],
)
def test_cli_rejects_what_the_keyed_design_cannot_do(tmp_path, args, message):
    result = CliRunner().invoke(synthetic_command, ["--design", "keyed", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()
