"""Cameras over model replicas and hosts: ``--shard K/N`` takes every camera in exactly one
share; ``--replicas 2`` gives the alerts ``--replicas 1`` gives on the same files (each
replica its own model, its own cameras); every record names its host and shard; the CLI
refuses bad values before loading anything."""

from __future__ import annotations

import json

import pytest

import uprm
from uprm.cli import cli
from uprm.watch import Watcher, WatchError, WatchSettings, read_alerts
from uprm.watch.shards import parse_shard, select_shard, shard_of

#: what differs between two runs of the same files: wall-clock moments and latencies
_WALL = {"start_wall", "end_wall", "written_at", "latency_s", "id", "score", "expert_weights"}


def _same(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in _WALL}


@pytest.mark.parametrize("cameras", [1, 2, 5, 12, 13])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_the_shards_take_every_camera_exactly_once(cameras, n):
    names = [f"rtsp://10.0.0.{i}/stream" for i in range(1, cameras + 1)]
    shares = [select_shard(names, k, n) for k in range(1, n + 1)]
    taken = [name for share in shares for name in share]
    assert sorted(taken) == sorted(names) and len(taken) == len(set(taken))      # each exactly once
    assert max(map(len, shares)) - min(map(len, shares)) <= 1                       # balanced
    assert shares[0][:1] == names[:1] and all(shard_of(i, n) == (i - 1) % n + 1 for i in range(1, cameras + 1))
    assert [select_shard(names, k, n) for k in range(1, n + 1)] == shares          # the same on every host


@pytest.mark.parametrize(("text", "problem"), [("3/2", "K must be between 1 and N"), ("0/2", "K must be between"),
                                               ("1/0", "N must be at least 1"), ("x", "expected K/N"),
                                               ("1/2/3", "expected K/N"), ("", "expected K/N")])
def test_bad_shards_are_explained(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_shard(text)
    with pytest.raises(uprm.errors.WatchSettingsError, match=rf"shard: {problem}.*got '{text}'"):
        WatchSettings(shard=text)
    assert parse_shard(" 2 / 4 ") == (2, 4) and WatchSettings(shard="2/4").shard_parts == (2, 4)


def test_a_host_watches_its_share_under_the_names_of_the_whole_list(tmp_path, watch_model):
    sources = ["udp://127.0.0.1:1", "door=udp://127.0.0.1:2", "udp://127.0.0.1:3", "udp://127.0.0.1:4"]
    watcher = Watcher(sources, watch_model, WatchSettings(window=4, stride=2, shard="1/2"))
    assert [c.camera.name for c in watcher.cams] == ["cam1", "cam3"]
    watcher = Watcher(sources, watch_model, WatchSettings(window=4, stride=2, shard="2/2"))
    assert [c.camera.name for c in watcher.cams] == ["door", "cam4"]
    with pytest.raises(WatchError, match="shard 5/5 has no camera: the list has 4"):
        Watcher(sources, watch_model, WatchSettings(shard="5/5"))
    # a camera runs on one replica: no more replicas than this host's cameras are loaded
    watcher = Watcher(sources, watch_model, WatchSettings(window=4, stride=2, shard="2/2", replicas=3))
    assert len(watcher.lanes) == 2 and [[c.camera.name for c in lane.cams] for lane in watcher.lanes] == [
        ["door"], ["cam4"]]


def test_two_replicas_give_the_alerts_of_one(tmp_path, make_video, watch_model):
    videos = {name: make_video(tmp_path / f"{name}.mp4", 12.0, threat)
              for name, threat in [("a", (4.0, 8.0)), ("b", (99.0, 99.0)), ("c", (0.0, 4.0))]}
    sources = [f"{name}={path}" for name, path in videos.items()]
    runs = {}
    for replicas in (1, 2):
        alerts = tmp_path / f"alerts-{replicas}.jsonl"
        watcher = Watcher(sources, watch_model, WatchSettings(window=4, stride=2, cooldown=2, replicas=replicas,
                                                              alerts=str(alerts), host_name="watch-0"))
        assert len(watcher.lanes) == replicas and len({id(lane.model) for lane in watcher.lanes}) == replicas
        report = watcher.run()
        runs[replicas] = (report, read_alerts(alerts))
    (one, one_records), (two, two_records) = runs[1], runs[2]
    key = lambda r: (r["camera"], r["number"], r["type"])  # noqa: E731 - replicas interleave their cameras' records
    assert [_same(r) for r in sorted(two_records, key=key)] == [_same(r) for r in sorted(one_records, key=key)]
    assert {(r["camera"], r["type"]) for r in two_records} == {("a", "open"), ("a", "close"), ("c", "open"),
                                                                ("c", "close")}
    for a, b in zip(sorted(two_records, key=key), sorted(one_records, key=key)):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    # each camera's windows ran on its replica (a, c: replica 0; b: replica 1), all of them, once
    assert {name: cam["replica"] for name, cam in two.cameras.items()} == {"a": 0, "b": 1, "c": 0}
    assert {name: cam["windows"] for name, cam in two.cameras.items()} == {
        name: cam["windows"] for name, cam in one.cameras.items()} == {"a": 5, "b": 5, "c": 5}
    assert two.stopped_by == one.stopped_by == "end of streams"
    assert all((r["host"], r["shard"]) == ("watch-0", "1/1") for r in two_records + one_records)




def test_the_cli_runs_a_shard_on_replicas_and_names_host_and_shard(tmp_path, make_video, watch_checkpoint,
                                                                   in_process):
    a = make_video(tmp_path / "a.mp4", 8.0, (0.0, 8.0))
    b = make_video(tmp_path / "b.mp4", 8.0, (0.0, 8.0))
    c = make_video(tmp_path / "c.mp4", 8.0, (0.0, 8.0))
    alerts = tmp_path / "alerts.jsonl"
    result = in_process.invoke(cli, ["watch", f"a={a}", f"b={b}", f"c={c}", "--checkpoint", str(watch_checkpoint),
                                     "--window", "4", "--stride", "2", "--threads", "2", "--replicas", "2",
                                     "--shard", "1/2", "--alerts", str(alerts), "--format", "json"],
                               env={"UPRM_HOST_NAME": "watch-1"})
    assert result.exit_code == 0, result.output
    records = read_alerts(alerts)
    assert {r["camera"] for r in records} == {"a", "c"}                      # b is shard 2's
    assert all((r["host"], r["shard"]) == ("watch-1", "1/2") for r in records) and len(records) == 4
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["settings"]["replicas"] == 2 and report["settings"]["host"] == "watch-1"
    assert {name: cam["replica"] for name, cam in report["cameras"].items()} == {"a": 0, "c": 1}


@pytest.mark.parametrize(("args", "message"), [
    (["--shard", "3/2"], "--shard 3/2: K must be between 1 and N"),
    (["--shard", "two"], "--shard two: expected K/N"),
    (["--shard", "1/0"], "--shard 1/0: N must be at least 1"),
    (["--replicas", "0"], "Invalid value for '--replicas'"),
])
def test_the_cli_refuses_bad_replicas_and_shards(tmp_path, args, message, in_process):
    result = in_process.invoke(cli, ["watch", "udp://127.0.0.1:9", "--checkpoint", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
