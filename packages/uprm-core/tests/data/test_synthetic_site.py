"""A site category in the synthetic world (``--site-category FenceClimbing``, issue 23.6): the
climbs over the fence and their look-alikes are written like every other category (videos,
keypoints, scene graphs, ActivityNet ground truth), the world's taxonomy is UCF-Crime's plus
the site's, the climber really rises over the fence, and the worlds without it are byte for
byte what they were (pinned digests, computed with the code before site categories existed)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from uprm.cli._synthetic import synthetic_command
from uprm.synthetic import NORMAL, WorldConfig, generate_world, make_keyed_video, make_video

SITE = "FenceClimbing"
TINY = dict(size=32, fps=4.0, min_duration=6.0, max_duration=7.0)


@pytest.fixture(scope="module")
def site_world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("site")
    (out / "taxonomy.yaml").write_text("stale")  # replaced
    world = generate_world(out, 10, seed=1, progress=False, site_category=SITE, site_fraction=0.5,
                           normal_fraction=0.4, **TINY)
    return out, world


def _objects(frame: dict) -> list[dict]:
    return frame["objects"] + [t[k] for t in frame["triplets"] for k in ("subject", "object")]


def _fence(graph: dict) -> list[float]:
    """The fence's box ``[x0, top, x1, ground]`` (the same in every frame)."""
    boxes = {tuple(o["box"]) for f in graph["frames"] for o in _objects(f) if o["label"] == "fence"}
    assert len(boxes) == 1, boxes
    return list(boxes.pop())


# --------------------------------------------------------------------------- the site world
def test_site_world_has_fence_climbs_with_their_segments_in_the_activitynet_ground_truth(site_world):
    from uprm.data import read_activitynet, read_ucf_crime

    out, world = site_world
    assert world["counts"]["category"][SITE] == 3  # half of the 6 threat videos
    assert world["config"]["site_category"] == SITE and world["config"]["site_fraction"] == 0.5
    anet = {a.video_id: a for a in read_activitynet(out / "annotations" / "activitynet.json")}
    ucf = {a.video_id: a for a in read_ucf_crime(out / "annotations" / "ucf_crime.txt", fps=4.0)}
    climbs = [v for v in world["videos"] if v["category"] == SITE]
    for v in climbs:
        vid = v["video_id"]
        assert vid.startswith(SITE) and v["scene"] in ("parking_lot", "plaza")
        for path in (out / "videos" / f"{vid}.mp4", out / "keypoints" / f"{vid}.json",
                     out / "scene_graphs" / f"{vid}.json"):
            assert path.stat().st_size > 0
        assert anet[vid].category == ucf[vid].category == SITE
        assert [tuple(s) for s in v["segments"]] == [tuple(s) for s in anet[vid].segments] and v["segments"]
        (start, end), = v["segments"]
        assert 1.5 <= end - start <= 3.5
        cause, = anet[vid].causes
        assert cause == v["causes"][0] and re.fullmatch(
            rf"a person in an? \w+ shirt climbing over the fence in the {v['scene'].replace('_', ' ')}", cause)
        assert "climbing over a fence" in v["activities"]
    look_alikes = {a for v in world["videos"] if v["category"] == NORMAL for a in v["activities"]}
    assert look_alikes & {"walking along a fence", "leaning on a fence"}


def test_scene_graphs_show_the_fence_and_the_climb_only_inside_the_segment(site_world):
    out, world = site_world
    for v in world["videos"]:
        graph = json.loads((out / "scene_graphs" / f"{v['video_id']}.json").read_text())
        labels = {o["label"] for f in graph["frames"] for o in _objects(f)}
        assert ("fence" in labels) == (v["scene"] in ("parking_lot", "plaza")), v["video_id"]
        climbing = [f["timestamp"] for f in graph["frames"] for t in f["triplets"] if t["predicate"] == "climbing_over"]
        if v["category"] != SITE:
            assert not climbing, v["video_id"]
            continue
        (start, end), = v["segments"]
        assert climbing and all(start <= t < end for t in climbing)


def test_the_climbers_keypoints_rise_over_the_fence_and_come_down_behind_it(site_world):
    out, world = site_world
    for v in (v for v in world["videos"] if v["category"] == SITE):
        vid = v["video_id"]
        _, top, _, ground = _fence(json.loads((out / "scene_graphs" / f"{vid}.json").read_text()))
        kp = json.loads((out / "keypoints" / f"{vid}.json").read_text())
        times = {im["id"]: im["timestamp"] for im in kp["images"]}
        lowest: dict[int, dict[float, float]] = {}  # track -> time -> the lowest visible joint's y
        for ann in kp["annotations"]:
            joints = np.array(ann["keypoints"]).reshape(17, 3)
            if joints[:, 2].all():
                lowest.setdefault(ann["track_id"], {})[times[ann["image_id"]]] = float(joints[:, 1].max())
        (start, end), = v["segments"]
        over = [track for track, ys in lowest.items() if any(start <= t < end and y < top for t, y in ys.items())]
        assert len(over) == 1, (vid, over)  # one person's whole body is above the top rail, inside the segment
        ys = lowest[over[0]]
        before = [y for t, y in ys.items() if start - 0.6 <= t < start]
        after = [y for t, y in ys.items() if end <= t < end + 0.6]
        assert before and all(y > ground for y in before), (vid, before, ground)  # standing in front of it
        assert after and all(top < y < ground for y in after), (vid, after, top, ground)  # landed behind it


def test_site_world_writes_its_taxonomy_ucf_crime_and_the_site_category(site_world):
    from uprm.data import read_activitynet
    from uprm.data.instructions import build_instructions
    from uprm.taxonomy import UnknownCategoryError, load_taxonomy

    out, world = site_world
    assert world["taxonomy"] == "taxonomy.yaml"
    default = load_taxonomy()
    taxonomy = load_taxonomy(out / "taxonomy.yaml")
    assert taxonomy.names == (*default.threats, SITE, NORMAL)
    assert all(taxonomy.category(c) == default.category(c) for c in default.names)
    assert taxonomy.severity(SITE) == "high" and taxonomy.causes(SITE) and taxonomy.check("trespassing") == SITE
    assert SITE not in default
    anns = read_activitynet(out / "annotations" / "activitynet.json")
    records = build_instructions(anns, tasks=("identify",), taxonomy=out / "taxonomy.yaml")
    assert {r["video_id"] for r in records} == {v["video_id"] for v in world["videos"]}
    with pytest.raises(UnknownCategoryError, match="FenceClimbing"):  # why the world writes it
        build_instructions(anns, tasks=("identify",), taxonomy=load_taxonomy())


# --------------------------------------------------------------------------- the worlds without it
def _digests(out: Path, world: dict, video) -> tuple[str, str]:
    """SHA-256 of every JSON and text file of a world, and of every video's rendered frames."""
    files = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.suffix in (".json", ".txt")):
        files.update(path.relative_to(out).as_posix().encode())
        files.update(path.read_bytes())
    frames = hashlib.sha256()
    for v in world["videos"]:
        frames.update(video(v).frames().tobytes())
    return files.hexdigest(), frames.hexdigest()


def test_a_default_world_is_byte_for_byte_what_it_was_before_site_categories(tmp_path):
    # the digests of this world from the code before site categories (and before the keyed
    # scene shared the default scene's rendering); every category and Normal are in it
    (tmp_path / "taxonomy.yaml").write_text("stale")
    config = WorldConfig(normal_fraction=0.25, **TINY)  # type: ignore[arg-type]
    world = generate_world(tmp_path, 8, seed=5, progress=False, config=config)
    assert len(world["counts"]["category"]) == 7 and "taxonomy" not in world
    assert "site_category" not in world["config"] and not (tmp_path / "taxonomy.yaml").exists()
    digests = _digests(tmp_path, world, lambda v: make_video(v["index"], 5, v["category"], v["video_id"], config))
    assert digests == ("5d83d464c8b050994b5124f20a094595fc87411b309ccdf6b2644c98260d8795",
                       "1b134c01e026b9edf9bc9c2e79e0052a5d304e281661fe0945f0c0aeb32b3cf4")
    # a share without a site category changes nothing (the configuration is all a video reads)
    assert WorldConfig(site_fraction=0.9, normal_fraction=0.25, **TINY).to_dict() == config.to_dict()  # type: ignore[arg-type]


def test_a_keyed_world_is_byte_for_byte_what_it_was_before_its_scene_shared_the_rendering(tmp_path):
    config = WorldConfig(design="keyed", **TINY)  # type: ignore[arg-type]
    world = generate_world(tmp_path, 8, seed=5, progress=False, config=config)
    digests = _digests(tmp_path, world, lambda v: make_keyed_video(
        v["keyed"]["pair"], 5, v["keyed"]["category"], v["keyed"]["role"] == "threat", v["video_id"], config,
        v["index"]))
    assert digests == ("c44742b00fd7978fb8014d70927b8d43bb20df07e715b484597b16b0a74730f1",
                       "79526ef9dea843c26de59fd4b116f1c1291b786689bb3aa93c2e50ff1c4a17ec")


# --------------------------------------------------------------------------- the command line and errors
def test_cli_renders_a_site_world_and_names_its_taxonomy(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(synthetic_command, [
        "--videos", "4", "--size", "32", "--fps", "4", "--duration", "6,6", "--normal-fraction", "0.5",
        "--categories", "Fighting", "--site-category", SITE, "--site-fraction", "0.5", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"categories: {SITE} 1, Fighting 1, Normal 2" in result.output
    assert f"taxonomy: {out / 'taxonomy.yaml'}" in result.output
    assert json.loads((out / "world.json").read_text())["config"]["categories"] == ["Fighting"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site-fraction", "0.5"], "give --site-category too"),
        (["--site-category", "Loitering"], "'Loitering' is not 'FenceClimbing'"),
        (["--site-category", SITE, "--site-fraction", "0"], "0.0<x<=1.0"),
        (["--site-category", SITE, "--design", "keyed", "--videos", "8"], "a site category is for the default design"),
    ],
)
def test_cli_rejects_what_a_site_category_cannot_do(tmp_path, args, message):
    result = CliRunner().invoke(synthetic_command, ["--videos", "2", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()


def test_api_rejects_an_unknown_or_absent_site_category():
    with pytest.raises(ValueError, match="unknown site category 'Loitering'; choose from"):
        WorldConfig(site_category="Loitering")
    with pytest.raises(ValueError, match=r"site_fraction must be in \(0, 1\]"):
        WorldConfig(site_category=SITE, site_fraction=1.5)
    with pytest.raises(ValueError, match="unknown category 'FenceClimbing'"):  # not in a world without it
        make_video(0, 0, SITE)
    video = make_video(0, 0, SITE, config=WorldConfig(site_category=SITE, **TINY))  # type: ignore[arg-type]
    assert video.category == SITE and video.scene.fence is not None and video.segments
