"""The FastAPI application of ``uprm serve``: the REST API under ``/v1``, the health
check, and the web page at ``/`` (docs/serve.md).

The API process never imports torch: it validates and queues jobs in the store (SQLite,
or PostgreSQL with ``--store``) and serves files; the worker processes
(:mod:`uprm.serve.worker`, ``--workers N``) hold the model.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError

from uprm._version import __version__
from uprm.serve import schemas
from uprm.serve.auth import COOKIE, Auth
from uprm.serve.config import ServeConfig
from uprm.serve.errors import ApiError, install_error_handlers
from uprm.serve.media import list_media, probe, resolve_media_path
from uprm.serve.models import SWITCH, checkpoint_name, choose, list_checkpoints, resolve_checkpoint, wanted_checkpoint
from uprm.serve.review import activitynet_labels, check_review, instruction_labels, review_json
from uprm.serve.store import Job, QueueFull, Store, process_alive
from uprm.serve.supervisor import WorkerPool as Supervisor  # the --workers N supervised workers
from uprm.serve.upload import receive_upload
from uprm.taxonomy import Taxonomy, load_taxonomy

__all__ = ["create_app"]

log = logging.getLogger("uprm.serve")
JOB_ID = re.compile(r"[0-9a-f]{32}")
#: the largest JSON body accepted (a path job, a model switch)
MAX_JSON = 64 << 10
#: the largest review accepted (up to a thousand segments with their causes)
MAX_REVIEW_JSON = 4 << 20
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class Service:
    """What the routes share: the settings, the site's taxonomy, the store, the worker's
    supervisor."""

    def __init__(self, config: ServeConfig, run_worker: bool) -> None:
        self.config = config
        self.auth = Auth(config.token)
        self.run_worker = run_worker
        self.taxonomy: Taxonomy = load_taxonomy(getattr(config, "taxonomy", None))
        self.store: Store | None = None
        self.supervisor: Supervisor | None = None

    def open(self) -> None:
        self.config.check_paths()
        self.store = self.config.open_store()
        self._drop_orphans()
        if self.run_worker:
            # whatever a worker of an earlier server wrote is not this server's readiness
            for key in worker_keys(self.config.workers):
                self.store.set_meta(key, {"state": "starting", "since": time.time(), "server": os.getpid()})
            self.supervisor = Supervisor(self.config, self.store)
            self.supervisor.start()

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.store is not None:
            self.store.close()

    def _drop_orphans(self) -> None:
        """Uploads without a job (the server died between writing and queueing them)."""
        known = self.store.ids()
        for path in self.config.uploads_dir.iterdir():
            if path.is_file() and path.name not in known:
                log.warning("removing an upload without a job: %s", path.name)
                path.unlink(missing_ok=True)

    def job(self, job_id: str) -> Job:
        found = self.store.get(job_id) if JOB_ID.fullmatch(job_id) else None
        if found is None:
            raise ApiError(404, "job_not_found", f"no job {job_id!r}")
        return found

    def wake(self) -> None:
        if self.supervisor is not None:
            self.supervisor.wake()


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and process_alive(pid)


def live_worker_state(state: Any, server_pid: int) -> dict[str, Any]:
    """The worker state this server may report: a state written by a worker of another
    (earlier) server, or by a worker process that is gone, is ``starting`` — never the
    readiness of a worker that no longer runs."""
    if not isinstance(state, dict) or state.get("server") != server_pid:
        return {"state": "starting"}
    if "pid" in state and state.get("state") != "failed" and not _alive(state["pid"]):
        return {"state": "starting"}
    return state


def worker_keys(workers: int) -> list[str]:
    """The meta keys of this server's workers' states (:func:`uprm.serve.worker.state_key`)."""
    return ["worker"] + [f"worker.{slot}" for slot in range(1, workers)]


#: the order in which the workers' states stand for the service (the best one)
_STATE_ORDER = ("ready", "loading", "starting", "restarting", "failed")


def health_body(states: list[dict[str, Any]]) -> dict[str, Any]:
    """``/healthz`` from the live states of this server's workers: ready when one is
    ready, failed (503) only when all failed; with several workers, each one's state
    under ``workers``."""
    names = [s.get("state", "starting") for s in states]
    best = min(names, key=lambda n: _STATE_ORDER.index(n) if n in _STATE_ORDER else len(_STATE_ORDER))
    failed = all(n == "failed" for n in names)
    body = {"status": "failed" if failed else "ok", "ready": best == "ready", "worker": best,
            "version": __version__}
    if len(states) > 1:
        body["workers"] = names
    return body


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_json(job: Job, position: int | None) -> dict[str, Any]:
    """The public view of a job (no server paths)."""
    base = f"/v1/jobs/{job.id}"
    links = {"self": base, "video": f"{base}/video"}
    if job.state == "done":
        links |= {"result": f"{base}/result", "timeline": f"{base}/timeline.png", "review": f"{base}/review"}
    return {
        "id": job.id, "state": job.state, "progress": round(job.progress, 4),
        "windows": {"done": job.windows_done, "total": job.windows_total},
        "queue_position": position,
        "video": {"name": job.name, "source": job.source, "media_type": job.media_type, "size": job.size,
                  "duration": job.duration},
        "created": _iso(job.created), "started": _iso(job.started), "finished": _iso(job.finished),
        "attempts": job.attempts,
        "error": {"code": job.error_code, "message": job.error} if job.error_code else None,
        "model": job.model,
        "links": links,
    }


class _SecurityHeaders:
    """``nosniff`` everywhere; a strict Content-Security-Policy on the page and its files."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if page:
                    headers += [(b"content-security-policy", PAGE_CSP.encode()), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: ServeConfig, *, worker: bool = True) -> FastAPI:
    """The app serving ``config``; ``worker=False`` queues jobs without running them
    (tests of the API alone)."""
    config.check_listen()
    service = Service(config, worker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.open)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(title="UPRM detection service", version=__version__, lifespan=lifespan,
                  description="Threats in surveillance video: upload a video or name one under the media root, "
                              "follow the job, read the segments (start, end, score, cause, expert weights) and "
                              "the timeline. Errors are RFC 9457 problem details. User guide: docs/serve.md.")
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(_SecurityHeaders)
    static = resources.files("uprm.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", response_model=schemas.Health, tags=["service"])
    def healthz() -> JSONResponse:
        """Liveness and readiness: 200 while the API and its database work (``ready`` once
        the worker has loaded the model), 503 when the worker cannot load the model."""
        if service.run_worker:
            states = [live_worker_state(service.store.get_meta(key), os.getpid())
                      for key in worker_keys(config.workers)]
        else:
            states = [{"state": "disabled"}]
        body = health_body(states)
        return JSONResponse(body, status_code=503 if body["status"] == "failed" else 200,
                            headers={"Cache-Control": "no-store"})

    app.include_router(_session(service))
    app.include_router(_api(service))
    return app


def _api(service: Service) -> APIRouter:
    async def authorised(request: Request) -> None:  # async: no thread hop for a hash comparison
        service.auth.check(request)

    api = APIRouter(prefix="/v1", dependencies=[Depends(authorised)], responses=schemas.ERRORS)
    _job_routes(api, service)
    _file_routes(api, service)
    _info_routes(api, service)
    _review_routes(api, service)
    _model_routes(api, service)
    return api


def _session(service: Service) -> APIRouter:
    """``/v1/session`` checks the token itself: it must work before the cookie exists."""
    auth = service.auth
    session = APIRouter(prefix="/v1", tags=["session"], responses=schemas.ERRORS)

    @session.post("/session", status_code=204)
    async def open_session(request: Request) -> Response:
        """Trade the token (``{"token": ...}`` or a bearer header) for the page's session
        cookie (HttpOnly, SameSite=Strict)."""
        if auth.enabled and not auth.bearer_ok(request):
            body = await _json_body(request)
            if not auth.token_ok(body.get("token") if isinstance(body, dict) else None):
                raise ApiError(401, "unauthorized", "wrong token", headers={"WWW-Authenticate": 'Bearer realm="uprm"'})
        response = Response(status_code=204)
        if auth.session:
            response.set_cookie(COOKIE, auth.session, httponly=True, samesite="strict", path="/")
        return response

    @session.delete("/session", status_code=204)
    def close_session() -> Response:
        """Forget the page's session cookie."""
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return session


async def _json_body(request: Request, limit: int = MAX_JSON) -> Any:
    import json

    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "body_too_large", f"a JSON body may have at most {limit} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON ({exc.__class__.__name__})") from exc


def _job_routes(api: APIRouter, service: Service) -> None:
    config = service.config

    @api.post("/jobs", status_code=202, response_model=schemas.JobOut, tags=["jobs"],
              openapi_extra=schemas.JOB_REQUEST, responses=schemas.JOB_ERRORS)
    async def create_job(request: Request) -> JSONResponse:
        """Queue a detection job: a multipart upload (field ``video``) or JSON
        ``{"path": "..."}`` naming a file under the media root. 202 with the job; 413 for
        an upload over the limit, 415 for content that is not a video, 429 when the queue
        is full."""
        if await run_in_threadpool(service.store.waiting) >= config.max_queue:
            raise _queue_full()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        job_id = uuid.uuid4().hex
        if kind == "multipart/form-data":
            job = await _accept_upload(service, request, job_id)
        elif kind == "application/json":
            job = await _accept_path(service, await _json_body(request), job_id)
        else:
            raise ApiError(415, "unsupported_body", "send multipart/form-data with a file field 'video', or "
                           "application/json {\"path\": ...}")
        service.wake()
        position = await run_in_threadpool(service.store.position, job)
        return JSONResponse(job_json(job, position), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @api.get("/jobs", response_model=schemas.JobList, tags=["jobs"])
    def list_jobs(limit: int = Query(50, ge=1, le=1000),
                  state: schemas.State | None = Query(None)) -> JSONResponse:
        """The latest jobs, newest first, and how many jobs are in each state."""
        jobs = service.store.list(limit, state)
        body = {"jobs": [job_json(j, service.store.position(j)) for j in jobs], "counts": service.store.counts()}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @api.get("/jobs/{job_id}", response_model=schemas.JobOut, tags=["jobs"])
    def get_job(job_id: str) -> JSONResponse:
        """A job's state, progress (windows done of all) and error."""
        job = service.job(job_id)
        return JSONResponse(job_json(job, service.store.position(job)), headers={"Cache-Control": "no-store"})

    @api.delete("/jobs/{job_id}", status_code=204, tags=["jobs"])
    def delete_job(job_id: str) -> Response:
        """Forget a finished job and delete its upload and results (409 while it is
        queued or running)."""
        job = service.job(job_id)
        if service.store.delete(job.id) is None:
            raise ApiError(409, "job_not_finished", f"job {job.id} is {job.state}: only finished jobs are deleted")
        _remove_files(service.config, job)
        return Response(status_code=204)


def _queue_full() -> ApiError:
    return ApiError(429, "queue_full", "too many jobs are waiting; try again later", headers={"Retry-After": "5"})


async def _accept_upload(service: Service, request: Request, job_id: str) -> Job:
    from uprm.utils import atomic_path

    config = service.config
    final = config.uploads_dir / job_id
    with atomic_path(final) as tmp:
        name, size = await receive_upload(request, tmp, config.max_upload_bytes)
        info = await run_in_threadpool(probe, tmp, name)
    try:
        return await run_in_threadpool(service.store.add, job_id, source="upload", name=name, video=str(final),
                                       media_type=info.media_type, size=size, duration=info.duration,
                                       max_queue=config.max_queue)
    except QueueFull:
        final.unlink(missing_ok=True)
        raise _queue_full() from None


async def _accept_path(service: Service, body: Any, job_id: str) -> Job:
    if not isinstance(body, dict) or set(body) != {"path"} or not isinstance(body["path"], str):
        raise ApiError(422, "invalid_request", 'the JSON body must be {"path": "<file under the media root>"}')
    config = service.config

    def check() -> tuple[Path, Any]:
        path = resolve_media_path(config.media_root, body["path"])
        return path, probe(path, body["path"])

    path, info = await run_in_threadpool(check)
    name = path.relative_to(Path(config.media_root)).as_posix()
    try:
        return await run_in_threadpool(service.store.add, job_id, source="path", name=name, video=str(path),
                                       media_type=info.media_type, size=info.size, duration=info.duration,
                                       max_queue=config.max_queue)
    except QueueFull:
        raise _queue_full() from None


def _remove_files(config: ServeConfig, job: Job) -> None:
    import shutil

    if job.source == "upload":
        Path(job.video).unlink(missing_ok=True)
    shutil.rmtree(config.results_dir / job.id, ignore_errors=True)


def _finished(service: Service, job_id: str) -> Job:
    job = service.job(job_id)
    if job.state == "failed":
        raise ApiError(409, "job_failed", f"job {job.id} failed: {job.error}", error_code=job.error_code)
    if job.state != "done" or not job.result:
        raise ApiError(409, "job_not_finished", f"job {job.id} is {job.state}", state=job.state)
    return job


def _result_file(service: Service, job: Job, relative: str) -> Path:
    path = service.config.results_dir / job.id / relative
    if not path.is_file():
        raise ApiError(404, "result_missing", f"job {job.id} has no {relative}")
    return path


def _file_routes(api: APIRouter, service: Service) -> None:
    @api.get("/jobs/{job_id}/result", tags=["results"], response_model=dict[str, Any])
    def get_result(job_id: str) -> FileResponse:
        """The ``uprm detect`` JSON of the job's video (docs/detection.md): segments with
        start, end, score, cause and the router's expert weights, every window's answer,
        settings, timings. 409 until the job is done."""
        job = _finished(service, job_id)
        return FileResponse(_result_file(service, job, f"{job.result}.json"), media_type="application/json")

    @api.get("/jobs/{job_id}/timeline.png", tags=["results"], response_class=FileResponse)
    def get_timeline(job_id: str) -> FileResponse:
        """The timeline picture: P(yes) per window, the segments shaded with their causes."""
        job = _finished(service, job_id)
        return FileResponse(_result_file(service, job, f"{job.result}.png"), media_type="image/png")

    @api.get("/jobs/{job_id}/evidence/{number}.png", tags=["results"], response_class=FileResponse)
    def get_evidence(job_id: str, number: int) -> FileResponse:
        """The evidence sheet of segment ``number`` (1, 2, ...): key frames with what the
        experts saw and the router's weights."""
        job = _finished(service, job_id)
        return FileResponse(_result_file(service, job, f"{job.result}/{int(number)}.png"), media_type="image/png")

    @api.get("/jobs/{job_id}/video", tags=["results"], response_class=FileResponse)
    def get_video(job_id: str) -> FileResponse:
        """The job's video, with HTTP range requests (players seek with them)."""
        job = service.job(job_id)
        path = resolve_media_path(service.config.media_root, job.name) if job.source == "path" else Path(job.video)
        if not path.is_file():
            raise ApiError(404, "video_missing", f"the video of job {job.id} is gone")
        return FileResponse(path, media_type=job.media_type, filename=job.name, content_disposition_type="inline")

    for route in list(api.routes):  # HEAD beside GET for the files (players and tools ask for it)
        path = route.path.removeprefix(api.prefix)
        if path.startswith("/jobs/{job_id}/"):
            api.add_api_route(path, route.endpoint, methods=["HEAD"], include_in_schema=False)


def _info_routes(api: APIRouter, service: Service) -> None:
    @api.get("/experts", tags=["service"])
    def experts() -> JSONResponse:
        """What ``uprm experts --json`` lists (installed experts, broken plugins), plus
        ``model``: the experts, router and frames of the loaded checkpoint."""
        report = service.store.get_meta("experts")
        if report is None:
            raise ApiError(503, "worker_starting", "the worker has not started yet; try again in a moment",
                           headers={"Retry-After": "2"})
        return JSONResponse({**report, "model": service.store.get_meta("model")})

    @api.get("/media", response_model=schemas.MediaList, tags=["jobs"])
    def media() -> JSONResponse:
        """The video files under the media root that ``POST /v1/jobs {"path"}`` accepts."""
        root = service.config.media_root
        if root is None:
            return JSONResponse({"enabled": False, "files": [], "truncated": False})
        files, truncated = list_media(root)
        return JSONResponse({"enabled": True, "files": files, "truncated": truncated})


def _validated(model: type[BaseModel], body: Any) -> Any:
    """``body`` as ``model``; 422 with the errors (where and what, never the input)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{"loc": ["body", *(str(p) for p in e.get("loc", ()))], "msg": str(e.get("msg", "")),
                   "type": e.get("type", "")} for e in exc.errors(include_url=False)]
        raise ApiError(422, "invalid_request", "the request does not match the API (see errors)",
                       errors=errors) from None


def _duration(service: Service, job: Job) -> float:
    """The video's duration: probed when the job was accepted, else the result's."""
    if job.duration:
        return float(job.duration)
    import json

    result = json.loads(_result_file(service, job, f"{job.result}.json").read_text(encoding="utf-8"))
    return float(result["duration"])


def _reviews_json(service: Service, job: Job) -> dict[str, Any]:
    reviews = service.store.reviews(job.id)
    items = [review_json(job, r, len(reviews) - i, service.taxonomy) for i, r in enumerate(reviews)]
    return {"current": items[0] if items else None, "history": items[1:]}


def _review_routes(api: APIRouter, service: Service) -> None:
    @api.post("/jobs/{job_id}/review", status_code=201, response_model=schemas.ReviewOut, tags=["review"],
              openapi_extra=schemas.request_body(schemas.ReviewIn), responses=schemas.REVIEW_ERRORS)
    async def post_review(job_id: str, request: Request) -> JSONResponse:
        """Review a finished job: every segment ``confirmed``, ``rejected`` or ``added``
        (a missed threat), with its start and end (seconds, within the video), category
        (GET /v1/taxonomy) and cause, and the ``reviewer``. It becomes the job's current
        review; earlier ones stay in its history. 409 unless the job is done."""
        job = await run_in_threadpool(_finished, service, job_id)
        review = _validated(schemas.ReviewIn, await _json_body(request, MAX_REVIEW_JSON))
        duration = await run_in_threadpool(_duration, service, job)
        segments = check_review(review, duration, service.taxonomy)
        if await run_in_threadpool(service.store.add_review, job.id, review.reviewer, segments) is None:
            await run_in_threadpool(_finished, service, job_id)  # deleted or changed meanwhile: say what it is
        body = await run_in_threadpool(_reviews_json, service, job)
        return JSONResponse(body["current"], status_code=201, headers={"Location": f"/v1/jobs/{job.id}/review"})

    @api.get("/jobs/{job_id}/review", response_model=schemas.Reviews, tags=["review"])
    def get_review(job_id: str) -> JSONResponse:
        """The job's current review (``null`` when none) and the earlier ones it
        superseded, newest first; each segment with its category's severity."""
        job = service.job(job_id)
        return JSONResponse(_reviews_json(service, job), headers={"Cache-Control": "no-store"})

    @api.get("/labels", tags=["review"])
    def labels(fmt: str = Query("activitynet", alias="format", pattern="^(activitynet|instructions)$"),
               window: float | None = Query(None, gt=0, description="seconds per window (default: --window)"),
               stride: float | None = Query(None, gt=0, description="seconds between windows (default: --stride)"),
               min_overlap: float = Query(0.0, ge=0, description="seconds of threat that make a window a threat")
               ) -> JSONResponse:
        """Every reviewed video's current review as labels: ``format=activitynet``,
        ActivityNet ground truth (confirmed and added segments are the threats; a video
        with none is Normal) for ``uprm adapt --labels`` and ``uprm eval``; or
        ``format=instructions``, identify / locate / attribute conversations over windows,
        the reviewed normal time as negatives."""
        reviewed = service.store.current_reviews()
        if fmt == "activitynet":
            body: Any = activitynet_labels(reviewed, service.taxonomy)
        else:
            config = service.config
            body = instruction_labels(reviewed, service.taxonomy, window=window or config.window,
                                      stride=stride or config.stride, min_overlap=min_overlap)
        name = "activitynet.json" if fmt == "activitynet" else "instructions.json"
        return JSONResponse(body, headers={"Cache-Control": "no-store",
                                           "Content-Disposition": f'attachment; filename="{name}"'})

    @api.get("/taxonomy", response_model=schemas.TaxonomyOut, tags=["review"])
    def taxonomy() -> JSONResponse:
        """The site's categories (``--taxonomy``; default UCF-Crime's 13 and Normal): name,
        description, severity, cause phrasings, aliases; ``threats`` lists all but Normal."""
        tax = service.taxonomy
        return JSONResponse({**tax.to_dict(), "threats": list(tax.threats)})


def _model_json(service: Service) -> dict[str, Any]:
    config, store = service.config, service.store
    name = checkpoint_name(config, wanted_checkpoint(store, config))
    loaded = store.get_meta("model")
    return {"checkpoint": name, "pending": not isinstance(loaded, dict) or loaded.get("checkpoint") != name,
            "loaded": loaded, "switch": store.get_meta(SWITCH), "models": list_checkpoints(config.models_dir),
            "models_dir": config.models_dir is not None}


def _model_routes(api: APIRouter, service: Service) -> None:
    @api.get("/model", response_model=schemas.ModelOut, tags=["service"])
    def get_model() -> JSONResponse:
        """The checkpoint new jobs run on, the model the worker holds (with its
        fingerprint), whether a switch is pending, the last switch, and the checkpoints
        under the models folder."""
        return JSONResponse(_model_json(service), headers={"Cache-Control": "no-store"})

    @api.post("/model", status_code=202, response_model=schemas.ModelOut, tags=["service"],
              openapi_extra=schemas.request_body(schemas.ModelIn), responses=schemas.MODEL_ERRORS)
    async def post_model(request: Request) -> JSONResponse:
        """Switch to another checkpoint under ``--models-dir``: ``{"checkpoint": "site-v2"}``.
        The job running now finishes on its model; the next one runs on the new model
        (202: the worker loads it between jobs; GET /v1/model says when)."""
        body = _validated(schemas.ModelIn, await _json_body(request))
        path = await run_in_threadpool(resolve_checkpoint, service.config.models_dir, body.checkpoint)
        await run_in_threadpool(choose, service.store, service.config, path)
        service.wake()
        return JSONResponse(await run_in_threadpool(_model_json, service), status_code=202)
