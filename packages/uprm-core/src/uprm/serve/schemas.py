"""The shapes of the API's bodies, for the OpenAPI document at ``/docs``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["ERRORS", "JOB_ERRORS", "JOB_REQUEST", "Health", "JobList", "JobOut", "MediaList", "Problem", "State"]

State = Literal["queued", "running", "done", "failed"]


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
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobOut]
    counts: dict[str, int]


class Health(BaseModel):
    status: Literal["ok", "failed"]
    ready: bool = Field(description="the worker has loaded the model")
    worker: str = Field(description="starting, loading, ready, restarting, failed or disabled")
    version: str


class MediaFile(BaseModel):
    path: str
    size: int


class MediaList(BaseModel):
    enabled: bool = Field(description="whether the server has a media root")
    files: list[MediaFile]
    truncated: bool


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
