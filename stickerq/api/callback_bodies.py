"""What a callback request's body holds: read under a cap, decoded, each callback parsed; or
the problem document that refuses it, counted by reason (stickerq_callbacks_refused).

No body makes a 500. One that cannot be read (not JSON, nested too deep, over the size cap) is
a 400 or 413; a callback that can never be stored (no message_id, a status Kaleyra does not
send, a NUL character or a lone surrogate, an over-long message_id, or a value the database
refuses) is a 422, which Kaleyra does not send again. A request is taken whole or not at all:
when any of its callbacks is refused, none is stored, and the problem lists each refused one
by its index (`invalid`); the sound ones refused with it are counted as `beside_refused`.
No detail echoes a value back unescaped: a lone surrogate would not even encode as UTF-8.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from starlette.types import Receive

from stickerq.api.problems import Problem
from stickerq.metrics import count_refused_callbacks
from stickerq.models import utcnow
from stickerq.producer.callback_payloads import CallbackError
from stickerq.producer.callback_writer import CallbacksRefused

MAX_BODY_BYTES = 1 << 20
MAX_CALLBACKS = 1_000  # per request (Kaleyra sends one; a list is accepted)
MAX_LISTED = 50  # refused callbacks named in one problem document


async def read_body(receive: Receive) -> bytes:
    """The request's body, at most MAX_BODY_BYTES (413 past it)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "disconnected", "the caller went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            count_refused_callbacks("too_large")
            raise Problem(
                413, "body_too_large", f"a callback body is at most {MAX_BODY_BYTES} bytes",
                "Kaleyra sends one callback a request: send a list of at most "
                f"{MAX_CALLBACKS} in bodies under the cap",
            )  # fmt: skip
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def payloads(raw: bytes) -> list[Any]:
    """The decoded body as a list of callbacks (a lone object is a list of one)."""
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        count_refused_callbacks("invalid_json")
        raise Problem(
            400, "invalid_json", "the body is not JSON",
            "send one callback as a JSON object (or a list of them), UTF-8, as Kaleyra does",
        ) from None  # fmt: skip
    except RecursionError:  # json's C scanner recurses once per level: `[[[[...`
        count_refused_callbacks("invalid_json")
        raise Problem(
            400, "invalid_json", "the body is not JSON",
            "the JSON is nested too deep to read: a callback is an object a few levels deep",
        ) from None  # fmt: skip
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_CALLBACKS:
        count_refused_callbacks("too_many")
        raise Problem(
            422, "invalid_callback", f"send 1 to {MAX_CALLBACKS} callbacks at once",
            f"this body holds {len(items)}",
        )  # fmt: skip
    return items


Parsed = TypeVar("Parsed")


def parsed(items: list[Any], parse: Callable[[Any, datetime], Parsed]) -> list[Parsed]:
    """Every item read by `parse` (a status or an incoming-message callback's), or a 422
    naming each one refused (and why): none is stored."""
    received_at = utcnow()
    callbacks: list[Parsed] = []
    refused: list[tuple[int, CallbackError]] = []
    for index, item in enumerate(items):
        try:
            callbacks.append(parse(item, received_at))
        except CallbackError as exc:
            refused.append((index, exc))
    if not refused:
        return callbacks
    for reason, count in Counter(exc.reason for _, exc in refused).items():
        count_refused_callbacks(reason, count)
    count_refused_callbacks("beside_refused", len(callbacks))
    invalid = [
        {"index": index, "field": exc.field, "reason": str(exc)}
        for index, exc in refused[:MAX_LISTED]
    ]
    detail = str(refused[0][1]) if len(items) == 1 else _some_refused(len(refused), len(items))
    raise Problem(422, "invalid_callback", "the callback is not valid", detail, invalid=invalid)


def _some_refused(refused: int, sent: int) -> str:
    listed = f" (the first {MAX_LISTED} in `invalid`)" if refused > MAX_LISTED else ""
    return (
        f"{refused} of the {sent} callbacks cannot be stored{listed}, so none of them was: "
        "fix those at the indexes in `invalid` and send the request again"
    )


def unstorable(exc: CallbacksRefused, sent: int) -> Problem:
    """The 422 of a request whose callbacks the database refused (none was stored)."""
    refused = len(exc.indexes) or sent
    count_refused_callbacks("database_refused", refused)
    count_refused_callbacks("beside_refused", sent - refused)
    invalid = [
        {"index": index, "field": None, "reason": "the database refuses it"}
        for index in exc.indexes[:MAX_LISTED]
    ]
    return Problem(
        422, "unstorable_callback", "the database cannot store the callback", str(exc),
        invalid=invalid,
    )  # fmt: skip
