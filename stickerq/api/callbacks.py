"""POST /callbacks/kaleyra/{secret}: Kaleyra's status callbacks, written in bulk; and
POST or GET /callbacks/kaleyra/{secret}/incoming: its incoming-message callbacks (a customer
wrote to a business number), kept in the window ledger (stickerq/window_ledger.py).

Kaleyra calls the URL given in its callback profile; the secret in the path (and, if set, HTTP
basic auth) says the call is Kaleyra's, so this route takes no bearer token. The answer 200
comes once the callback is committed (producer/callback_writer.py: group commit), so an
acknowledged callback survives a crash or a database restart. The secret never reaches a log:
the path is redacted from uvicorn's and our own log records.

A request is refused whole (nothing stored) with a 4xx when its body cannot be read or any of
its callbacks can never be stored (stickerq/api/callback_bodies.py); a 503 means only that the
database could not be reached in time: send it again.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from stickerq.api import callback_bodies as bodies
from stickerq.api.problems import Problem, problem_response, problem_responses
from stickerq.db import make_session_factory, shared_engine
from stickerq.metrics import count_callback
from stickerq.producer.callback_payloads import parse_callback
from stickerq.producer.callback_writer import (
    CallbacksNotWritten,
    CallbacksRefused,
    CallbackWriter,
    Received,
)
from stickerq.producer.incoming_payloads import parse_incoming
from stickerq.settings import Settings

PATH = "/callbacks/kaleyra"
PREFIX = PATH + "/"
INCOMING = "/incoming"  # after the secret: customers' messages, for the window ledger
MIN_SECRET_LENGTH = 16  # `openssl rand -hex 24` gives 48
WRITE_TIMEOUT_SECONDS = 15.0  # past it a 503: Kaleyra tries again, and the first still lands
REDACTED = "***"
# loggers that may name a request's path: uvicorn's access and error logs, our problems
LOGGERS = ("uvicorn.access", "uvicorn.error", "stickerq.api.problems")

_writer_lock = threading.Lock()
_OK = b'{"status":"ok"}'


def callback_url(settings: Settings, base_url: str) -> str:
    """The URL to give Kaleyra: base_url (your public https address) + the path + secret."""
    return f"{base_url.rstrip('/')}{PATH}/{settings.callback_secret.get_secret_value()}"


def incoming_url(settings: Settings, base_url: str) -> str:
    """The URL of the callback profile for incoming WhatsApp messages."""
    return callback_url(settings, base_url) + INCOMING


def masked_callback_url(base_url: str) -> str:
    """The same URL with the secret hidden."""
    return f"{base_url.rstrip('/')}{PATH}/{REDACTED}"


def secret_problem(settings: Settings) -> str | None:
    """What is wrong with STICKERQ_CALLBACK_SECRET, or None when it can be used."""
    secret = settings.callback_secret.get_secret_value()
    if not secret:
        return "set STICKERQ_CALLBACK_SECRET and give Kaleyra the URL `stickerq api` prints"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"STICKERQ_CALLBACK_SECRET is shorter than {MIN_SECRET_LENGTH} characters"
    return None


class SecretRedactor(logging.Filter):
    """Replaces the callback secret in a log record's message by ***, and drops the access
    log's line of each callback answered 200: at 3,000 a second they would drown the rest
    (and cost an eighth of the receiver's CPU); the others are logged."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            _, _, path, _, status = args  # client, method, path, HTTP version, status
            if status == 200 and isinstance(path, str) and path.startswith(PREFIX):
                return False
        # the arguments keep their shape: uvicorn's access formatter unpacks them
        if isinstance(record.args, tuple):
            record.args = tuple(self._redacted(arg) for arg in record.args)
        record.msg = self._redacted(record.msg)
        return True

    def _redacted(self, value: object) -> object:
        if isinstance(value, str) and self.secret in value:
            return value.replace(self.secret, REDACTED)
        return value


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    writer: CallbackWriter | None = getattr(app.state, "callback_writer", None)
    if writer is not None:
        writer.close()  # what was handed in is written first


router = APIRouter(tags=["callbacks"], lifespan=_lifespan)


def install(app: FastAPI) -> None:
    """Add the callback route, and keep its secret out of the logs."""
    settings: Settings = app.state.settings
    secret = settings.callback_secret.get_secret_value()
    if secret_problem(settings) is None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if not any(getattr(f, "secret", None) == secret for f in logger.filters):
                logger.addFilter(SecretRedactor(secret))
    app.include_router(router)
    app.add_middleware(CallbackFastPath, state=app.state)


def _writer(state: State) -> CallbackWriter:
    writer: CallbackWriter | None = getattr(state, "callback_writer", None)
    if writer is None:
        with _writer_lock:
            writer = getattr(state, "callback_writer", None)
            if writer is None:
                sessions = make_session_factory(shared_engine(state.settings.database_url))
                writer = state.callback_writer = CallbackWriter(sessions)
    return writer


async def receive_callbacks(
    state: State, secret: str, authorization: str, read_body: Callable[[], Awaitable[bytes]]
) -> None:
    """Check the caller, then read and parse the body and wait until its callbacks are
    committed; a Problem otherwise (nothing stored)."""
    _check_caller(state.settings, secret, authorization)
    callbacks = bodies.parsed(bodies.payloads(await read_body()), parse_callback)
    await _written(state, callbacks)
    for status, received in Counter(callback.status for callback in callbacks).items():
        count_callback(status, received)


async def receive_incoming(
    state: State, secret: str, authorization: str, read_items: Callable[[], Awaitable[list[Any]]]
) -> None:
    """The same for incoming-message callbacks: `read_items` gives the body's callbacks (a
    POST) or the query's one (a GET)."""
    _check_caller(state.settings, secret, authorization)
    messages = bodies.parsed(await read_items(), parse_incoming)
    await _written(state, messages)
    count_callback("incoming", len(messages))


async def _written(state: State, callbacks: Sequence[Received]) -> None:
    try:
        await _writer(state).write(callbacks, WRITE_TIMEOUT_SECONDS)
    except CallbacksRefused as exc:
        raise bodies.unstorable(exc, len(callbacks)) from None
    except CallbacksNotWritten as exc:
        raise Problem(
            503, "callbacks_not_written", "the callback was not stored: try again", str(exc)
        ) from None


def _check_caller(settings: Settings, given: str, authorization: str) -> None:
    problem = secret_problem(settings)
    if problem is not None:
        raise Problem(503, "callbacks_not_configured", "this server takes no callbacks", problem)
    secret = settings.callback_secret.get_secret_value()
    if not hmac.compare_digest(secret.encode(), given.encode()):
        raise Problem(404, "not_found", "no such callback URL")
    basic = settings.callback_basic_auth.get_secret_value()
    if basic and not hmac.compare_digest(basic.encode(), _basic_credentials(authorization)):
        raise Problem(401, "unauthorized", "HTTP basic auth is needed for callbacks")


def _basic_credentials(authorization: str) -> bytes:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


@router.post(
    PATH + "/{secret}",
    summary="Kaleyra's status callback (sent, delivered, read...)",
    responses={
        200: {"description": "stored (or kept as an unknown message_id)"},
        **problem_responses(400, 401, 404, 422, 503),
    },
)
async def kaleyra_callback(secret: str, request: Request) -> Response:
    """Record a status callback; 200 once it is in the database. An unknown message_id is
    kept for inspection (`stickerq callbacks unknown`), not refused. (Served by
    `CallbackFastPath` in front of the app; this route documents it and stands in without.)"""
    authorization = request.headers.get("authorization", "")
    await receive_callbacks(request.app.state, secret, authorization, request.body)
    return Response(_OK, media_type="application/json")


_INCOMING_RESPONSES = {
    200: {"description": "stored in the window ledger"},
    **problem_responses(400, 401, 404, 422, 503),
}


@router.post(PATH + "/{secret}" + INCOMING, summary="Kaleyra's incoming-message callback (POST)",
             responses=_INCOMING_RESPONSES)  # fmt: skip
async def kaleyra_incoming(secret: str, request: Request) -> Response:
    """Record that a customer wrote to a business number (`from`, `wanumber`, `created_at`,
    `type`; the rest is ignored and never stored): 200 once it is in the window ledger."""
    authorization = request.headers.get("authorization", "")
    read_items = functools.partial(_body_items, request.body)
    await receive_incoming(request.app.state, secret, authorization, read_items)
    return Response(_OK, media_type="application/json")


@router.get(PATH + "/{secret}" + INCOMING, summary="Kaleyra's incoming-message callback (GET)",
            responses=_INCOMING_RESPONSES)  # fmt: skip
async def kaleyra_incoming_get(secret: str, request: Request) -> Response:
    """The same, with the names as query parameters (a callback profile that uses GET)."""
    authorization = request.headers.get("authorization", "")
    read_items = functools.partial(_query_items, request.url.query.encode("latin-1"))
    await receive_incoming(request.app.state, secret, authorization, read_items)
    return Response(_OK, media_type="application/json")


async def _body_items(read_body: Callable[[], Awaitable[bytes]]) -> list[Any]:
    return bodies.payloads(await read_body())


async def _query_items(query: bytes) -> list[Any]:
    """A GET's one callback: its query parameters (the first of a repeated name)."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        fields.setdefault(name, value)
    return [fields]


class CallbackFastPath:
    """ASGI middleware that answers the callback routes (POST /callbacks/kaleyra/<secret>, and
    POST or GET .../<secret>/incoming) itself, before FastAPI's routing, dependency solving and
    exception layers: they took more CPU per callback than the rest of the work together
    (bench/callbacks.py). Any other request goes on."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        secret, method = path[len(PREFIX) :], scope["method"]
        incoming = secret.endswith(INCOMING)
        if incoming:
            secret = secret[: -len(INCOMING)]
        if method != "POST" and not (incoming and method == "GET"):
            await self.app(scope, receive, send)
            return
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        try:
            if not incoming:
                read_body = functools.partial(bodies.read_body, receive)
                await receive_callbacks(self.state, secret, authorization, read_body)
            elif method == "POST":
                read_items = functools.partial(
                    _body_items, functools.partial(bodies.read_body, receive)
                )
                await receive_incoming(self.state, secret, authorization, read_items)
            else:
                read_items = functools.partial(_query_items, scope.get("query_string", b""))
                await receive_incoming(self.state, secret, authorization, read_items)
            response = Response(_OK, media_type="application/json")
        except Problem as problem:
            response = problem_response(
                problem.status, problem.code, problem.title, problem.detail, **problem.extra
            )
        await response(scope, receive, send)
