"""Nothing is read before it is allowed: who asks, and how much they may send, checked before
the application reads a byte of the body.

RequestGuard is the API's outermost layer but one (the callback fast path): it finds the
caller's bearer token (a STICKERQ_API_TOKENS token, else a `stickerq keys` key through
api/key_cache.py) or dashboard session, answers 401 at once where a route needs one and
none is valid (the body is never read), 429 to an address that failed too often, and caps
every body as it arrives, chunked or not: a Content-Length over the cap is refused before
reading, a stream that grows past it is cut off with 413. A caller with no credential may
send at most ANONYMOUS_MAX_BODY_BYTES (the login form), so an unauthenticated request costs
well under a megabyte whatever it sends. Routes read what the guard found from
`request.state.token` (api/auth.py) and `request.state.viewer` (the dashboard).
"""

from __future__ import annotations

import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stickerq.api.auth import Token, match
from stickerq.api.callbacks import PREFIX as CALLBACKS
from stickerq.api.dashboard.sessions import SESSION_COOKIE, Sessions
from stickerq.api.key_cache import KeyCache
from stickerq.api.problems import problem_response
from stickerq.api.throttle import FailureThrottle
from stickerq.settings import Settings

ANONYMOUS_MAX_BODY_BYTES = 64 * 1024
LOGIN = "/login"
# Answered to anyone: health, the scrape (its own token), the login and the page that sends
# there, the dashboard's script and style, the API's schema. Every other path needs a token.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/", LOGIN, "/docs", "/docs/oauth2-redirect"}
    | {"/openapi.json"}
)
OPEN_PREFIXES = ("/dashboard/static/", "/docs/assets/")
DASHBOARD_PREFIXES = ("/dashboard/", "/logout")  # a session's routes: 401 says to log in
UPLOAD_TYPES = ("multipart/form-data", "text/csv")


class BodyTooLarge(HTTPException):
    """Raised from the body stream once it passes its cap; an HTTPException so that FastAPI's
    own body parsing lets it through to the 413 problem handler."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"the body is larger than {limit:,} bytes ({setting})")
        self.limit, self.setting = limit, setting


def install(app: FastAPI, settings: Settings, sessions: Sessions) -> None:
    app.state.throttle = FailureThrottle()
    app.add_middleware(RequestGuard, state=app.state, settings=settings, sessions=sessions)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return too_large_response(exc)


def too_large_response(exc: BodyTooLarge) -> JSONResponse:
    return problem_response(
        413,
        "body_too_large",
        "the request body is too large",
        f"{exc.detail}; send less, or raise {exc.setting} on the server",
        limit_bytes=exc.limit,
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, state: State, settings: Settings, sessions: Sessions):
        self.app, self.state, self.sessions = app, state, sessions
        self.tokens: tuple[Token, ...] = state.tokens
        self.keys: KeyCache = state.keys
        self.throttle: FailureThrottle = state.throttle
        self.max_body = settings.api_max_body_bytes
        self.max_upload = settings.api_max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CALLBACKS):
            await self.app(scope, receive, send)  # callbacks: their own secret and cap
            return
        connection = HTTPConnection(scope)
        address = connection.client.host if connection.client else ""
        bearer = _bearer(connection.headers.get("authorization", ""))
        has_session = SESSION_COOKIE in connection.cookies
        offers_credential = bearer is not None or has_session or _is_login(scope)
        if offers_credential and (wait := self.throttle.retry_after(address)) is not None:
            await _refuse(scope, receive, send, _throttled(wait))
            return
        try:
            token = await self._token(bearer) if bearer else None
            if bearer and token is None:
                self.throttle.failed(address, "bearer")
            viewer = None
            if has_session and not token:  # Redis, and a key's database row: off the loop
                viewer = await run_in_threadpool(self.sessions.viewer, connection)
        except (redis.RedisError, SQLAlchemyError):
            await _refuse(scope, receive, send, _service_down())
            return
        allowed = token is not None or viewer is not None
        if not allowed and not _open(scope["path"]):
            await _refuse(scope, receive, send, _unauthorized(scope["path"]))
            return
        scope.setdefault("state", {}).update(token=token, viewer=viewer)
        limit, setting = self._cap(connection, allowed)
        await self._capped(scope, receive, send, limit, setting)

    async def _token(self, bearer: str) -> Token | None:
        """An env token (compared in constant time), else a database key (by its hash)."""
        return match(self.tokens, bearer.encode()) or await self.keys.find(bearer)

    def _cap(self, connection: HTTPConnection, allowed: bool) -> tuple[int, str]:
        if not allowed:
            return ANONYMOUS_MAX_BODY_BYTES, "only a logged-in caller may send more"
        kind = connection.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in UPLOAD_TYPES:
            return self.max_upload, "STICKERQ_API_MAX_UPLOAD_BYTES"
        return self.max_body, "STICKERQ_API_MAX_BODY_BYTES"

    async def _capped(
        self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str
    ) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, too_large_response(BodyTooLarge(limit, setting)))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, counted, send)


def _bearer(header: str) -> str | None:
    scheme, _, given = header.partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def _is_login(scope: Scope) -> bool:
    return bool(scope["path"] == LOGIN and scope["method"] == "POST")


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, response: JSONResponse) -> None:
    """Answer without reading the body; the server drops what the client still sends."""
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def _unauthorized(path: str) -> JSONResponse:
    if path.startswith(DASHBOARD_PREFIXES):
        return problem_response(401, "not_logged_in", "log in at /login with an API token")
    return problem_response(401, "unauthorized", "a valid bearer token is needed")


def _throttled(wait: int) -> JSONResponse:
    response = problem_response(
        429,
        "too_many_failures",
        "too many failed tokens or logins from this address",
        f"wait {wait} s before trying again",
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _service_down() -> JSONResponse:
    return problem_response(
        503,
        "service_unavailable",
        "a service stickerq needs is down",
        "Redis or the database is unreachable",
    )
