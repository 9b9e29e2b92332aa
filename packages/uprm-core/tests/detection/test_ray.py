"""Detection as a Ray job (``uprm detect --ray``, ``uprm.detect(..., ray=...)``) on a local
Ray cluster of 2 CPUs started once for the module: the files equal a local run's on the
same checkpoint and videos (JSON compared without the run-specific fields), a replica
killed mid-run still leaves every video written exactly once and equal, a rerun
skips, a bad file fails alone; without ray the error names the extra to install, and
only the Ray path imports it; the number of replicas is checked against the cluster.
Then the paths where replicas die: when every replica has died the job stops, keeps what
it wrote and a rerun finishes it; a dead replica is replaced while work waits and the
replacement does the work; a checkpoint that changed after the driver planned stops the
job naming both fingerprints (last: it ends the module's replicas)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import uprm
from uprm.cli import cli
from uprm.detection import detect_files
from uprm.detection.plan import plan_windows
from uprm.detection.ray_runner import (
    RemoteError,
    describe,
    plan_replicas,
    portable,
    ray_address,
    release,
    run_on_ray,
    start_replicas,
)
from uprm.errors import MissingExtraError, VideoError
from uprm.modeling.loading import model_fingerprint
from uprm.options import DetectOptions

#: what a Ray job's JSON may differ in from a local run's: the time it took, and the
#: frames decoded (a frame two chunks share is decoded by both)
RUN_SPECIFIC_STATS = ("seconds", "windows_per_s", "frames_decoded")


def comparable(path: Path) -> dict:
    """A video's JSON without its run-specific fields."""
    data = json.loads(path.read_text())
    data.pop("timings")
    data["stats"] = {k: v for k, v in data["stats"].items() if k not in RUN_SPECIFIC_STATS}
    return data


def assert_same_outputs(local: Path, other: Path, videos=("quiet", "shop", "street")) -> None:
    """The same files; JSON equal but for the run-specific fields, every PNG byte for byte."""
    names = {p.relative_to(local) for p in local.rglob("*")}
    assert {p.relative_to(other) for p in other.rglob("*")} == names
    for vid in videos:
        assert comparable(other / f"{vid}.json") == comparable(local / f"{vid}.json"), vid
    assert json.loads((other / "results.json").read_text()) == json.loads((local / "results.json").read_text())
    for png in (p for p in names if p.suffix == ".png"):
        assert (other / png).read_bytes() == (local / png).read_bytes(), png


@pytest.fixture(scope="module")
def ray_cluster(detector):
    """A local Ray of 2 CPUs, for this module, whose 2 replicas start loading the
    checkpoint at once (while the local run is made)."""
    import ray  # uprm-core[all] installs it: a missing ray fails, never skips
    temp = tempfile.mkdtemp(prefix="uprm-ray-", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, configure_logging=False, log_to_driver=False)
    assert start_replicas(detector, replicas=2).describe() == "2 replica(s), each 1 CPU, 1 thread(s)"
    yield ray
    release()
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    """A file that is not a video."""
    bad = tmp_path_factory.mktemp("broken") / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    return bad


@pytest.fixture(scope="module")
def local_run(ray_cluster, detector, threat_data, broken, tmp_path_factory):
    """The three videos and the broken file detected by a local run: what the Ray runs
    must equal. Returns (out, report)."""
    out = tmp_path_factory.mktemp("local") / "out"
    report = detect_files([broken, threat_data / "videos"], detector, out, sidecar_dir=threat_data, progress=False)
    assert sorted(report.done) == ["quiet", "shop", "street"] and len(report.failed) == 1
    return out, report


def test_chunks_are_whole_batches_of_the_plan():
    plan = plan_windows(60.0, 8.0, 4.0, 2)  # 14 windows
    assert plan.chunks(5, 4) == [range(0, 8), range(8, 14)]  # 5 rounded up to two batches of 4
    assert plan.chunks(4, 4) == [range(0, 4), range(4, 8), range(8, 12), range(12, 14)]
    assert plan_windows(3.0, 8.0, 4.0, 2).chunks(16, 4) == [range(0, 1)]
    with pytest.raises(ValueError, match="at least 1"):
        plan.chunks(0, 4)


@pytest.fixture(scope="module")
def ray_run(ray_cluster, local_run, detector, threat_data, broken, tmp_path_factory):
    """The three videos and a broken file detected on Ray by 2 replicas in chunks of 4
    windows (9 chunks; the shop's segment spans two); the replica given the last chunk
    is killed (SIGKILL) as it gets it, while the other may still be answering its own —
    the last, so that no replacement is loaded (a model load costs ~12 s of CPU here;
    a replacement is for when more work waits; the broken file comes first, so its probe
    is long over by then). Returns (out, report, events)."""
    events = []

    def kill_the_last_dispatch(event):
        events.append(event)
        if event.kind == "dispatched" and sum(e.kind == "dispatched" for e in events) == 9:
            os.kill(event.pid, signal.SIGKILL)

    out = tmp_path_factory.mktemp("ray") / "out"
    report = detect_files([broken, threat_data / "videos"], detector, out, sidecar_dir=threat_data, progress=False,
                          ray=True, replicas=2, chunk_windows=4, on_event=kill_the_last_dispatch)
    return out, report, events


def test_a_ray_job_writes_what_a_local_run_writes(ray_run, local_run):
    out, report, _ = ray_run
    local, local_report = local_run
    assert sorted(report.done) == ["quiet", "shop", "street"]
    assert report.failed == local_report.failed  # the bad file fails alone, with the same message
    assert report.failed[0][1].startswith("VideoError: ")
    assert_same_outputs(local, out)
    assert json.loads((out / "shop.json").read_text())["written_by"] == "0/1"


def test_a_replica_killed_mid_run_leaves_every_video_written_once(ray_run):
    _, report, events = ray_run
    assert report.ray["deaths"] == 1 and report.ray["retried_chunks"] == 1 and report.ray["chunks"] == 9
    assert report.ray["restarts"] == 0  # no replica loaded for the one chunk left: the other took it
    killed = [e for e in events if e.kind == "dispatched"][8]
    assert next(e for e in events if e.kind == "replica_died").replica == killed.replica
    # the killed chunk was handed out again, once; every chunk and every video finished exactly once
    again = [e for e in events if e.kind == "dispatched" and (e.video_id, e.chunk) == (killed.video_id, killed.chunk)]
    assert len(again) == 2 and again[1].replica != killed.replica  # on the other replica
    done = sorted((e.video_id, e.chunk) for e in events if e.kind == "chunk_done")
    assert done == sorted((vid, c) for vid in ("quiet", "shop", "street") for c in range(3))
    assert sorted(e.video_id for e in events if e.kind == "video_done") == ["quiet", "shop", "street"]


def test_the_cli_runs_on_ray_and_a_rerun_skips(ray_run, local_run, detector, threat_data):
    out, _, _ = ray_run
    local, _ = local_run
    args = ["detect", str(threat_data / "videos"), "--checkpoint", str(detector), "--out", str(out),
            "--sidecar-dir", str(threat_data), "--quiet", "--replicas", "2", "--chunk-windows", "16", "--ray"]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "0 detected, 3 already done" in again.output and "0 chunks" in again.output
    (out / "quiet.json").unlink()  # redone, in one chunk, by the replica left from the job before
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 detected, 2 already done, 0 failed" in result.output
    assert "ray: 2 replica(s), each 1 CPU, 1 thread(s); 1 chunks, 0 replica death(s), 0 restart(s), 0 chunk(s) retried" in result.output
    assert_same_outputs(local, out, videos=("quiet",))


def test_uprm_detect_on_ray_finds_the_local_segments(ray_cluster, local_run, detector, threat_data):
    segments = uprm.detect(threat_data / "videos" / "shop.mp4", detector, sidecar_dir=threat_data, ray=True,
                           replicas=2)
    local = json.loads((local_run[0] / "shop.json").read_text())["segments"]
    assert [s.to_dict() for s in segments] == [{k: v for k, v in s.items() if k not in ("windows", "evidence")}
                                               for s in local]
    assert [s.windows for s in segments] == [s["windows"] for s in local]


def test_without_ray_the_error_names_the_extra(monkeypatch, detector, threat_data, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    video = threat_data / "videos" / "quiet.mp4"
    with pytest.raises(MissingExtraError, match=r'pip install "uprm-core\[ray\]"'):
        uprm.detect(video, detector, ray=True)
    result = CliRunner().invoke(cli, ["detect", str(video), "--checkpoint", str(detector), "--out",
                                      str(tmp_path / "out"), "--ray", "--quiet"])
    assert result.exit_code == 1
    assert 'uprm detect --ray needs uprm-core\'s ray extra (ray is not installed): pip install "uprm-core[ray]"' \
        in result.output


def test_the_number_of_replicas_is_checked(ray_cluster, detector, threat_data, tmp_path):
    video = str(threat_data / "videos" / "quiet.mp4")
    base = ["detect", video, "--checkpoint", str(detector), "--out", str(tmp_path / "out"), "--quiet"]
    result = CliRunner().invoke(cli, [*base, "--replicas", "0", "--ray"])
    assert result.exit_code == 2 and "'--replicas': 0 is not in the range x>=1" in result.output
    result = CliRunner().invoke(cli, [*base, "--replicas", "2"])
    assert result.exit_code == 2 and "add --ray" in result.output
    result = CliRunner().invoke(cli, [*base, "--replicas", "3", "--ray"])  # the cluster has 2 CPUs
    assert result.exit_code == 1
    assert "3 replica(s) × 1 thread(s) need 3 CPUs; the Ray cluster has 2" in result.output
    result = CliRunner().invoke(cli, [*base, "--ray", "videos/"])
    assert result.exit_code == 1 and "is not a Ray address" in result.output
    with pytest.raises(ValueError, match="replicas= is the number of model replicas of a Ray job"):
        uprm.detect(video, detector, replicas=2)
    with pytest.raises(ValueError, match=r"replicas must be a whole number of at least 1, got 1\.5"):
        uprm.detect(video, detector, ray=True, replicas=1.5)


def test_replicas_follow_the_gpus_or_share_the_cpus():
    assert plan_replicas(16, 4) == plan_replicas(16, 4, None, None, "auto")
    gpu = plan_replicas(16, 4)
    assert (gpu.count, gpu.num_gpus, gpu.num_cpus, gpu.threads) == (4, 1, 1, 1)  # one per GPU
    assert plan_replicas(16, 4, replicas=2, threads=3).count == 2
    assert plan_replicas(16, 4, device="cuda:3").device == "cuda"  # a replica sees its own GPU only
    with pytest.raises(ValueError, match=r"5 replicas need 5 GPUs \(one each\); the Ray cluster has 4"):
        plan_replicas(16, 4, replicas=5)
    cpu = plan_replicas(16, 4, replicas=2, device="cpu")  # the GPUs left alone
    assert (cpu.count, cpu.num_gpus, cpu.threads) == (2, 0, 8)
    assert plan_replicas(8, 0).threads == 8 and plan_replicas(32, 0, node_cpus=8).threads == 8
    assert plan_replicas(8, 0, replicas=3).threads == 2
    with pytest.raises(ValueError, match="device 'cuda': the Ray cluster has no GPU"):
        plan_replicas(8, 0, device="cuda")
    with pytest.raises(ValueError, match="a replica of 12 threads needs 12 CPUs on one node; the largest node has 8"):
        plan_replicas(32, 0, threads=12, node_cpus=8)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="replicas must be a whole number"):
            plan_replicas(8, 0, replicas=bad)
    assert ray_address(True) is True and ray_address("") is True
    assert [ray_address(a) for a in ("auto", "10.0.0.2:6379", "ray://head:10001")] == \
        ["auto", "10.0.0.2:6379", "ray://head:10001"]


def test_an_error_that_cannot_be_unpickled_comes_back_by_name():
    error = VideoError("/videos/cam.mp4", "truncated")
    back = pickle.loads(pickle.dumps(portable(error)))  # VideoError(path, problem) alone would not rebuild
    assert isinstance(back, RemoteError) and back.kind == "VideoError"
    assert describe(back) == describe(error) == "VideoError: /videos/cam.mp4: truncated"
    plain = ValueError("bad")
    assert portable(plain) is plain


def test_ray_is_imported_only_on_the_ray_path():
    code = ("import sys, uprm.detection.ray_runner, uprm.cli.detect; from uprm.detection import detect_files; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


VIDEOS = ("quiet", "shop", "street")


def test_when_every_replica_dies_the_job_stops_keeps_what_it_wrote_and_a_rerun_resumes(
        ray_cluster, local_run, detector, threat_data, tmp_path, monkeypatch):
    monkeypatch.setattr("uprm.detection.ray_runner.RESTARTS_PER_REPLICA", 0)  # a dead replica stays dead
    events = []

    def kill_all_but_the_first_dispatch(event):  # whichever replica takes a chunk after the first dies
        events.append(event)
        if event.kind == "dispatched" and sum(e.kind == "dispatched" for e in events) > 1:
            os.kill(event.pid, signal.SIGKILL)

    out = tmp_path / "out"
    args = dict(sidecar_dir=threat_data, progress=False, ray=True, replicas=2)  # one chunk per video
    report = detect_files([threat_data / "videos"], detector, out, on_event=kill_all_but_the_first_dispatch, **args)
    first = next(e for e in events if e.kind == "dispatched").video_id
    assert report.done == [first]  # the first chunk was answered; then both replicas died at their next chunk
    assert report.ray["deaths"] == 2 and report.ray["restarts"] == 0
    assert sorted(Path(p).stem for p, _ in report.failed) == sorted(set(VIDEOS) - {first})
    for _, error in report.failed:
        assert error.startswith("RuntimeError: every replica died (2 deaths, 0 restarts, at most 0 per replica): "
                                "the job stopped before this video (a rerun does it); the last death: "), error
    # what was finished is written, and only that
    assert sorted(p.name for p in out.glob("*.json")) == sorted([f"{first}.json", "results.json"])
    assert comparable(out / f"{first}.json") == comparable(local_run[0] / f"{first}.json")
    assert list(json.loads((out / "results.json").read_text())["results"]) == [first]

    # a rerun in the same process: the dead replicas are started anew (no restart is allowed, and none is
    # needed: they died in an earlier job) and the videos left are detected
    events.clear()
    again = detect_files([threat_data / "videos"], detector, out, on_event=events.append, **args)
    assert again.skipped == [first] and sorted(again.done) == sorted(set(VIDEOS) - {first}) and not again.failed
    assert again.ray["deaths"] == 0 and again.ray["restarts"] == 0
    assert any(e.kind == "replica_ready" for e in events)
    assert_same_outputs(local_run[0], out)


def test_a_dead_replica_is_replaced_while_work_waits_and_the_replacement_does_it(
        ray_cluster, local_run, detector, threat_data, tmp_path):
    events, replacements = [], set()

    def kill_every_replica_but_the_replacements(event):
        """Each replica that was not started in place of one that died in this job dies at its
        first chunk: so the work left can only be done by replacements."""
        events.append(event)
        if event.kind == "replica_ready" and any(e.kind == "replica_died" and e.replica == event.replica
                                                 for e in events):
            replacements.add(event.pid)
        if event.kind == "dispatched" and event.pid not in replacements:
            os.kill(event.pid, signal.SIGKILL)

    out = tmp_path / "out"
    report = detect_files([threat_data / "videos"], detector, out, sidecar_dir=threat_data, progress=False,
                          ray=True, replicas=2, chunk_windows=4, on_event=kill_every_replica_but_the_replacements)
    assert sorted(report.done) == list(VIDEOS) and not report.failed
    assert report.ray["chunks"] == 9
    assert report.ray["deaths"] == report.ray["restarts"] == report.ray["retried_chunks"] == 2
    died = {e.pid for e in events if e.kind == "replica_died"}
    workers = {e.pid for e in events if e.kind == "dispatched"} - died
    assert len(died) == 2 and workers and workers <= replacements  # what was left, replacements alone did
    done = sorted((e.video_id, e.chunk) for e in events if e.kind == "chunk_done")
    assert done == sorted((vid, c) for vid in VIDEOS for c in range(3))  # each chunk answered once
    assert_same_outputs(local_run[0], out)


def test_a_checkpoint_changed_after_the_driver_planned_stops_the_job_naming_both_fingerprints(
        ray_cluster, detector, threat_data, tmp_path):
    """Last in the module: the job's error ends the replicas."""
    checkpoint = Path(shutil.copytree(detector, tmp_path / "checkpoint"))
    planned = model_fingerprint(checkpoint)  # what the driver computed when the job began
    config = checkpoint / "config.json"
    config.write_text(config.read_text() + "\n")  # then the shared copy changed: the same model, other bytes
    loaded = model_fingerprint(checkpoint)
    assert loaded != planned
    finished = []
    with pytest.raises(ValueError) as caught:
        run_on_ray([threat_data / "videos" / "quiet.mp4"], checkpoint, DetectOptions(sidecar_dir=threat_data),
                   lambda *args: finished.append(args), ray=True, replicas=1, fingerprint=planned)
    assert str(caught.value) == (
        f"replica 0 on {socket.gethostname()} loaded another checkpoint from {checkpoint.resolve()} ({loaded}) than "
        f"this machine sees ({planned}): the checkpoint must be the same files at the same path on every node, and "
        "must not change during a job")
    assert not finished  # no chunk ran on it
