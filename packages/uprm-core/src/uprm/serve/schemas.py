"""The shapes of the API's bodies, for the OpenAPI document at ``/docs``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ERRORS", "JOB_ERRORS", "JOB_REQUEST", "MODEL_ERRORS", "REVIEW_ERRORS", "Health", "JobList", "JobOut",
           "MediaList", "ModelIn", "ModelOut", "Problem", "ReviewIn", "ReviewOut", "ReviewSegmentIn", "Reviews",
           "State", "TaxonomyOut", "Verdict", "request_body"]

State = Literal["queued", "running", "done", "failed"]
Verdict = Literal["confirmed", "rejected", "added"]
#: the most segments one review may hold
MAX_REVIEW_SEGMENTS = 1000


class Problem(BaseModel):
    """An error (RFC 9457 problem details; ``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    code: str = Field(description="stable machine-readable name, e.g. upload_too_large, queue_full, not_a_video")
    detail: str


class Windows(BaseModel):
    done: int
    total: int | None


class Video(BaseModel):
    name: str = Field(description="the uploaded file's name, or the path under the media root")
    source: Literal["upload", "path"]
    media_type: str = Field(description="from the file's content, e.g. video/mp4")
    size: int
    duration: float | None


class JobError(BaseModel):
    code: str = Field(description="video_error, perception_error, detection_error, worker_died, internal_error")
    message: str


class JobOut(BaseModel):
    """A job."""

    id: str
    state: State
    progress: float = Field(description="windows done / windows of the video, 0-1")
    windows: Windows
    queue_position: int | None = Field(description="queued jobs that run before this one (null unless queued)")
    video: Video
    created: str
    started: str | None
    finished: str | None
    attempts: int
    error: JobError | None
    model: str | None = Field(description="sha256 fingerprint of the checkpoint that ran the job (null until done)")
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobOut]
    counts: dict[str, int]


class Health(BaseModel):
    status: Literal["ok", "failed"]
    ready: bool = Field(description="the worker has loaded the model")
    worker: str = Field(description="starting, loading, ready, restarting, failed or disabled (with several "
                                    "workers, the best of their states)")
    version: str
    workers: list[str] | None = Field(None, description="each worker's state, with --workers N > 1")


class MediaFile(BaseModel):
    path: str
    size: int


class MediaList(BaseModel):
    enabled: bool = Field(description="whether the server has a media root")
    files: list[MediaFile]
    truncated: bool


class ReviewSegmentIn(BaseModel):
    """One segment of a review: a detected segment confirmed or rejected (its boundaries
    possibly moved), or a missed threat the reviewer added."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0, allow_inf_nan=False, description="seconds from the video's start")
    end: float = Field(gt=0, allow_inf_nan=False, description="seconds; after start, at most the video's duration")
    category: str | None = Field(None, max_length=200, description="a category of the server's taxonomy "
                                 "(GET /v1/taxonomy); a threat for confirmed and added segments")
    cause: str | None = Field(None, max_length=2000, description="why: the attribution target of training")
    verdict: Verdict

    @field_validator("category", "cause")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        """Spaces collapsed; blank is none."""
        if value is None:
            return None
        return " ".join(value.split()) or None

    @model_validator(mode="after")
    def _ordered(self) -> ReviewSegmentIn:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class ReviewIn(BaseModel):
    """``POST /v1/jobs/{id}/review``: the reviewer's verdict on every segment, plus the
    threats the model missed. An empty ``segments`` says the video has no threat."""

    model_config = ConfigDict(extra="forbid")

    segments: list[ReviewSegmentIn] = Field(max_length=MAX_REVIEW_SEGMENTS)
    reviewer: str = Field(min_length=1, max_length=200, description="who reviewed (a name or an id)")

    @field_validator("reviewer")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("the reviewer must be named")
        return value


class ReviewSegment(BaseModel):
    start: float
    end: float
    category: str | None
    severity: str | None = Field(description="the category's severity in the taxonomy (none, low, medium, high, "
                                 "critical); null without a category or for one the taxonomy no longer has")
    cause: str | None
    verdict: Verdict


class ReviewOut(BaseModel):
    """One saved review."""

    job: str
    revision: int = Field(description="1 for a job's first review, then 2, 3...")
    reviewer: str
    at: str
    segments: list[ReviewSegment]
    label: str = Field(description="what the labels say of the video: its threat category, or Normal")


class Reviews(BaseModel):
    current: ReviewOut | None = Field(description="the latest review (null when none)")
    history: list[ReviewOut] = Field(description="the earlier reviews it superseded, newest first")


class TaxonomyCategory(BaseModel):
    name: str
    description: str
    severity: str
    causes: list[str]
    aliases: list[str]


class TaxonomyOut(BaseModel):
    name: str | None
    categories: list[TaxonomyCategory]
    threats: list[str]


class ModelIn(BaseModel):
    """``POST /v1/model``."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="a checkpoint folder under the server's --models-dir (relative to it, or "
                            "absolute inside it)")


class ModelOut(BaseModel):
    checkpoint: str = Field(description="the checkpoint new jobs run on (its name under the models folder)")
    pending: bool = Field(description="the worker has not loaded it yet (it does between jobs)")
    loaded: dict[str, Any] | None = Field(description="the model the worker holds: checkpoint, fingerprint, experts, "
                                          "router, num_frames, device, threads, since")
    switch: dict[str, Any] | None = Field(description="the last switch: state done or failed, checkpoint, error")
    models: list[str] = Field(description="the checkpoints under the models folder")
    models_dir: bool = Field(description="whether the server has a models folder (switching enabled)")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("no or a wrong bearer token (when the server has one)"),
    404: _problem("no such job or file"),
}
JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("a malformed body, a damaged video, '..' in a path"),
    403: _problem("a path outside the media root, or no media root"),
    413: _problem("the upload exceeds the size limit"),
    415: _problem("the content is not a video (whatever content type was declared)"),
    429: _problem("the queue is full (Retry-After)"),
}
REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("a body that is not JSON"),
    409: _problem("the job is not done (job_not_finished with its state, or job_failed)"),
    413: _problem("the body exceeds the size limit"),
    422: _problem("a malformed review (invalid_request with errors), a segment outside the video "
                  "(segment_outside_video), an unknown category (unknown_category, with categories) or a "
                  "confirmed/added segment without a threat category (threat_category_needed)"),
}
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("a malformed name, '..' in it"),
    403: _problem("no models folder, or a path outside it"),
    404: _problem("no such checkpoint folder"),
    422: _problem("the folder is not a UPRM checkpoint (not_a_checkpoint), or a malformed body"),
}
def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its JSON body itself (bounded,
    after the token check) and validates it with ``model`` (nested models inlined)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}}}}


JOB_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["video"],
                           "properties": {"video": {"type": "string", "format": "binary"}}},
            },
            "application/json": {
                "schema": {"type": "object", "required": ["path"],
                           "properties": {"path": {"type": "string",
                                                   "description": "a video file under the server's media root"}}},
            },
        },
    },
}
