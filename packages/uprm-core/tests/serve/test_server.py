"""A real ``uprm serve`` process on loopback with a trained tiny checkpoint: a job runs
from upload to result, its result is what ``uprm detect`` writes for the same file, its
progress grows window by window, path jobs work, a vanished video fails cleanly, a
killed worker is restarted by the server's supervisor."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import time

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from uprm.cli import cli

CAUSE = "a person grabbing a bag"
SAME = ("format", "video_id", "duration", "segments", "windows", "settings")


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def shop_job(client, videos, wait_job):
    """Upload shop.mp4 and follow it to the end, recording the progress seen."""
    with videos["shop"].open("rb") as fh:
        r = client.post("/v1/jobs", files={"video": ("shop.mp4", fh, "application/octet-stream")})
    assert r.status_code == 202, r.text
    job_id, seen = r.json()["id"], []
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        seen.append((job["state"], job["progress"], job["windows"]["done"]))
        if job["state"] in ("done", "failed"):
            return job, seen
        wait_job(client, job_id, states=("running", "done", "failed"), timeout=240)


def test_a_job_runs_to_the_end_with_growing_progress(shop_job):
    job, seen = shop_job
    assert job["state"] == "done", job
    assert job["progress"] == 1.0 and job["windows"] == {"done": 9, "total": 9} and job["attempts"] == 1
    assert job["started"] and job["finished"] and job["error"] is None
    assert set(job["links"]) == {"self", "video", "result", "timeline", "review"}
    assert job["model"].startswith("sha256:")  # the fingerprint of the checkpoint that ran it
    order = {"queued": 0, "running": 1, "done": 2}
    states = [order[s] for s, _, _ in seen]
    assert states == sorted(states)
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress)


def _close(a, b) -> bool:
    """Equal, floats to 1e-5 absolute (the JSON rounds to 6 decimals)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-5
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def test_the_result_is_what_uprm_detect_writes(shop_job, client, checkpoint, videos, tmp_path):
    job, _ = shop_job
    result = client.get(job["links"]["result"])
    assert result.status_code == 200 and result.headers["content-type"] == "application/json"
    served = result.json()
    out = tmp_path / "detect"
    run = CliRunner().invoke(cli, ["detect", str(videos["shop"]), "--checkpoint", str(checkpoint), "--out", str(out),
                                   "--quiet"])
    assert run.exit_code == 0, run.output
    expected = json.loads((out / "shop.json").read_text())
    # the worker and this process may sum floats in another order (threads, alignment)
    assert _close({k: served[k] for k in SAME}, {k: expected[k] for k in SAME})
    assert served["video"] == "shop.mp4"  # the name the client gave, not a server path
    [seg] = served["segments"]
    assert (seg["start"], seg["end"], seg["cause"]) == (12.0, 32.0, CAUSE)  # threat at 16-28 s
    assert seg["score"] > 0.5 and "coarse" in seg["expert_weights"]
    timeline = client.get(job["links"]["timeline"])
    assert timeline.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(timeline.content)).size == Image.open(out / "shop.png").size
    sheet = client.get(f"/v1/jobs/{job['id']}/evidence/1.png")
    assert sheet.status_code == 200 and Image.open(io.BytesIO(sheet.content)).format == "PNG"
    assert client.get(f"/v1/jobs/{job['id']}/evidence/2.png").json()["code"] == "result_missing"


def test_experts_are_what_uprm_experts_lists_plus_the_model(client, checkpoint, shop_job):
    body = client.get("/v1/experts").json()
    listed = json.loads(CliRunner().invoke(cli, ["experts", "--json"]).output)
    assert {k: body[k] for k in ("experts", "broken")} == listed
    saved = json.loads((checkpoint / "config.json").read_text())
    assert body["model"]["experts"] == saved["expert_names"] and body["model"]["num_frames"] == 2


def test_a_path_job_on_a_quiet_video_finds_nothing(client, wait_job):
    r = client.post("/v1/jobs", json={"path": "quiet.mp4"})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done" and job["video"]["source"] == "path"
    result = client.get(job["links"]["result"]).json()
    assert result["segments"] == [] and result["video"] == "quiet.mp4"
    full = client.get(job["links"]["video"])
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"


def test_a_video_that_vanishes_before_its_turn_fails_cleanly(served, client, videos, wait_job):
    media = videos["shop"].parent
    shutil.copy(videos["quiet"], media / "gone.mp4")
    blocker = client.post("/v1/jobs", json={"path": "long.mp4"}).json()  # keeps the worker busy a while
    r = client.post("/v1/jobs", json={"path": "gone.mp4"})
    (media / "gone.mp4").unlink()
    assert r.status_code == 202
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "failed" and job["error"]["code"] == "media_not_found"
    assert str(media) not in json.dumps(job) and "Traceback" not in json.dumps(job)
    assert client.get(f"/v1/jobs/{job['id']}/result").json()["code"] == "job_failed"
    assert wait_job(client, blocker["id"])["state"] == "done"
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "ready": True, "worker": "ready", "version": health["version"]}


def test_a_killed_worker_is_restarted(served):
    """Last in this file: the shared server's worker is killed and comes back ready (after
    2 s, or 1 s when it had run a minute) for the tests that follow."""
    [worker] = served.worker_pids()
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 240
    restarted = re.compile(r"the worker exited with status -9; restarting it in [12] s")
    while not restarted.search(served.log.read_text()):
        assert time.monotonic() < deadline, served.log.read_text()[-3000:]
        time.sleep(0.1)
    while not (served.worker_pids() and served.worker_pids()[0] != worker):
        assert time.monotonic() < deadline, "no new worker"
        time.sleep(0.1)
    served.wait_ready(deadline)  # the new worker loaded the model
    [again] = served.worker_pids()
    assert again != worker and httpx.get(f"{served.url}/healthz").json()["worker"] == "ready"
