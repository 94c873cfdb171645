"""The attempt that sent a message, kept on the message's own row.

Nearly every message is sent by one request that Kaleyra accepts with WA202. An `attempts`
row for it would repeat what the message row holds already: when it started (`sent_at`),
its HTTP status (`last_http_status`), its number (the message's `attempts`). That row cost
about 150 bytes a message on PostgreSQL, and a third of the rows a worker writes (issues 23
and 27, migration 0021). So a WA202 attempt that sent its message adds only its latency to
the message (`sent_latency_ms`); every other attempt (WA500, WA400, unknown, a WA200 send)
has its `attempts` row.

Rows written before migration 0021 have that attempt's row already: the message's history
reads the attempt from the message only when no `sent` row started at its `sent_at`. A
requeue writes the attempt out before the message goes again (a callback may fail a sent
message, and failed messages can be requeued): the next send overwrites those columns.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import ColumnElement, exists, insert, literal, select
from sqlalchemy.orm import Session, aliased

from stickerq.models import Attempt, Message

SENT_ACTION = "sent"  # an attempt's action when Kaleyra accepted it (worker/outcomes.py)
ON_ROW_CODE = "WA202"


class AttemptLike(Protocol):
    @property
    def code(self) -> str | None: ...
    @property
    def action(self) -> str: ...


def kept_on_row(attempt: AttemptLike) -> bool:
    """An attempt that has no `attempts` row: a send that WA202 accepted."""
    return attempt.action == SENT_ACTION and attempt.code == ON_ROW_CODE


def _has_own_row() -> ColumnElement[bool]:
    """The message's sending attempt has an `attempts` row (written before 0021, or out)."""
    row = aliased(Attempt)
    return exists().where(
        row.message_pk == Message.id,
        row.action == SENT_ACTION,
        row.started_at == Message.sent_at,
    )


def write_out(session: Session, *conditions: ColumnElement[bool]) -> None:
    """Give the sending attempt of the chosen messages a row of its own, where it has none
    yet."""
    kept = select(
        Message.id,
        Message.attempts,
        Message.sent_at,
        Message.sent_latency_ms,
        Message.last_http_status,
        literal(ON_ROW_CODE),
        literal(SENT_ACTION),
    ).where(
        *conditions,
        Message.sent_at.is_not(None),
        ~_has_own_row(),
    )
    columns = ["message_pk", "number", "started_at", "latency_ms", "http_status", "code"]
    session.execute(insert(Attempt).from_select([*columns, "action"], kept))
