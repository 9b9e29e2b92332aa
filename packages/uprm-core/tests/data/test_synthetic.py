"""The synthetic surveillance world: layout, annotations, determinism, resumability,
true signals that agree with the pixels, and threats learnable from pose and relations
but not from colour."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from uprm.cli._synthetic import synthetic_command
from uprm.coco import COCO_KEYPOINTS
from uprm.synthetic import (
    NORMAL,
    THREAT_CATEGORIES,
    WorldConfig,
    generate_world,
    make_video,
)
from uprm.synthetic.body import MOTIONS, forward_kinematics

THREAT_PREDICATES = {"hitting", "kicking", "pushing", "grabbing", "on_fire"}
PREDICATES = THREAT_PREDICATES | {"near", "talking_to", "holding", "carrying", "chasing", "touching", "opening"}
LABELS = {"person", "car", "bag", "bin", "cone", "door", "fire"}
SMALL = dict(min_duration=8.0, max_duration=10.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world")
    summary = generate_world(out, 9, seed=5, progress=False, normal_fraction=1 / 3, **SMALL)
    return out, summary


def test_world_writes_every_file_of_the_documented_layout(world):
    out, summary = world
    videos = summary["videos"]
    assert len(videos) == 9
    assert summary["counts"]["category"][NORMAL] == 3
    assert sum(v for k, v in summary["counts"]["category"].items() if k != NORMAL) == 6
    for v in videos:
        vid = v["video_id"]
        for path in (out / "videos" / f"{vid}.mp4", out / "keypoints" / f"{vid}.json", out / "scene_graphs" / f"{vid}.json"):
            assert path.is_file() and path.stat().st_size > 0, path
        assert 8.0 <= v["duration"] <= 10.0
        assert v["num_frames"] == round(v["duration"] * v["fps"])
        assert (v["category"] == NORMAL) == (not v["segments"])
        for s, e in v["segments"]:
            assert 0 <= s < e <= v["duration"]
    assert not list(out.rglob("*.tmp")), "no temporary file may be left behind"
    assert {p.name for p in (out / "instructions").iterdir()} == {f"synthetic_{s}.json" for s in summary["counts"]["split"]}


def test_annotations_read_back_with_the_real_readers(world):
    from uprm.data import read_activitynet, read_ucf_crime

    out, summary = world
    by_id = {v["video_id"]: v for v in summary["videos"]}
    ucf = {a.video_id: a for a in read_ucf_crime(out / "annotations" / "ucf_crime.txt", fps=8.0)}
    anet = {a.video_id: a for a in read_activitynet(out / "annotations" / "activitynet.json")}
    causes = json.loads((out / "annotations" / "causes.json").read_text())
    assert set(ucf) == set(anet) == set(by_id)
    for vid, v in by_id.items():
        assert ucf[vid].category == anet[vid].category == v["category"]
        assert len(ucf[vid].segments) == len(v["segments"][:2])
        for (s, e), (us, ue) in zip(v["segments"], ucf[vid].segments):
            assert abs(us - s) <= 0.5 / 8 + 1e-9 and abs(ue - e) <= 0.5 / 8 + 1e-9  # frame indices at 8 fps
        assert [tuple(s) for s in v["segments"]] == [tuple(s) for s in anet[vid].segments]
        assert causes.get(vid, []) == v["causes"]
        if v["category"] != NORMAL:
            assert len(v["causes"]) == 1 and "person" in v["causes"][0] and v["scene"].replace("_", " ") in v["causes"][0]


def test_instructions_cover_every_video_once_with_answers_and_sidecars(world):
    from uprm.data.instructions import format_seconds

    out, summary = world
    by_id = {v["video_id"]: v for v in summary["videos"]}
    seen: dict[str, str] = {}
    for split, rel in summary["instructions"].items():
        path = out / rel
        for rec in json.loads(path.read_text()):
            vid = rec["video_id"]
            assert seen.setdefault(vid, split) == split, f"{vid} is in two splits"
            v = by_id[vid]
            for key in ("video", "keypoints", "scene_graph"):
                assert (path.parent / rec[key]).resolve().is_file(), (vid, key)
            assert rec["window"] == [0.0, v["duration"]]
            answer = rec["conversations"][1]["value"]
            if rec["task"] == "identify":
                assert answer.startswith("Yes") == (v["category"] != NORMAL)
            elif rec["task"] == "locate" and v["segments"]:
                for s, e in v["segments"]:
                    assert f"between {format_seconds(s)} and {format_seconds(e)} seconds" in answer
            elif rec["task"] == "attribute":
                assert v["category"] != NORMAL and v["causes"][0] in answer
    assert set(seen) == set(by_id)


def test_same_seed_gives_the_same_bytes_and_frames_another_seed_does_not(world, tmp_path):
    from uprm.data import load_clip

    out, summary = world
    again = tmp_path / "again"
    generate_world(again, 9, seed=5, progress=False, normal_fraction=1 / 3, **SMALL)
    for path in sorted(out.rglob("*")):
        if path.is_file() and "meta" not in path.parts:
            twin = again / path.relative_to(out)
            assert twin.read_bytes() == path.read_bytes(), path.relative_to(out)
    vid = summary["videos"][0]["video_id"]
    a = load_clip(out / "videos" / f"{vid}.mp4", 8)
    b = load_clip(again / "videos" / f"{vid}.mp4", 8)
    assert torch.equal(a.frames, b.frames)
    other = make_video(0, 6, summary["videos"][0]["category"], config=WorldConfig(**SMALL))
    same = make_video(0, 5, summary["videos"][0]["category"], config=WorldConfig(**SMALL))
    assert not np.array_equal(other.scene.render(2.0), same.scene.render(2.0))


def test_a_second_run_resumes_and_a_new_config_renders_again(tmp_path):
    out = tmp_path / "w"
    generate_world(out, 2, seed=1, progress=False, **SMALL)
    video = next((out / "videos").iterdir())
    stamp = video.stat().st_mtime_ns
    (out / "keypoints" / f"{video.stem}.json").unlink()  # an unfinished video is rendered again
    generate_world(out, 2, seed=1, progress=False, **SMALL)
    assert video.stat().st_mtime_ns != stamp and (out / "keypoints" / f"{video.stem}.json").exists()
    stamp = video.stat().st_mtime_ns
    generate_world(out, 2, seed=1, progress=False, **SMALL)
    assert video.stat().st_mtime_ns == stamp  # finished: kept
    generate_world(out, 2, seed=1, progress=False, crf=30, **SMALL)
    assert video.stat().st_mtime_ns != stamp  # another configuration: rendered again


def test_true_keypoints_lie_on_the_drawn_people(world):
    out, summary = world
    v = summary["videos"][0]
    video = make_video(v["index"], 5, v["category"], v["video_id"], WorldConfig(**SMALL))
    kp = json.loads((out / "keypoints" / f"{v['video_id']}.json").read_text())
    assert kp["categories"][0]["keypoints"] == list(COCO_KEYPOINTS)
    assert len(kp["images"]) == v["num_frames"]
    assert [im["timestamp"] for im in kp["images"][:3]] == [0.0, 0.125, 0.25]
    background = video.scene._background.reshape(128, 2, 128, 2, 3).mean(axis=(1, 3))
    hits = total = 0
    for ann in kp["annotations"][::7]:
        frame = video.scene.render(ann["image_id"] / 8.0).astype(float)
        joints = np.array(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == int((joints[:, 2] > 0).sum())
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and x + w <= 128 + 1e-6 and y >= 0 and y + h <= 128 + 1e-6
        visible = joints[joints[:, 2] > 0]
        assert (visible[:, 0] >= x).all() and (visible[:, 0] <= x + w).all() and (visible[:, 1] >= y).all()
        for jx, jy, c in joints[[5, 6, 11, 12]]:  # shoulders and hips: on the torso line
            if c == 0:
                continue
            ix, iy = int(jx), int(jy)
            patch = np.abs(frame[max(0, iy - 1): iy + 2, max(0, ix - 1): ix + 2] - background[max(0, iy - 1): iy + 2, max(0, ix - 1): ix + 2])
            hits += patch.max() > 12
            total += 1
    assert total > 50 and hits / total > 0.9


def test_scene_graphs_use_the_documented_layout_and_threat_relations_only_in_threats(world):
    out, summary = world
    for v in summary["videos"]:
        sg = json.loads((out / "scene_graphs" / f"{v['video_id']}.json").read_text())
        assert (sg["video_id"], sg["width"], sg["height"]) == (v["video_id"], 128, 128)
        assert [f["frame_index"] for f in sg["frames"]] == list(range(v["num_frames"]))
        threat_times = []
        for f in sg["frames"]:
            objs = f["objects"] + [t[k] for t in f["triplets"] for k in ("subject", "object")]
            for o in objs:
                x0, y0, x1, y1 = o["box"]
                assert o["label"] in LABELS and 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
            for t in f["triplets"]:
                assert t["predicate"] in PREDICATES and t["score"] == 1.0
                if t["predicate"] in THREAT_PREDICATES:
                    threat_times.append(f["timestamp"])
        if v["category"] == NORMAL:
            assert not threat_times, v["video_id"]
        else:
            assert threat_times, v["video_id"]
            for t in threat_times:
                assert any(s - 0.2 <= t <= e + 1e-6 for s, e in v["segments"]), (v["video_id"], t, v["segments"])


def test_body_model_gives_17_joints_standing_on_the_ground():
    for name, motion in MOTIONS.items():
        for tau in (0.0, 0.3, 1.1):
            joints, head, r = forward_kinematics(motion(tau, 0.5, {}), 40.0, 1)
            assert joints.shape == (17, 2) and np.isfinite(joints).all(), name
            assert math.isclose(max(joints[:, 1].max(), head[1] + r), 0.0, abs_tol=1e-9), name
    standing, head, _ = forward_kinematics(MOTIONS["stand"](0.0, 0.0, {}), 40.0, 1)
    lying, _, _ = forward_kinematics(MOTIONS["lie"](0.0, 0.0, {}), 40.0, 1)
    assert -head[1] > 35 and np.ptp(standing[:, 1]) > 30  # upright: tall
    assert np.ptp(lying[:, 1]) < 16 and np.ptp(lying[:, 0]) > 30  # lying: flat and long


# --------------------------------------------------------------------------- learnability
def _probe_data(n: int, seed: int):
    """8 frames per video, as Video-LLaVA samples them: per-person pose vectors (joints
    and their motion over one frame, normalised by body height), relation counts, and
    8×8 colour thumbnails; label = the frame is inside a threat segment."""
    cats = [THREAT_CATEGORIES[i % 6] if i % 5 < 3 else NORMAL for i in range(n)]
    preds = sorted(PREDICATES)
    poses, rels, colours, labels, owners = [], [], [], [], []
    for i, cat in enumerate(cats):
        v = make_video(i, seed, cat, config=WorldConfig(**SMALL))
        for k in range(8):
            t = round((k + 0.5) * v.duration / 8 * v.fps) / v.fps
            now, before = v.scene.person_states(t), v.scene.person_states(t - 1 / v.fps)
            people = []
            for key, st in now.items():
                prev = before[key].joints if key in before else st.joints
                centre = st.joints[[11, 12]].mean(0)
                people.append(np.concatenate([((st.joints - centre) / st.height).ravel(),
                                              ((st.joints - prev) / st.height).ravel()]))
            poses.append(np.stack(people) if people else np.zeros((0, 68)))
            boxes = v.scene.boxes(t, now)
            counts = np.zeros(len(preds), np.float32)
            for _, p, _ in v.scene.triplets(t, now, boxes):
                counts[preds.index(p)] += 1
            rels.append(counts)
            img = torch.from_numpy(v.scene.render(t)).permute(2, 0, 1).float() / 255
            colours.append(torch.nn.functional.adaptive_avg_pool2d(img, 8).reshape(-1).numpy())
            labels.append(float(any(s <= t < e for s, e in v.segments)))
            owners.append(i)
    K = max(len(p) for p in poses)
    X = np.zeros((len(poses), K, 68), np.float32)
    M = np.zeros((len(poses), K), bool)
    for j, p in enumerate(poses):
        X[j, : len(p)], M[j, : len(p)] = p, True
    return (torch.tensor(X), torch.tensor(M), torch.tensor(np.stack(rels)), torch.tensor(np.stack(colours)),
            torch.tensor(labels), np.array(owners))


def _fit_predict(x_train, y_train, x_test, m_train=None, m_test=None, steps=300):
    """A small MLP (max over people when a mask is given), class-balanced BCE."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(x_train.shape[-1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(mlp.parameters(), 3e-3, weight_decay=1e-4)

    def score(x, m):
        s = mlp(x).squeeze(-1)
        return s.masked_fill(~m, -1e4).amax(-1) if m is not None else s

    pos_weight = (1 - y_train.mean()) / y_train.mean()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(score(x_train, m_train), y_train, pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return score(x_test, m_test) > 0


def _balanced_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return 0.5 * (pred[y == 1].float().mean() + (~pred[y == 0]).float().mean()).item()


def test_threats_are_learnable_from_pose_and_relations_not_from_colour():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, M, R, C, y, owner = _probe_data(48, seed=0)
        train, test = torch.tensor(owner < 32), torch.tensor(owner >= 32)  # held-out videos
        assert 0.15 < y[test].mean() < 0.4
        pose = _balanced_accuracy(_fit_predict(X[train], y[train], X[test], M[train], M[test]), y[test])
        rel = _balanced_accuracy(_fit_predict(R[train], y[train], R[test]), y[test])
        colour = _balanced_accuracy(_fit_predict(C[train], y[train], C[test]), y[test])
    finally:
        torch.set_num_threads(threads)
    assert pose >= 0.72, (pose, rel, colour)
    assert rel >= 0.72, (pose, rel, colour)
    assert colour <= 0.65, (pose, rel, colour)


# --------------------------------------------------------------------------- CLI and errors
def test_cli_renders_a_world_and_prints_counts(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(synthetic_command, ["--videos", "2", "--seed", "3", "--out", str(out),
                                                    "--duration", "6,7", "--quiet", "--categories", "Arson"])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 videos" in result.output and "categories:" in result.output
    world = json.loads((out / "world.json").read_text())
    assert world["config"]["categories"] == ["Arson"] and world["config"]["max_duration"] == 7.0
    assert {v["category"] for v in world["videos"]} <= {"Arson", NORMAL}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "3,5"], "6 <= min_duration"),
        (["--duration", "8"], "--duration must be 2"),
        (["--categories", "Fighting,Shooting"], "unknown categories ['Shooting']"),
        (["--splits", "0.5,0.5"], "--splits must be 3"),
    ],
)
def test_cli_rejects_bad_options_with_a_clear_message(tmp_path, args, message):
    result = CliRunner().invoke(synthetic_command, ["--videos", "1", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_api_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_videos must be at least 1"):
        generate_world("/nonexistent-never-created", 0)
    with pytest.raises(ValueError, match="unknown category 'Burglary'"):
        make_video(0, 0, "Burglary")
    with pytest.raises(ValueError, match="size must be an int >= 32"):
        WorldConfig(size=16)
