"""The REST API in process (FastAPI's TestClient), jobs queued without a worker: what is
accepted and refused, with which status and error body; limits; paths under the media
root; the token; the page's headers; the OpenAPI document."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from uprm.serve import ServeConfig, ServeConfigError, create_app
from uprm.serve.auth import COOKIE

TOKEN = "s3cret-token-of-32-characters-xx"


@pytest.fixture
def client(make_client, videos):
    return make_client(media_root=videos["shop"].parent)


def upload(client, data: bytes, name="clip.mp4", content_type="video/mp4", **kw):
    return client.post("/v1/jobs", files={"video": (name, data, content_type)}, **kw)


def assert_problem(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"] and body["title"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def test_an_upload_is_queued_with_what_its_content_says(client, videos):
    r = upload(client, videos["shop"].read_bytes(), name="../../etc/shop cam.mp4", content_type="text/plain")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "queued" and job["queue_position"] == 0 and job["attempts"] == 0
    assert job["video"] == {"name": "shop cam.mp4", "source": "upload", "media_type": "video/mp4",
                            "size": videos["shop"].stat().st_size, "duration": 40.0}
    assert client.get(f"/v1/jobs/{job['id']}").json() == job
    data = client.app.state.service.config
    stored = data.uploads_dir / job["id"]  # a generated name, nothing of the client's
    assert stored.read_bytes() == videos["shop"].read_bytes()
    assert [p.name for p in data.uploads_dir.iterdir()] == [job["id"]]  # no temporary file left
    second = upload(client, videos["quiet"].read_bytes()).json()
    assert second["queue_position"] == 1
    listed = client.get("/v1/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == [second["id"], job["id"]]
    assert listed["counts"] == {"queued": 2, "running": 0, "done": 0, "failed": 0}


@pytest.mark.parametrize("content, code, status", [
    (b"GIF89a" + b"\x00" * 200, "not_a_video", 415),
    (b"just some text, not a video at all\n" * 20, "not_a_video", 415),
    (b"", "empty_file", 400),
])
def test_a_non_video_is_refused_whatever_its_declared_type(client, content, code, status):
    r = upload(client, content, name="clip.mp4", content_type="video/mp4")
    assert_problem(r, status, code)
    assert list(client.app.state.service.config.uploads_dir.iterdir()) == []
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_a_damaged_or_cut_video_is_refused(client, videos):
    data = videos["shop"].read_bytes()
    assert_problem(upload(client, data[: len(data) // 2]), 400, "damaged_video")  # the moov index is at the end
    broken = data[:64] + bytes(len(data) - 64)  # an MP4 header, then zeros
    assert upload(client, broken).status_code in (400, 415)
    assert list(client.app.state.service.config.uploads_dir.iterdir()) == []


def test_an_audio_only_file_is_refused(client, tmp_path):
    import av
    import numpy as np

    path = tmp_path / "tone.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert_problem(upload(client, path.read_bytes()), 415, "no_video_stream")


def test_the_body_must_be_multipart_or_json(client):
    assert_problem(client.post("/v1/jobs", content=b"x", headers={"content-type": "video/mp4"}), 415,
                   "unsupported_body")
    assert_problem(client.post("/v1/jobs", files={"other": ("a.mp4", b"x")}), 400, "missing_video")
    assert_problem(client.post("/v1/jobs", content=b"{", headers={"content-type": "application/json"}), 400,
                   "bad_json")
    assert_problem(client.post("/v1/jobs", json={"path": "a.mp4", "more": 1}), 422, "invalid_request")
    two = [("video", ("a.mp4", b"1")), ("video", ("b.mp4", b"2"))]
    assert_problem(client.post("/v1/jobs", files=two), 400, "several_videos")


def test_an_upload_over_the_limit_is_413_whether_declared_or_streamed(make_client, videos):
    client = make_client(max_upload_bytes=1000)
    data = videos["shop"].read_bytes()
    assert len(data) > 1000
    body = assert_problem(upload(client, data), 413, "upload_too_large")
    assert body["limit"] == 1000

    def chunks():  # no Content-Length: counted while it arrives
        boundary = b"b0undary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'
        for i in range(0, len(data), 500):
            yield data[i:i + 500]
        yield b"\r\n--" + boundary + b"--\r\n"

    r = client.post("/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert_problem(r, 413, "upload_too_large")
    assert list(client.app.state.service.config.uploads_dir.iterdir()) == []
    huge = {"content-length": str(10 << 30), "content-type": "multipart/form-data; boundary=x"}
    assert_problem(client.post("/v1/jobs", content=b"--x--\r\n", headers=huge), 413, "upload_too_large")


def test_a_full_queue_answers_429_and_keeps_nothing(make_client, videos):
    client = make_client(max_queue=2)
    data = videos["quiet"].read_bytes()
    assert [upload(client, data).status_code for _ in range(2)] == [202, 202]
    r = upload(client, data)
    assert_problem(r, 429, "queue_full")
    assert r.headers["retry-after"] == "5"
    assert len(list(client.app.state.service.config.uploads_dir.iterdir())) == 2
    assert client.get("/v1/jobs").json()["counts"]["queued"] == 2


def test_path_jobs_stay_inside_the_media_root(client, videos, tmp_path):
    root = videos["shop"].parent
    ok = client.post("/v1/jobs", json={"path": "shop.mp4"})
    assert ok.status_code == 202 and ok.json()["video"]["name"] == "shop.mp4"
    assert ok.json()["video"]["source"] == "path"
    assert client.post("/v1/jobs", json={"path": str(root / "quiet.mp4")}).status_code == 202  # absolute, inside
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(videos["quiet"].read_bytes())
    assert_problem(client.post("/v1/jobs", json={"path": "../" + outside.name}), 400, "path_traversal")
    assert_problem(client.post("/v1/jobs", json={"path": "sub/../../x.mp4"}), 400, "path_traversal")
    assert_problem(client.post("/v1/jobs", json={"path": str(outside)}), 403, "outside_media_root")
    link = root / "link-out.mp4"
    link.symlink_to(outside)
    try:
        assert_problem(client.post("/v1/jobs", json={"path": "link-out.mp4"}), 403, "outside_media_root")
        assert "link-out.mp4" not in [f["path"] for f in client.get("/v1/media").json()["files"]]
    finally:
        link.unlink()
    assert_problem(client.post("/v1/jobs", json={"path": "nothing.mp4"}), 404, "media_not_found")
    assert_problem(client.post("/v1/jobs", json={"path": ""}), 400, "bad_path")
    assert_problem(client.post("/v1/jobs", json={"path": "a\x00b"}), 400, "bad_path")
    (root / "notes.mp4").write_text("not a video")
    try:
        assert_problem(client.post("/v1/jobs", json={"path": "notes.mp4"}), 415, "not_a_video")
    finally:
        (root / "notes.mp4").unlink()
    media = client.get("/v1/media").json()
    assert media["enabled"] and {f["path"] for f in media["files"]} == {"shop.mp4", "quiet.mp4", "short.mp4",
                                                                       "long.mp4"}


def test_without_a_media_root_path_jobs_are_refused(make_client):
    client = make_client()
    assert_problem(client.post("/v1/jobs", json={"path": "shop.mp4"}), 403, "media_root_disabled")
    assert client.get("/v1/media").json() == {"enabled": False, "files": [], "truncated": False}


def test_unknown_jobs_and_unfinished_results(client, videos):
    assert_problem(client.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404, "job_not_found")
    assert_problem(client.get("/v1/jobs/../../etc/passwd"), 404, "not_found")
    assert_problem(client.get("/v1/jobs/not-an-id"), 404, "job_not_found")
    job = upload(client, videos["quiet"].read_bytes()).json()
    for tail in ("result", "timeline.png", "evidence/1.png"):
        body = assert_problem(client.get(f"/v1/jobs/{job['id']}/{tail}"), 409, "job_not_finished")
        assert body["state"] == "queued"
    assert_problem(client.delete(f"/v1/jobs/{job['id']}"), 409, "job_not_finished")
    assert_problem(client.get("/v1/nothing"), 404, "not_found")
    assert_problem(client.put("/v1/jobs"), 405, "method_not_allowed")
    assert_problem(client.get("/v1/jobs?limit=0"), 422, "invalid_request")


def test_the_video_is_served_with_range_requests(client, videos):
    job = upload(client, videos["shop"].read_bytes()).json()
    data = videos["shop"].read_bytes()
    whole = client.get(job["links"]["video"])
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"
    part = client.get(job["links"]["video"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(job["links"]["video"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert client.get(job["links"]["video"], headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416


def test_an_unexpected_error_is_a_500_without_traceback(client, monkeypatch):
    store = client.app.state.service.store

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal state /srv/private/path")

    monkeypatch.setattr(store, "list", boom)
    r = client.get("/v1/jobs")
    body = assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text and "/srv/private" not in r.text and body["incident"] in body["detail"]


def test_listening_beyond_loopback_needs_a_long_token(make_client, tmp_path):
    ckpt = tmp_path / "ckpt"
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(ServeConfigError, match="token"):
            create_app(ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "d", host=host))
        with pytest.raises(ServeConfigError, match="16 characters"):
            create_app(ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "d", host=host, token="short"))
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        create_app(ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "d", host=host))
    assert TOKEN not in repr(ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "d", token=TOKEN))
    assert TOKEN not in ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "d", token=TOKEN).to_json()


def test_the_token_guards_every_api_route(make_client, videos):
    client = make_client(host="0.0.0.0", token=TOKEN, media_root=videos["shop"].parent)
    for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/media"), ("GET", "/v1/experts"),
                         ("POST", "/v1/jobs"), ("GET", "/v1/jobs/0123456789abcdef0123456789abcdef/video")):
        r = client.request(method, path)
        assert_problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert_problem(client.request(method, path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "y"}), 401,
                       "unauthorized")
        assert_problem(client.request(method, path, headers={"Authorization": "Basic " + TOKEN}), 401,
                       "unauthorized")
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/v1/jobs", headers=good).status_code == 200
    assert upload(client, videos["quiet"].read_bytes(), headers=good).status_code == 202
    assert client.get("/healthz").status_code == 200  # open: load balancers probe it
    assert client.get("/").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_the_page_trades_the_token_for_a_strict_cookie(make_client, videos):
    client = make_client(host="0.0.0.0", token=TOKEN)
    assert_problem(client.post("/v1/session", json={"token": "wrong"}), 401, "unauthorized")
    r = client.post("/v1/session", json={"token": TOKEN})
    assert r.status_code == 204
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert client.get("/v1/jobs").status_code == 200  # reads with the cookie alone
    # a change needs the header a cross-site form cannot send
    assert_problem(upload(client, videos["quiet"].read_bytes()), 403, "csrf")
    assert upload(client, videos["quiet"].read_bytes(), headers={"X-Requested-With": "uprm"}).status_code == 202
    assert client.delete("/v1/session").status_code == 204
    client.cookies.clear()
    assert_problem(client.get("/v1/jobs"), 401, "unauthorized")


def test_the_page_is_self_contained_and_locked_down(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/app.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "content-security-policy" in r.headers
    html = page.text + client.get("/static/app.js").text + client.get("/static/app.css").text
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN
    assert "innerHTML" not in client.get("/static/app.js").text  # model text goes in as text only


def test_the_openapi_document_describes_both_ways_to_submit(client):
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/jobs"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"202", "413", "415", "429"} <= set(post["responses"])
    for path in ("/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/jobs/{job_id}/timeline.png",
                 "/v1/experts", "/healthz"):
        assert path in doc["paths"]
    assert client.get("/docs").status_code == 200


def test_experts_wait_for_the_worker(client):
    assert_problem(client.get("/v1/experts"), 503, "worker_starting")
    health = client.get("/healthz").json()
    assert health["worker"] == "disabled" and health["ready"] is False


def test_accepted_jobs_survive_a_restart_and_orphans_go(make_client, videos, tmp_path):
    first = make_client()
    job = upload(first, videos["quiet"].read_bytes()).json()
    config = first.app.state.service.config
    first.__exit__(None, None, None)
    (config.uploads_dir / "feedfacefeedfacefeedfacefeedface").write_bytes(b"left by a crash")
    second = make_client()
    assert second.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"
    assert [p.name for p in config.uploads_dir.iterdir()] == [job["id"]]
    with sqlite3.connect(config.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT event FROM events WHERE job = ?", (job["id"],))] == ["queued"]


def test_settings_reach_the_worker_without_the_token(make_client):
    client = make_client(token=TOKEN, window=6.0)
    config = client.app.state.service.config
    config.write()
    saved = json.loads((config.root / "serve.json").read_text())
    assert saved["token"] is None and saved["window"] == 6.0
    assert TOKEN not in (config.root / "serve.json").read_text()
    assert ServeConfig.from_json((config.root / "serve.json").read_text()).window == 6.0
    assert not any(TOKEN in p.read_text(errors="ignore") for p in config.root.glob("*") if p.is_file()
                   and os.access(p, os.R_OK) and p.suffix == ".json")


def test_deleting_a_finished_job_removes_its_files_but_never_a_media_file(client, videos):
    service = client.app.state.service
    uploaded = upload(client, videos["quiet"].read_bytes()).json()
    chosen = client.post("/v1/jobs", json={"path": "quiet.mp4"}).json()
    for job in (uploaded, chosen):  # as the worker would
        assert service.store.claim(3).id == job["id"]
        (service.config.results_dir / job["id"]).mkdir(parents=True)
        (service.config.results_dir / job["id"] / "quiet.json").write_text("{}")
        service.store.finish(job["id"], "quiet")
    assert client.get(f"/v1/jobs/{uploaded['id']}/result").json() == {}
    for job in (uploaded, chosen):
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
        assert_problem(client.get(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
        assert not (service.config.results_dir / job["id"]).exists()
    assert list(service.config.uploads_dir.iterdir()) == []
    assert videos["quiet"].is_file()  # the media root is never written to


def test_a_large_upload_arrives_whole_and_answers_head(client, tmp_path):
    import numpy as np

    from uprm.data import write_mp4

    rng = np.random.default_rng(0)  # noise does not compress: a few MiB, several disk writes
    video = write_mp4(tmp_path / "noise.mp4", (rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
                                               for _ in range(60)), fps=10)
    data = video.read_bytes()
    assert len(data) > 2 << 20
    job = upload(client, data, name="noise.mp4").json()
    assert (client.app.state.service.config.uploads_dir / job["id"]).read_bytes() == data
    head = client.head(job["links"]["video"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""


def test_the_api_process_never_imports_torch(tmp_path, videos):
    """The API stays light (the worker holds the model): a fresh interpreter that builds
    the app and queues an upload and a path job has not imported torch or transformers."""
    import subprocess
    import sys

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    script = f"""
import sys
from fastapi.testclient import TestClient
from uprm.serve import ServeConfig, create_app
import uprm.cli.serve, uprm.serve.server
config = ServeConfig(checkpoint={str(tmp_path / "ckpt")!r}, data_dir={str(tmp_path / "data")!r},
                     media_root={str(videos["shop"].parent)!r})
with TestClient(create_app(config, worker=False)) as client:
    with open({str(videos["quiet"])!r}, "rb") as fh:
        assert client.post("/v1/jobs", files={{"video": ("q.mp4", fh, "video/mp4")}}).status_code == 202
    assert client.post("/v1/jobs", json={{"path": "shop.mp4"}}).status_code == 202
    assert client.get("/v1/jobs").status_code == 200 and client.get("/").status_code == 200
print(sorted(m for m in ("torch", "transformers", "peft", "matplotlib") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
