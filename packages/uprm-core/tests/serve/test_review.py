"""Reviews and labels through the REST API, in process (FastAPI's TestClient), jobs
finished by hand (no worker, no model): a review only of a finished job, validated
against the video's duration and the taxonomy, stored with who and when, superseding the
earlier one but keeping it, surviving a restart, guarded by the token; the labels as
ActivityNet ground truth and as instruction JSON over windows; the taxonomy route."""

from __future__ import annotations

import json

import pytest

TOKEN = "review-token-0123456789abcdef"


def upload(client, video, name=None, **kw) -> dict:
    with open(video, "rb") as fh:
        r = client.post("/v1/jobs", files={"video": (name or video.name, fh, "video/mp4")}, **kw)
    assert r.status_code == 202, r.text
    return r.json()


def finish(client, job: dict, segments=({"start": 12.0, "end": 32.0, "score": 0.9, "cause": "a bag taken"},),
           model="sha256:old") -> None:
    """Do what the worker does at the end of a job: write the result, mark it done."""
    service = client.app.state.service
    store = service.store
    assert store.claim(3).id == job["id"]
    vid = job["video"]["name"].rsplit(".", 1)[0]
    out = service.config.results_dir / job["id"]
    out.mkdir(parents=True)
    (out / f"{vid}.json").write_text(json.dumps({"video": job["video"]["name"], "video_id": vid,
                                                 "duration": job["video"]["duration"], "segments": list(segments)}))
    store.finish(job["id"], vid, model)


def finished_job(client, video, name=None) -> dict:
    job = upload(client, video, name)
    finish(client, job)
    return client.get(f"/v1/jobs/{job['id']}").json()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"], body
    return body


GOOD = {"reviewer": "alice", "segments": [
    {"start": 13.5, "end": 30.0, "category": "robbery", "cause": "a man grabs a bag", "verdict": "confirmed"},
    {"start": 2.0, "end": 5.0, "category": "Road Accidents", "cause": None, "verdict": "added"},
    {"start": 34.0, "end": 36.0, "category": None, "cause": "nothing", "verdict": "rejected"}]}


def test_a_review_needs_a_finished_job(make_client, videos):
    client = make_client()
    job = upload(client, videos["shop"])
    body = problem(client.post(f"/v1/jobs/{job['id']}/review", json=GOOD), 409, "job_not_finished")
    assert body["state"] == "queued"
    problem(client.post("/v1/jobs/0123456789abcdef0123456789abcdef/review", json=GOOD), 404, "job_not_found")
    assert client.get(f"/v1/jobs/{job['id']}/review").json() == {"current": None, "history": []}
    assert client.app.state.service.store.reviews(job["id"]) == []


@pytest.mark.parametrize("change, status, code, named", [
    ({"verdict": "maybe"}, 422, "invalid_request", "verdict"),
    ({"start": 20.0, "end": 20.0}, 422, "invalid_request", "after start"),
    ({"start": -1.0}, 422, "invalid_request", "start"),
    ({"end": 40.5}, 422, "segment_outside_video", "40 s"),
    ({"category": "Burgling"}, 422, "unknown_category", "'Burgling'"),
    ({"category": "Normal"}, 422, "threat_category_needed", "threat category"),
    ({"category": None, "verdict": "added"}, 422, "threat_category_needed", "threat category"),
    ({"colour": "red"}, 422, "invalid_request", "colour"),
])
def test_a_review_is_checked_against_the_video_and_the_taxonomy(make_client, videos, change, status, code, named):
    client = make_client()
    job = finished_job(client, videos["shop"])  # 40 s
    review = {"reviewer": "alice", "segments": [{**GOOD["segments"][0], **change}]}
    body = problem(client.post(f"/v1/jobs/{job['id']}/review", json=review), status, code)
    assert named in json.dumps(body)
    if code == "unknown_category":  # names it and lists the categories
        assert body["categories"][:3] == ["Abuse", "Arrest", "Arson"] and "Normal" in body["categories"]
        assert "Robbery" in body["detail"] and "segments[0]" in body["detail"]
    assert client.app.state.service.store.reviews(job["id"]) == []
    problem(client.post(f"/v1/jobs/{job['id']}/review", json={"segments": []}), 422, "invalid_request")  # no reviewer
    problem(client.post(f"/v1/jobs/{job['id']}/review", content=b"{", headers={"content-type": "application/json"}),
            400, "bad_json")


def test_a_later_review_supersedes_the_earlier_which_stays_in_the_history(make_client, videos):
    client = make_client()
    job = finished_job(client, videos["shop"])
    assert job["model"] == "sha256:old" and job["links"]["review"] == f"/v1/jobs/{job['id']}/review"
    r = client.post(f"/v1/jobs/{job['id']}/review", json=GOOD)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/jobs/{job['id']}/review"
    first = r.json()
    assert first["reviewer"] == "alice" and first["revision"] == 1 and first["at"].endswith("Z")
    assert first["label"] == "Robbery"  # the threat covering the most time
    assert [(s["start"], s["end"], s["category"], s["severity"], s["verdict"]) for s in first["segments"]] == [
        (2.0, 5.0, "RoadAccidents", "high", "added"),  # the taxonomy's names, ordered by start
        (13.5, 30.0, "Robbery", "critical", "confirmed"),
        (34.0, 36.0, None, None, "rejected")]
    second = {"reviewer": "  bob ", "segments": [{**s, "verdict": "rejected"} for s in GOOD["segments"][::2]]}
    assert client.post(f"/v1/jobs/{job['id']}/review", json=second).status_code == 201
    got = client.get(f"/v1/jobs/{job['id']}/review").json()
    assert got["current"]["reviewer"] == "bob" and got["current"]["revision"] == 2 and got["current"]["label"] == "Normal"
    assert got["history"] == [first]
    stored = client.app.state.service.store.reviews(job["id"])
    assert [r["reviewer"] for r in stored] == ["bob", "alice"] and stored[1]["at"] <= stored[0]["at"]
    assert stored[1]["segments"][1] == {"start": 13.5, "end": 30.0, "category": "Robbery",
                                        "cause": "a man grabs a bag", "verdict": "confirmed"}


def test_reviews_survive_a_restart_and_go_with_their_job(make_client, videos):
    client = make_client()
    job = finished_job(client, videos["shop"])
    other = finished_job(client, videos["quiet"])
    assert client.post(f"/v1/jobs/{job['id']}/review", json=GOOD).status_code == 201
    assert client.post(f"/v1/jobs/{other['id']}/review", json={"reviewer": "a", "segments": []}).status_code == 201
    before = client.get(f"/v1/jobs/{job['id']}/review").json()
    client.__exit__(None, None, None)
    restarted = make_client()
    assert restarted.get(f"/v1/jobs/{job['id']}/review").json() == before
    events = [e["event"] for e in restarted.app.state.service.store.events(job["id"])]
    assert events == ["queued", "started", "done", "reviewed"]
    assert restarted.delete(f"/v1/jobs/{other['id']}").status_code == 204
    assert restarted.app.state.service.store.reviews(other["id"]) == []
    assert list(restarted.get("/v1/labels").json()["database"]) == ["shop"]


def test_a_review_needs_the_token_when_the_server_has_one(make_client, videos):
    client = make_client(token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    job = upload(client, videos["shop"], headers=bearer)
    finish(client, job)
    url = f"/v1/jobs/{job['id']}/review"
    problem(client.post(url, json=GOOD), 401, "unauthorized")
    problem(client.get(url), 401, "unauthorized")
    problem(client.get("/v1/labels"), 401, "unauthorized")
    assert client.post("/v1/session", json={"token": TOKEN}).status_code == 204
    problem(client.post(url, json=GOOD), 403, "csrf")  # the cookie alone does not change anything
    assert client.app.state.service.store.reviews(job["id"]) == []
    assert client.post(url, json=GOOD, headers={"X-Requested-With": "uprm"}).status_code == 201
    client.cookies.clear()
    assert client.post(url, json=GOOD, headers=bearer).status_code == 201
    assert len(client.app.state.service.store.reviews(job["id"])) == 2


def test_labels_as_activitynet_ground_truth(make_client, videos, tmp_path):
    from uprm.data import read_activitynet

    client = make_client()
    shop, quiet, short = (finished_job(client, videos[n]) for n in ("shop", "quiet", "short"))
    finished_job(client, videos["long"])  # never reviewed: not in the labels
    client.post(f"/v1/jobs/{shop['id']}/review", json=GOOD)
    rejected = {"reviewer": "a", "segments": [{"start": 4.0, "end": 8.0, "verdict": "rejected"}]}
    client.post(f"/v1/jobs/{quiet['id']}/review", json=rejected)
    client.post(f"/v1/jobs/{short['id']}/review", json={"reviewer": "a", "segments": [
        {"start": 1.0, "end": 3.0, "category": "Fighting", "verdict": "added"}]})
    again = finished_job(client, videos["short"])  # the same video again: its latest review wins
    client.post(f"/v1/jobs/{again['id']}/review", json={"reviewer": "b", "segments": [
        {"start": 4.0, "end": 8.0, "category": "Fighting", "cause": "two men fight", "verdict": "confirmed"},
        {"start": 7.0, "end": 10.0, "category": "Fighting", "verdict": "added"}]})
    r = client.get("/v1/labels?format=activitynet")
    assert r.status_code == 200 and 'filename="activitynet.json"' in r.headers["content-disposition"]
    path = tmp_path / "activitynet.json"
    path.write_text(r.text)
    labels = {a.video_id: a for a in read_activitynet(path)}  # the reader of uprm eval and uprm adapt
    assert list(labels) == ["shop", "quiet", "short"]
    assert labels["shop"].category == "Robbery"
    assert labels["shop"].segments == [(2.0, 5.0), (13.5, 30.0)]  # confirmed and added; the rejected one is not
    assert labels["shop"].causes == ["a man grabs a bag"] and labels["shop"].duration == 40.0
    assert labels["quiet"].category == "Normal" and labels["quiet"].segments == []
    assert labels["short"].segments == [(4.0, 10.0)] and labels["short"].causes == ["two men fight"]
    assert r.json()["database"]["short"]["job"] == again["id"]
    assert client.get("/v1/labels").json() == r.json()  # activitynet is the default
    problem(client.get("/v1/labels?format=csv"), 422, "invalid_request")


def test_labels_as_instructions_over_windows_with_the_normal_time_as_negatives(make_client, videos):
    client = make_client()
    shop = finished_job(client, videos["shop"])  # 40 s
    quiet = finished_job(client, videos["quiet"])  # 12 s
    client.post(f"/v1/jobs/{shop['id']}/review", json={"reviewer": "a", "segments": [
        {"start": 12.0, "end": 32.0, "verdict": "rejected"},
        {"start": 20.0, "end": 30.0, "category": "Robbery", "cause": "a man grabs a bag", "verdict": "confirmed"}]})
    client.post(f"/v1/jobs/{quiet['id']}/review", json={"reviewer": "a", "segments": []})
    r = client.get("/v1/labels?format=instructions&window=10&stride=10")
    assert r.status_code == 200
    records = r.json()
    windows = {}
    for rec in records:
        windows.setdefault((rec["video_id"], tuple(rec["window"])), {})[rec["task"]] = rec["conversations"][1]["value"]
    assert sorted(windows) == [("quiet", (0.0, 10.0)), ("quiet", (10.0, 12.0)), ("shop", (0.0, 10.0)),
                               ("shop", (10.0, 20.0)), ("shop", (20.0, 30.0)), ("shop", (30.0, 40.0))]
    assert windows[("shop", (20.0, 30.0))] == {
        "identify": "Yes, there exists a threat.", "locate": "The threat occurs between 0 and 10 seconds.",
        "attribute": "The threat is attributed to a man grabs a bag."}
    for key in [("shop", (0.0, 10.0)), ("shop", (10.0, 20.0)), ("shop", (30.0, 40.0)), ("quiet", (0.0, 10.0))]:
        assert windows[key]["identify"] == "No, there is no threat."  # the reviewed normal time
    assert {r["video"] for r in records} == {"shop.mp4", "quiet.mp4"}
    default = client.get("/v1/labels?format=instructions").json()  # the service's --window 8 --stride 4
    assert {tuple(r["window"]) for r in default if r["video_id"] == "quiet"} == {(0.0, 8.0), (4.0, 12.0)}


def test_a_site_taxonomy_gives_the_categories_and_severities(make_client, videos, site_taxonomy):
    client = make_client(taxonomy=site_taxonomy)
    tax = client.get("/v1/taxonomy").json()
    assert tax["name"] == "warehouse" and tax["threats"] == ["Trespassing", "Fall", "BagSnatching"]
    assert [c["name"] for c in tax["categories"]] == ["Trespassing", "Fall", "BagSnatching", "Normal"]
    assert tax["categories"][1] == {"name": "Fall", "description": "A worker falls.", "severity": "critical",
                                    "causes": ["a worker slipping on a wet floor", "a person falling from a ladder"],
                                    "aliases": ["Slip"]}
    job = finished_job(client, videos["shop"])
    body = problem(client.post(f"/v1/jobs/{job['id']}/review", json=GOOD), 422, "unknown_category")
    assert body["categories"] == ["Trespassing", "Fall", "BagSnatching", "Normal"] and "'robbery'" in body["detail"]
    review = {"reviewer": "a", "segments": [{"start": 1.0, "end": 4.0, "category": "slip", "verdict": "added"},
                                            {"start": 12.0, "end": 32.0, "category": "Trespassing",
                                             "verdict": "confirmed"}]}
    saved = client.post(f"/v1/jobs/{job['id']}/review", json=review).json()
    assert [(s["category"], s["severity"]) for s in saved["segments"]] == [("Fall", "critical"), ("Trespassing", "high")]
    assert saved["label"] == "Trespassing"
    records = client.get("/v1/labels?format=instructions&window=40&stride=40").json()
    attribute = [r for r in records if r["task"] == "attribute"]  # no cause given: one of the taxonomy's phrasings
    phrasings = [f"The threat is attributed to {cause}." for cause in tax["categories"][0]["causes"]]
    assert attribute and attribute[0]["conversations"][1]["value"] in phrasings


def test_the_page_gets_the_default_taxonomy(make_client):
    tax = make_client().get("/v1/taxonomy").json()
    assert len(tax["threats"]) == 13 and tax["categories"][-1]["name"] == "Normal"
    assert {c["name"]: c["severity"] for c in tax["categories"]}["Arson"] == "critical"


def test_a_review_whose_category_the_new_taxonomy_lacks_stops_the_labels_naming_the_job(make_client, videos,
                                                                                        site_taxonomy):
    client = make_client()
    job = finished_job(client, videos["shop"])
    client.post(f"/v1/jobs/{job['id']}/review", json=GOOD)
    client.__exit__(None, None, None)
    restarted = make_client(taxonomy=site_taxonomy)  # the site's taxonomy replaces UCF-Crime's
    body = problem(restarted.get("/v1/labels"), 409, "unknown_category")
    assert job["id"] in body["detail"] and "'RoadAccidents'" in body["detail"] and "again" in body["detail"]
    current = restarted.get(f"/v1/jobs/{job['id']}/review").json()["current"]
    assert current["label"] == "unknown" and {s["severity"] for s in current["segments"]} == {None}
