"""Switching the service's model (``POST /v1/model``): what the API accepts and refuses
(in process), the worker's switch between jobs with real tiny checkpoints (a checkpoint
that does not load leaves the old model running), and a real ``uprm serve`` switched
while a job runs: that job finishes on the old model, the next runs on the new one, each
records its checkpoint's fingerprint and no job is lost. A switch survives a restart of
the worker and of the server with the same ``--checkpoint`` (tested in process)."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from uprm.serve import ServeConfig

TOKEN = "model-token-0123456789abcdef"


def tiny_checkpoint(folder, seed=0):
    import uprm

    return uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, seed=seed, experts=["coarse"])).save_pretrained(folder)


@pytest.fixture
def models(tmp_path, fake_checkpoint):
    root = tmp_path / "models"
    fake_checkpoint(root / "site" / "v2")
    fake_checkpoint(root / "v3")
    fake_checkpoint(root / "llava", model_type="llava")
    (root / "empty").mkdir()
    (root / "garbled").mkdir()
    (root / "garbled" / "config.json").write_text("{not json")
    (root / "garbled" / "model.safetensors").write_bytes(b"")
    fake_checkpoint(tmp_path / "elsewhere")
    (root / "link-out").symlink_to(tmp_path / "elsewhere")
    return root


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"], body
    return body


@pytest.mark.parametrize("given, status, code", [
    ("../elsewhere", 400, "path_traversal"),
    ("link-out", 403, "outside_models_dir"),
    ("ELSEWHERE", 403, "outside_models_dir"),  # an absolute path outside (filled in below)
    ("nothing", 404, "checkpoint_not_found"),
    ("empty", 422, "not_a_checkpoint"),
    ("llava", 422, "not_a_checkpoint"),
    ("garbled", 422, "not_a_checkpoint"),
    ("", 400, "bad_checkpoint"),
])
def test_a_checkpoint_outside_the_models_folder_or_not_a_checkpoint_is_refused(make_client, models, tmp_path, given,
                                                                               status, code):
    client = make_client(models_dir=models)
    given = str(tmp_path / "elsewhere") if given == "ELSEWHERE" else given
    body = problem(client.post("/v1/model", json={"checkpoint": given}), status, code)
    assert str(tmp_path) not in body["detail"]  # no server path in the answer
    model = client.get("/v1/model").json()
    assert model["checkpoint"] == "base" and model["switch"] is None
    assert client.app.state.service.store.get_meta("checkpoint_choice") is None


def test_a_checkpoint_under_the_models_folder_is_chosen_for_the_next_jobs(make_client, models, tmp_path,
                                                                          fake_checkpoint):
    client = make_client(models_dir=models)
    before = client.get("/v1/model").json()
    assert before == {"checkpoint": "base", "pending": True, "loaded": None, "switch": None,
                      "models": ["site/v2", "v3"], "models_dir": True}
    r = client.post("/v1/model", json={"checkpoint": "site/v2"})
    assert r.status_code == 202, r.text
    assert r.json()["checkpoint"] == "site/v2" and r.json()["pending"]  # no worker has loaded it
    assert client.post("/v1/model", json={"checkpoint": str(models / "v3")}).json()["checkpoint"] == "v3"
    problem(client.post("/v1/model", json={"checkpoint": "v3", "now": True}), 422, "invalid_request")
    problem(client.post("/v1/model", json={}), 422, "invalid_request")
    client.__exit__(None, None, None)
    assert make_client(models_dir=models).get("/v1/model").json()["checkpoint"] == "v3"  # a restart keeps it
    other = make_client(models_dir=models, checkpoint=fake_checkpoint(tmp_path / "newer"))
    assert other.get("/v1/model").json()["checkpoint"] == "newer"  # another --checkpoint wins


def test_without_a_models_folder_switching_is_refused(make_client):
    client = make_client()
    problem(client.post("/v1/model", json={"checkpoint": "v2"}), 403, "models_dir_disabled")
    assert client.get("/v1/model").json()["models"] == [] and not client.get("/v1/model").json()["models_dir"]


def test_switching_needs_the_token_when_the_server_has_one(make_client, models):
    client = make_client(models_dir=models, token=TOKEN)
    problem(client.post("/v1/model", json={"checkpoint": "v3"}), 401, "unauthorized")
    problem(client.get("/v1/model"), 401, "unauthorized")
    assert client.post("/v1/session", json={"token": TOKEN}).status_code == 204
    problem(client.post("/v1/model", json={"checkpoint": "v3"}), 403, "csrf")
    assert client.app.state.service.store.get_meta("checkpoint_choice") is None
    ok = client.post("/v1/model", json={"checkpoint": "v3"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 202


@pytest.mark.slow
def test_the_worker_switches_between_jobs_and_keeps_its_model_when_a_checkpoint_does_not_load(tmp_path):
    from uprm.modeling import model_fingerprint
    from uprm.serve.models import CHOICE, SWITCH, choose
    from uprm.serve.store import JobStore
    from uprm.serve.worker import Worker

    base = tiny_checkpoint(tmp_path / "base")
    models = tmp_path / "models"
    new = tiny_checkpoint(models / "new", seed=1)
    broken = models / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((new / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    config = ServeConfig(checkpoint=base, data_dir=tmp_path / "data", models_dir=models, device="cpu")
    config.check_paths()
    store = JobStore(config.db_path)
    worker = Worker(config, store, parent=None)
    worker._load_first()
    assert worker.fingerprint == model_fingerprint(base) != model_fingerprint(new)
    worker.switch()  # nothing chosen: nothing happens
    assert worker.checkpoint == str(base)

    choose(store, config, broken)
    worker.switch()
    assert worker.fingerprint == model_fingerprint(base)  # the old model keeps running
    failed = store.get_meta(SWITCH)
    assert failed["state"] == "failed" and failed["checkpoint"] == "broken" and str(tmp_path) not in failed["error"]
    assert store.get_meta(CHOICE)["checkpoint"] == str(base)  # not retried for ever

    choose(store, config, new)
    worker.switch()
    assert worker.fingerprint == model_fingerprint(new) and worker.checkpoint == str(new)
    assert store.get_meta("model")["checkpoint"] == "new"
    assert store.get_meta("model")["fingerprint"] == model_fingerprint(new)
    assert store.get_meta(SWITCH)["state"] == "done"
    restarted = Worker(config, store, parent=None)
    restarted._load_first()  # a new worker (a restart) loads the chosen checkpoint
    assert restarted.fingerprint == model_fingerprint(new)
    store.close()


def _wait(client, job_id, states, timeout=240.0) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in states:
        assert time.monotonic() < deadline, f"job {job_id} is still {job['state']}"
        time.sleep(0.1)
    return job


def _post_video(client, path) -> dict:
    with open(path, "rb") as fh:
        r = client.post("/v1/jobs", files={"video": (path.name, fh, "video/mp4")})
    assert r.status_code == 202, r.text
    return r.json()


@pytest.mark.slow
def test_a_switch_while_a_job_runs_loses_nothing_and_each_result_records_its_model(start_server, checkpoint, videos,
                                                                                   tmp_path):
    from uprm.modeling import model_fingerprint

    models = tmp_path / "models"
    new = tiny_checkpoint(models / "site-v2", seed=7)
    old_print, new_print = model_fingerprint(checkpoint), model_fingerprint(new)
    server = start_server(checkpoint, "--models-dir", str(models), name="switch")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/v1/model").json()["loaded"]["fingerprint"] == old_print
        first = _post_video(client, videos["long"])  # 64 s: 15 windows
        _wait(client, first["id"], ("running", "done", "failed"))
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGSTOP)  # the job stays running while the model is switched
        try:
            assert client.get(f"/v1/jobs/{first['id']}").json()["state"] == "running"
            switched = client.post("/v1/model", json={"checkpoint": "site-v2"})
            assert switched.status_code == 202 and switched.json()["checkpoint"] == "site-v2"
        finally:
            os.kill(worker, signal.SIGCONT)
        second = _post_video(client, videos["short"])
        first, second = (_wait(client, j["id"], ("done", "failed")) for j in (first, second))
        assert (first["state"], second["state"]) == ("done", "done")
        assert (first["model"], second["model"]) == (old_print, new_print)
        for job in (first, second):  # the result records it too
            result = client.get(f"/v1/jobs/{job['id']}/result").json()
            assert result["settings"]["requested"]["checkpoint"] == job["model"]
        model = client.get("/v1/model").json()
        assert model["checkpoint"] == "site-v2" and not model["pending"]
        assert model["loaded"]["fingerprint"] == new_print and model["switch"]["state"] == "done"
        assert client.get("/v1/jobs").json()["counts"] == {"queued": 0, "running": 0, "done": 2, "failed": 0}
    server.stop()
    assert model_fingerprint(new) == new_print  # the checkpoint is only read
