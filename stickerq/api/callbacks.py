"""POST /callbacks/kaleyra/{secret}: Kaleyra's status callbacks, written in bulk.

Kaleyra calls the URL given in its callback profile; the secret in the path (and, if set, HTTP
basic auth) says the call is Kaleyra's, so this route takes no bearer token. The answer 200
comes once the callback is committed (producer/callback_writer.py: group commit), so an
acknowledged callback survives a crash or a database restart. The secret never reaches a log:
the path is redacted from uvicorn's and our own log records.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from stickerq.api.problems import Problem
from stickerq.db import make_session_factory, shared_engine
from stickerq.producer.callback_writer import CallbacksNotWritten, CallbackWriter
from stickerq.producer.callbacks import CallbackError, parse_callback
from stickerq.settings import Settings

PATH = "/callbacks/kaleyra"
WRITE_TIMEOUT_SECONDS = 15.0  # past it a 503: Kaleyra tries again, and the first still lands
MAX_CALLBACKS = 1_000  # per request (Kaleyra sends one; a list is accepted)
REDACTED = "***"
# loggers that may name a request's path: uvicorn's access and error logs, our problems
LOGGERS = ("uvicorn.access", "uvicorn.error", "stickerq.api.problems")

_writer_lock = threading.Lock()
_OK = b'{"status":"ok"}'


def callback_url(settings: Settings, base_url: str) -> str:
    """The URL to give Kaleyra: base_url (your public https address) + the path + secret."""
    return f"{base_url.rstrip('/')}{PATH}/{settings.callback_secret.get_secret_value()}"


def masked_callback_url(settings: Settings, base_url: str) -> str:
    """The same URL with the secret hidden but for its first 4 characters."""
    secret = settings.callback_secret.get_secret_value()
    return f"{base_url.rstrip('/')}{PATH}/{secret[:4]}{REDACTED}"


class SecretRedactor(logging.Filter):
    """Replaces the callback secret in a log record's message by ***."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
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
    if secret:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if not any(getattr(f, "secret", None) == secret for f in logger.filters):
                logger.addFilter(SecretRedactor(secret))
    app.include_router(router)


def _writer(request: Request) -> CallbackWriter:
    state = request.app.state
    writer: CallbackWriter | None = getattr(state, "callback_writer", None)
    if writer is None:
        with _writer_lock:
            writer = getattr(state, "callback_writer", None)
            if writer is None:
                sessions = make_session_factory(shared_engine(state.settings.database_url))
                writer = state.callback_writer = CallbackWriter(sessions)
    return writer


def _check_caller(request: Request, given: str) -> None:
    settings: Settings = request.app.state.settings
    secret = settings.callback_secret.get_secret_value()
    if not secret:
        raise Problem(
            503,
            "callbacks_not_configured",
            "this server takes no callbacks",
            "set STICKERQ_CALLBACK_SECRET and give Kaleyra the URL `stickerq api` prints",
        )
    if not hmac.compare_digest(secret.encode(), given.encode()):
        raise Problem(404, "not_found", "no such callback URL")
    basic = settings.callback_basic_auth.get_secret_value()
    if basic and not hmac.compare_digest(basic.encode(), _basic_credentials(request)):
        raise Problem(401, "unauthorized", "HTTP basic auth is needed for callbacks")


def _basic_credentials(request: Request) -> bytes:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _payloads(raw: bytes) -> list[Any]:
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise Problem(400, "invalid_json", "the body is not JSON") from None
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_CALLBACKS:
        raise Problem(422, "invalid_callback", f"send 1 to {MAX_CALLBACKS} callbacks at once")
    return items


@router.post(PATH + "/{secret}", summary="Kaleyra's status callback (sent, delivered, read...)")
async def kaleyra_callback(secret: str, request: Request) -> Response:
    """Record a status callback; 200 once it is in the database. An unknown message_id is
    kept for inspection (`stickerq callbacks unknown`), not refused."""
    _check_caller(request, secret)
    try:
        callbacks = [parse_callback(item) for item in _payloads(await request.body())]
    except CallbackError as exc:
        raise Problem(422, "invalid_callback", "the callback is not valid", str(exc)) from None
    try:
        await _writer(request).write(callbacks, WRITE_TIMEOUT_SECONDS)
    except CallbacksNotWritten as exc:
        raise Problem(
            503, "callbacks_not_written", "the callback was not stored: try again", str(exc)
        ) from None
    return Response(_OK, media_type="application/json")
