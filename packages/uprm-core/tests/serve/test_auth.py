"""The bearer token is compared whole: a truncated token, an empty one, the token with a
character more and the token in another case are each refused — in the
``Authorization`` header, in the token traded for the page's cookie
(``POST /v1/session``), as the cookie itself, and on the paths the page loads through
the cookie (the video, the pictures). No path takes the token from the query string."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from uprm.serve import ServeConfig, create_app
from uprm.serve.auth import COOKIE, Auth

TOKEN = "s3cret-Token-of-32-characters-xY"
JOB = "0123456789abcdef0123456789abcdef"
#: what a check that is not an exact comparison lets through (startswith either way, a
#: prefix, case folding, a suffix)
NEAR_MISSES = {
    "truncated by one": TOKEN[:-1],
    "the first half": TOKEN[:16],
    "the first character": TOKEN[:1],
    "empty": "",
    "blank": "   ",
    "one character more": TOKEN + "x",
    "doubled": TOKEN + TOKEN,
    "upper case": TOKEN.upper(),
    "lower case": TOKEN.lower(),
    "swapped case": TOKEN.swapcase(),
}
#: the routes a program or the page reads (GET) and changes (POST)
ROUTES = (("GET", "/v1/jobs"), ("GET", f"/v1/jobs/{JOB}/video"), ("GET", f"/v1/jobs/{JOB}/timeline.png"),
          ("GET", "/v1/experts"), ("POST", "/v1/jobs"))


@pytest.fixture
def client(tmp_path):
    """A TestClient on an app with :data:`TOKEN`, listening beyond loopback, no worker."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    config = ServeConfig(checkpoint=ckpt, data_dir=tmp_path / "data", host="0.0.0.0", token=TOKEN)
    with TestClient(create_app(config, worker=False), raise_server_exceptions=False) as c:
        yield c


def refused(response) -> bool:
    return response.status_code == 401 and response.json()["code"] == "unauthorized"


def allowed(response) -> bool:
    """Past the token check: whatever the route answers next (a 404 for the made-up job,
    a 415 for the empty POST), not 401 or 403."""
    return response.status_code not in (401, 403)


@pytest.mark.parametrize("given", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_the_header_takes_the_whole_token_only(client, given):
    for method, path in ROUTES:
        assert refused(client.request(method, path, headers={"Authorization": f"Bearer {given}"})), (method, path)
    assert refused(client.get("/v1/jobs", headers={"Authorization": "Bearer"}))  # no space, no token


def test_the_header_with_the_exact_token_passes(client):
    for method, path in ROUTES:
        assert allowed(client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})), (method, path)
    assert client.get("/v1/jobs", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200  # RFC 9110
    assert refused(client.get("/v1/jobs", headers={"Authorization": f"Token {TOKEN}"}))
    assert refused(client.get("/v1/jobs", headers={"Authorization": TOKEN}))


@pytest.mark.parametrize("given", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_the_session_exchange_takes_the_whole_token_only(client, given):
    for response in (client.post("/v1/session", json={"token": given}),
                     client.post("/v1/session", headers={"Authorization": f"Bearer {given}"})):
        assert refused(response) and "set-cookie" not in response.headers
    assert not client.cookies
    assert refused(client.get(f"/v1/jobs/{JOB}/video"))  # no cookie was given: the page's paths stay shut


@pytest.mark.parametrize("body", [None, {}, {"token": None}, {"token": 0}, {"token": [TOKEN]}, {"token": {"t": TOKEN}},
                                  [TOKEN], TOKEN])
def test_the_session_exchange_wants_the_token_as_a_string(client, body):
    response = client.post("/v1/session", json=body)
    assert refused(response) and "set-cookie" not in response.headers


def test_the_exact_token_opens_the_pages_paths_through_the_cookie(client):
    assert client.post("/v1/session", json={"token": TOKEN}).status_code == 204
    session = client.cookies[COOKIE]
    for path in (f"/v1/jobs/{JOB}/video", f"/v1/jobs/{JOB}/timeline.png", "/v1/jobs"):
        assert allowed(client.get(path)), path
    client.cookies.clear()
    assert client.post("/v1/session", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 204
    assert client.cookies[COOKIE] == session


def test_the_cookie_is_compared_whole(client):
    assert client.post("/v1/session", json={"token": TOKEN}).status_code == 204
    session = client.cookies[COOKIE]
    client.cookies.clear()
    forged = {"truncated": session[:-1], "half": session[:32], "empty": "", "one more": session + "0",
              "upper case": session.upper(), "the token itself": TOKEN}
    for name, value in forged.items():
        client.cookies.set(COOKIE, value)
        for path in (f"/v1/jobs/{JOB}/video", "/v1/jobs"):
            assert refused(client.get(path)), (name, path)
        client.cookies.clear()
    client.cookies.set(COOKIE, session)  # the real one, set the same way, passes
    assert client.get("/v1/jobs").status_code == 200


def test_no_route_takes_the_token_from_the_query_string(client):
    for name in ("token", "access_token", "bearer"):
        for method, path in ROUTES:
            assert refused(client.request(method, path, params={name: TOKEN})), (name, method, path)


@pytest.mark.parametrize("given", ["", " ", "\t"])
def test_an_empty_token_on_the_server_accepts_no_empty_credential(given):
    """The settings turn a blank token into none; should one reach :class:`Auth`
    anyway, an empty credential must still not match it."""
    from starlette.requests import Request

    auth = Auth("")
    request = Request({"type": "http", "method": "GET", "path": "/v1/jobs", "query_string": b"",
                       "headers": [(b"authorization", f"Bearer {given}".encode())]})
    assert not auth.bearer_ok(request) and not auth.token_ok(given)
