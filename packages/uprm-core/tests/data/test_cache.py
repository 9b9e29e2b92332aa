"""The feature cache: entries per (video, window, expert) written atomically with their
provenance, valid ones skipped, stale ones recomputed, bad clips reported, resumable
after kill -9, and shared between two processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import uprm
from uprm.data import (
    ClipKey,
    FeatureCache,
    clip_keys_from_records,
    default_context,
    entry_spec,
    extract_features,
    input_fingerprint,
)
from uprm.errors import VideoError
from uprm.experts.base import Expert
from uprm.plugins.factory import build_experts, parse_expert_options
from uprm.synthetic import generate_world


class PeopleExpert(Expert):
    """A fine expert whose perception reads the clip's keypoint sidecar file: the number
    of people and their mean joint position in each sampled frame."""

    name = "people"
    granularity = "fine"

    def __init__(self, ctx, scale: float = 1.0):
        super().__init__(ctx, scale=scale)
        self.proj = torch.nn.Linear(3, ctx.hidden_size)

    def extract(self, clip):
        data = json.loads(Path(clip.meta["keypoints"]).read_text())
        by_frame: dict[int, list] = {}
        for ann in data["annotations"]:
            by_frame.setdefault(ann["image_id"], []).append(torch.tensor(ann["keypoints"]).view(17, 3))
        rows = []
        for index in clip.meta["frame_indices"]:
            people = by_frame.get(index, [])
            mean = torch.stack(people)[..., :2].mean(dim=(0, 1)) if people else torch.zeros(2)
            rows.append(torch.cat([torch.tensor([float(len(people))]), mean * self.options["scale"]]))
        return {"people": torch.stack(rows)}

    def forward(self, features, video_tokens):
        return video_tokens + self.proj(features["people"]).repeat_interleave(self.ctx.tokens_per_frame, 1)


class PeoplePlugin:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [PeopleExpert]


@pytest.fixture
def people_plugin():
    from uprm.testing import isolated_plugins

    with isolated_plugins(plugins={"people": PeoplePlugin}, load_entry_points=False) as host:
        yield host


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache-world")
    generate_world(out, 3, seed=2, progress=False, min_duration=8.0, max_duration=8.0, normal_fraction=1 / 3)
    return out


def _records(world: Path, windows: list[tuple[float, float]] | None, folder: Path) -> list[dict]:
    """Instruction records for every video of ``world`` (one per window), paths
    relative to ``folder``."""
    records = []
    for vid in sorted(p.stem for p in (world / "videos").iterdir()):
        for w in windows or [None]:
            rec = {
                "id": f"{vid}@{w}/identify",
                "video": os.path.relpath(world / "videos" / f"{vid}.mp4", folder),
                "task": "identify",
                "conversations": [{"from": "human", "value": "<video>\nIs there a threat?"},
                                  {"from": "gpt", "value": "No."}],
                "video_id": vid,
                "keypoints": os.path.relpath(world / "keypoints" / f"{vid}.json", folder),
            }
            if w is not None:
                rec["window"] = list(w)
            records.append(rec)
    return records


def _write_json(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def test_entries_carry_features_and_provenance(world, tmp_path, people_plugin):
    data = _write_json(tmp_path / "data" / "train.json", _records(world, None, tmp_path / "data"))
    keys = clip_keys_from_records([data, data], num_frames=4)  # duplicates collapse
    assert len(keys) == 3 and all(k.window is None and k.num_frames == 4 for k in keys)
    experts = build_experts(["coarse", "people"], default_context(4), {"people": {"scale": 0.5}})
    cache = FeatureCache(tmp_path / "cache")
    report = extract_features(keys, experts, cache, progress=False)
    assert (report.clips, report.written, report.cached, report.failed) == (3, 6, 0, [])
    key = keys[0]
    path = cache.path(key, "people")
    assert path == tmp_path / "cache" / key.video_id / "full_f4" / "people.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        people = f.get_tensor("people")
    # the sidecar reached the expert through clip.meta; the cached tensor is what extract gives
    from uprm.data import load_clip_for

    clip = load_clip_for(key)
    assert torch.equal(people, experts["people"].extract(clip)["people"])
    assert people[:, 0].sum() > 0  # people were found in the keypoint file
    stale_key = json.loads(meta["uprm.key"])
    assert stale_key["extraction"]["options"] == {"scale": 0.5}
    assert stale_key["context"]["num_frames"] == 4 and len(stale_key["perception"]) == 32
    assert json.loads(meta["uprm.versions"])["uprm-core"] == uprm.__version__
    info = json.loads(meta["uprm.clip"])
    assert info["num_frames"] == 4 and info["frame_indices"] == clip.meta["frame_indices"]
    assert info["inputs"]["video"] == input_fingerprint(key.path)
    assert info["inputs"]["video"].startswith(f"{Path(key.path).stat().st_size}:")
    assert meta["uprm.written_by"] == "0/1"
    coarse = cache.read(key, "coarse", entry_spec(experts["coarse"]))
    assert coarse is not None and coarse.features["vision_features"].shape == (4, 17, 64)


def test_a_second_run_skips_valid_entries(world, tmp_path):
    data = _write_json(tmp_path / "train.json", _records(world, [(0.0, 4.0), (4.0, 8.0)], tmp_path))
    keys = clip_keys_from_records([data], 4)
    assert len(keys) == 6 and len({k.window_tag for k in keys}) == 2
    experts = build_experts(["coarse"], default_context(4))
    cache = FeatureCache(tmp_path / "cache")
    extract_features(keys, experts, cache, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.safetensors")}
    assert len(stamps) == 6
    again = extract_features(keys, build_experts(["coarse"], default_context(4)), cache, progress=False)
    assert (again.written, again.cached) == (0, 6)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_stale_entries_are_recomputed(world, tmp_path, people_plugin):
    folder = tmp_path / "data"
    data = _write_json(folder / "train.json", _records(world, None, folder))
    keys = clip_keys_from_records([data], 4)
    cache = FeatureCache(tmp_path / "cache")
    experts = build_experts(["coarse", "people"], default_context(4))
    extract_features(keys, experts, cache, progress=False)
    spec = {n: entry_spec(e) for n, e in experts.items()}
    assert {cache.status(k, n, spec[n]) for k in keys for n in experts} == {"ok"}

    # other random perception weights (another seed): a different fingerprint
    reseeded = build_experts(["coarse"], default_context(4), seed=1)
    assert cache.status(keys[0], "coarse", entry_spec(reseeded["coarse"])) == "stale: key differs"
    # another option of the expert
    other = build_experts(["people"], default_context(4), {"people": {"scale": 2.0}})
    assert cache.status(keys[0], "people", entry_spec(other["people"])) == "stale: key differs"
    report = extract_features(keys, other, cache, progress=False)
    assert (report.written, report.stale) == (3, 3)
    assert cache.read(keys[0], "people", entry_spec(experts["people"])) is None  # the old spec no longer matches
    # a changed sidecar file makes its clip's entries stale
    sidecar = Path(dict(keys[0].sidecars)["keypoints"])
    sidecar.write_text(sidecar.read_text() + " ")
    try:
        assert cache.status(keys[0], "people", entry_spec(other["people"])) == "stale: the keypoints file changed"
    finally:
        sidecar.write_text(sidecar.read_text()[:-1])
    assert cache.status(keys[0], "people", entry_spec(other["people"])) == "ok"
    # another version of the core (or of a plugin) changes no extractor: the entries stand
    import uprm._version

    old = uprm._version.__version__
    uprm._version.__version__ = "9.9.9"
    try:
        assert cache.status(keys[1], "coarse", entry_spec(experts["coarse"])) == "ok"
    finally:
        uprm._version.__version__ = old
    # a new feature_version of the expert (its extraction changed) makes them stale
    monkey = type(experts["coarse"])
    saved_version = monkey.feature_version
    monkey.feature_version = saved_version + "-changed"
    try:
        assert cache.status(keys[1], "coarse", entry_spec(experts["coarse"])) == "stale: key differs"
    finally:
        monkey.feature_version = saved_version
    # a truncated file (a disk error, a copy cut short) is stale, not a crash
    path = cache.path(keys[2], "coarse")
    path.write_bytes(path.read_bytes()[:100])
    assert cache.status(keys[2], "coarse", spec["coarse"]).startswith("stale: unreadable")
    assert cache.read(keys[2], "coarse") is None
    redo = extract_features(keys, {"coarse": experts["coarse"]}, cache, progress=False)
    assert (redo.written, redo.stale, redo.cached) == (1, 1, 2)
    assert cache.status(keys[2], "coarse", spec["coarse"]) == "ok"


def test_a_bad_video_is_reported_and_the_others_go_on(world, tmp_path):
    records = _records(world, None, tmp_path)
    (tmp_path / "broken.mp4").write_bytes(b"")
    records.append(dict(records[0], id="broken/identify", video="broken.mp4", video_id="broken"))
    data = _write_json(tmp_path / "train.json", records)
    keys = clip_keys_from_records([data], 4)
    experts = build_experts(["coarse"], default_context(4))
    report = extract_features(keys, experts, FeatureCache(tmp_path / "cache"), progress=False)
    assert report.written == 3 and len(report.failed) == 1
    where, error = report.failed[0]
    assert "broken" in where and str(tmp_path / "broken.mp4") in where and error.startswith("VideoError")
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        extract_features(keys, experts, FeatureCache(tmp_path / "cache2"), fail_fast=True, progress=False)


def test_leftover_temporary_files_are_removed(world, tmp_path):
    data = _write_json(tmp_path / "train.json", _records(world, None, tmp_path))
    keys = clip_keys_from_records([data], 2)
    cache = FeatureCache(tmp_path / "cache")
    leftover = cache.path(keys[0], "coarse").parent / ".coarse.safetensors.abc123.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))  # a killed writer's, an hour ago
    in_flight = leftover.parent / ".coarse.safetensors.def456.tmp"  # another process writing right now
    in_flight.write_bytes(b"being written")
    extract_features(keys, build_experts(["coarse"], default_context(2)), cache, progress=False)
    assert not leftover.exists()
    assert in_flight.read_bytes() == b"being written"  # not taken from under its writer
    assert list((tmp_path / "cache").rglob("*.tmp")) == [in_flight]


def test_images_are_one_frame_clips(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    rec = {"id": "red/pose", "image": "red.png", "task": "background",
           "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "Red."}]}
    data = _write_json(tmp_path / "stage1.json", [rec])
    keys = clip_keys_from_records([data], 8)
    assert keys == [ClipKey("red", str((tmp_path / "red.png").resolve()), None, 1, "image")]
    cache = FeatureCache(tmp_path / "cache")
    extract_features(keys, build_experts(["coarse"], default_context(8)), cache, progress=False)
    entry = cache.read(keys[0], "coarse")
    assert entry is not None and entry.features["vision_features"].shape[0] == 1 and entry.num_frames == 1


def test_expert_options_and_builder_errors():
    assert parse_expert_options(["pose.max_people=4", "coarse.vision_path=/m/t", "pose.flag=true",
                                 'relation.sizes=[1, 2]']) == {
        "pose": {"max_people": 4, "flag": True}, "coarse": {"vision_path": "/m/t"}, "relation": {"sizes": [1, 2]}}
    with pytest.raises(ValueError, match=r"is not NAME\.KEY=VALUE"):
        parse_expert_options(["max_people=4"])
    with pytest.raises(ValueError, match="not among the experts"):
        parse_expert_options(["pose.k=1"], names=["coarse"])
    with pytest.raises(ValueError, match="listed twice"):
        build_experts(["coarse", "coarse"], default_context())
    with pytest.raises(ValueError, match="not being built"):
        build_experts(["coarse"], default_context(), {"pose": {"k": 1}})
    with pytest.raises(uprm.UnknownExpertError, match="no expert named 'nope'"):
        build_experts(["nope"], default_context())


def test_bad_instruction_files_name_the_file_and_the_record(tmp_path):
    from uprm.errors import RecordError

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match=r"bad\.json: not a readable JSON file"):
        clip_keys_from_records([bad], 8)
    bad.write_text(json.dumps([{"id": "a", "task": "identify"}]))
    with pytest.raises(RecordError, match=r"bad\.json: record 0 \('a'\) needs exactly one of 'video' or 'image'"):
        clip_keys_from_records([bad], 8)
    bad.write_text(json.dumps([{"id": "a", "video": "a.mp4", "window": [5, 2]}]))
    with pytest.raises(RecordError, match=r"field 'window' must be \[start, end\]"):
        clip_keys_from_records([bad], 8)


# --------------------------------------------------------------------------- processes
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.mark.slow
def test_killed_with_sigkill_mid_run_then_resumed(world, tmp_path):
    windows = [(s / 4, s / 4 + 2.0) for s in range(25)]  # 25 windows x 3 videos = 75 clips
    data = _write_json(tmp_path / "train.json", _records(world, windows, tmp_path))
    keys = clip_keys_from_records([data], 4)
    assert len(keys) == 75
    cache_dir = tmp_path / "cache"
    cmd = [sys.executable, "-m", "uprm", "extract", "--data", str(data), "--experts", "coarse",
           "--out", str(cache_dir), "--num-frames", "4", "--quiet"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(cache_dir.rglob("*.safetensors")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no entry written in 120 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*.safetensors")}
    assert 0 < len(done) < 75
    cache = FeatureCache(cache_dir)
    experts = build_experts(["coarse"], default_context(4))  # the same seed: the same weights
    for p in done:  # whatever the kill left is complete
        with safe_open(str(p), framework="pt") as f:
            assert f.get_tensor("vision_features").shape == (4, 17, 64)
    report = extract_features(keys, experts, cache, progress=False)
    assert report.cached == len(done) and report.written == 75 - len(done) and not report.failed
    assert {p: p.stat().st_mtime_ns for p in done} == done  # nothing done was redone
    assert len(list(cache_dir.rglob("*.safetensors"))) == 75
    assert not list(cache_dir.rglob("*.tmp"))
    # every entry, from before or after the kill, equals an uninterrupted extraction's
    whole = tmp_path / "whole"
    assert extract_features(keys, experts, FeatureCache(whole), progress=False).written == 75
    for entry in whole.rglob("*.safetensors"):
        with safe_open(str(entry), framework="pt") as a, \
                safe_open(str(cache_dir / entry.relative_to(whole)), framework="pt") as b:
            names = list(a.keys())
            assert set(b.keys()) == set(names)
            for name in names:  # two processes: the last float bits may differ
                torch.testing.assert_close(b.get_tensor(name), a.get_tensor(name), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_processes_split_the_clips(world, tmp_path):
    windows = [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (0.0, 8.0)]
    data = _write_json(tmp_path / "train.json", _records(world, windows, tmp_path))
    keys = clip_keys_from_records([data], 4)
    assert len(keys) == 12
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "uprm", "extract", "--data", str(data), "--experts", "coarse", "--out", str(tmp_path / "cache"),
           "--num-frames", "4", "--quiet"]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = re.findall(r"\[process (\d)/2\] (\d+) clips: (\d+) entries written", result.stdout)
    assert sorted(rank for rank, _, _ in lines) == ["0", "1"], result.stdout
    assert all(int(clips) == 6 and int(written) == 6 for _, clips, written in lines)
    writers = []
    for p in (tmp_path / "cache").rglob("*.safetensors"):
        with safe_open(str(p), framework="pt") as f:
            writers.append(f.metadata()["uprm.written_by"])
    assert sorted(writers) == ["0/2"] * 6 + ["1/2"] * 6
    # the entries are the ones a single process makes: the same seed gives the same weights
    cache = FeatureCache(tmp_path / "cache")
    spec = entry_spec(build_experts(["coarse"], default_context(4))["coarse"])
    assert {cache.status(k, "coarse", spec) for k in keys} == {"ok"}


def test_the_fingerprint_follows_the_frozen_weights():
    from uprm.data import perception_fingerprint

    expert = build_experts(["coarse"], default_context(2))["coarse"]
    first = perception_fingerprint(expert)
    assert perception_fingerprint(build_experts(["coarse"], default_context(2))["coarse"]) == first  # same seed
    assert perception_fingerprint(build_experts(["coarse"], default_context(2), seed=1)["coarse"]) != first
    state = {k: v.clone() for k, v in expert.tower.state_dict().items()}
    state[next(iter(state))] += 1.0
    expert.tower.load_state_dict(state)  # weights loaded after the first look
    assert perception_fingerprint(expert) != first


def test_same_size_edits_of_inputs_are_seen(world, tmp_path, people_plugin):
    """A video replaced by another of the same byte size, and a keypoint file edited
    without changing its size, make the entries stale (sizes alone would not tell)."""
    folder = tmp_path / "data"
    data = _write_json(folder / "train.json", _records(world, None, folder))
    key = clip_keys_from_records([data], 4)[0]
    cache = FeatureCache(tmp_path / "cache")
    experts = build_experts(["coarse", "people"], default_context(4))
    extract_features([key], experts, cache, progress=False)
    spec = {n: entry_spec(e) for n, e in experts.items()}
    assert cache.status(key, "people", spec["people"]) == "ok"

    sidecar = Path(dict(key.sidecars)["keypoints"])
    original = sidecar.read_bytes()
    edited = original.replace(b'"score":1.0', b'"score":0.5', 1)
    assert edited != original and len(edited) == len(original)
    sidecar.write_bytes(edited)
    assert cache.status(key, "people", spec["people"]) == "stale: the keypoints file changed"
    assert cache.read(key, "people", spec["people"]) is None
    sidecar.write_bytes(original)
    assert cache.status(key, "people", spec["people"]) == "ok"

    video = Path(key.path)
    original = video.read_bytes()
    other = next(p for p in video.parent.glob("*.mp4") if p != video).read_bytes()
    same_size = (other + b"\0" * len(original))[: len(original)]
    video.write_bytes(same_size)
    try:
        assert video.stat().st_size == len(original)
        assert cache.status(key, "coarse", spec["coarse"]) == "stale: the video file changed"
    finally:
        video.write_bytes(original)
    assert cache.status(key, "coarse", spec["coarse"]) == "ok"


def test_input_fingerprint_samples_large_files(tmp_path, monkeypatch):
    """Above the whole-file limit the fingerprint reads the head, the tail and strides,
    so a change in any of them is seen; it never depends on the modification time."""
    from uprm.data.features import cache as cache_mod

    monkeypatch.setattr(cache_mod, "WHOLE_FILE_BYTES", 1 << 16)
    monkeypatch.setattr(cache_mod, "_SAMPLE_BYTES", 1 << 12)
    monkeypatch.setattr(cache_mod, "_STRIDE_BYTES", 1 << 10)
    big = tmp_path / "big.bin"
    payload = bytearray(os.urandom(1 << 20))
    big.write_bytes(payload)
    first = input_fingerprint(big)
    os.utime(big, ns=(1, 1))  # only the time changes
    assert input_fingerprint(big) == first
    for offset in (0, len(payload) - 1, 4096 + (len(payload) - 8192) // 17):  # head, tail, the first stride
        changed = bytearray(payload)
        changed[offset] ^= 0xFF
        big.write_bytes(changed)
        os.utime(big, ns=(offset + 7, offset + 7))
        assert input_fingerprint(big) != first, offset
    assert input_fingerprint(tmp_path / "missing.bin") is None
