"""Errors as RFC 9457 problem documents with a stable `code`; never a traceback or SQL."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class ProblemDocument(BaseModel):
    """What every error answers (RFC 9457), for the OpenAPI schema; some carry more keys
    (`invalid` rows, validation `errors`, readiness `checks`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="about:blank#CODE")
    title: str = Field(description="what is wrong, in a few words")
    status: int = Field(description="the HTTP status")
    code: str = Field(description="stable: what a program tests")
    detail: str | None = Field(default=None, description="what is wrong and how to fix it")


_MEANINGS = {
    400: "the body cannot be read",
    401: "no valid bearer token",
    403: "a read-only token cannot change anything",
    404: "not found",
    409: "conflicts with the current state",
    413: "the body is larger than the API reads (STICKERQ_API_MAX_*_BYTES)",
    415: "not a content type this route takes",
    410: "the campaign's messages were purged (retention): its report remains",
    422: "the request is not valid",
    429: "too many failed tokens or logins from this address: wait Retry-After seconds",
    500: "the server's own configuration is unusable",
    503: "a service stickerq needs is unreachable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses answer a problem document."""
    schema = ProblemDocument.model_json_schema()
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


class Problem(Exception):
    """An answer other than success: status, a stable code, and what is wrong in words;
    `headers` go on the answer (a 409's Retry-After), the other keywords into the body."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(title)
        self.status, self.code, self.title, self.detail, self.extra = (
            status,
            code,
            title,
            detail,
            extra,
        )
        self.headers = headers


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": f"about:blank#{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error, expected or not, as a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return problem_response(422, "invalid_request", "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "internal error")
