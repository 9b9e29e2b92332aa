"""One error body everywhere: RFC 9457 problem details (``application/problem+json``).

::

    {"type": "about:blank", "title": "Payload Too Large", "status": 413,
     "code": "upload_too_large", "detail": "the upload exceeds the limit of 2048 MiB"}

``code`` is a stable machine-readable name; ``detail`` is for people. Validation errors
add ``errors`` (where and what, never the input); an unexpected error is a 500 whose
body says only ``internal_error`` and an incident id that the server log repeats next to
the traceback. No body ever carries a traceback.
"""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from uprm.errors import ApiError

__all__ = ["PROBLEM_TYPE", "ApiError", "install_error_handlers", "problem"]

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("uprm.serve")

#: stable codes of plain HTTP errors raised by the framework itself
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
               413: "payload_too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
               422: "invalid_request", 429: "too_many_requests", 500: "internal_error", 503: "unavailable"}


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    """A problem-details response."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return problem(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), detail,
                   dict(exc.headers or {}) or None)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type", "")}
              for e in exc.errors()]
    return problem(422, "invalid_request", "the request does not match the API (see errors)", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = secrets.token_hex(6)
    log.error("incident %s: %s %s failed", incident, request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", f"an internal error occurred (incident {incident}; see the server log)",
                   incident=incident)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can answer with becomes a problem-details body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
