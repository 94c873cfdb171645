"""The bulk statements that record status callbacks on messages: one per status for a batch.

Each status's rule moves a message only forward and keeps the earliest time heard (see
producer/callbacks.py for why the result does not depend on order or duplicates). On
PostgreSQL the incoming rows go in as one array per column, read with `unnest`, so the
statement is the same whatever the batch's size and is compiled once (the counting triggers
of `messages` run per statement); SQLite takes an executemany.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import String, Text, bindparam, case, func, or_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ColumnElement

from stickerq.db import rows_changed
from stickerq.message_status import MessageMove, move_messages
from stickerq.models import Message, UTCDateTime
from stickerq.states import MessageStatus


def update_status(session: Session, status: str, rows: list[dict[str, Any]]) -> int:
    """Apply `status` (delivered, read or failed) to the messages of `rows` (cb_message_id,
    cb_at, and for failed cb_code and cb_detail); returns how many messages changed."""
    names = ["cb_message_id", "cb_at"] + (["cb_code", "cb_detail"] if status == "failed" else [])
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        arrays = {f"{name}s": [row[name] for row in rows] for name in names}
        return rows_changed(connection.execute(_pg_statement(status), arrays))
    binds = SimpleNamespace(**{name: bindparam(name, type_=_TYPES[name]) for name in names})
    return rows_changed(connection.execute(_RULES[status](binds), rows))


_TYPES: dict[str, Any] = {
    "cb_message_id": String(),
    "cb_at": UTCDateTime(),
    "cb_code": String(),
    "cb_detail": Text(),
}


@cache
def _pg_statement(status: str) -> Update:
    """The rule over `unnest` of one array per column: the same SQL whatever the batch's
    size, so it is compiled once (a VALUES list was compiled anew for every batch)."""
    names = ["cb_message_id", "cb_at"] + (["cb_code", "cb_detail"] if status == "failed" else [])
    arrays = [bindparam(f"{name}s", type_=ARRAY(_TYPES[name])) for name in names]
    incoming = func.unnest(*arrays).table_valued(*names).render_derived(name="incoming")
    return _RULES[status](incoming.c)


def _earliest(current: Any, at: Any) -> ColumnElement[Any]:
    return case((or_(current.is_(None), current > at), at), else_=current)


def _would_lower(current: Any, at: Any) -> ColumnElement[bool]:
    return or_(current.is_(None), current > at)


def _delivered(incoming: Any) -> Update:
    at = incoming.cb_at
    return move_messages(
        MessageMove.DELIVERED,
        Message.message_id == incoming.cb_message_id,
        or_(Message.status == MessageStatus.SENT, _would_lower(Message.delivered_at, at)),
        to=case(
            (Message.status == MessageStatus.SENT, MessageStatus.DELIVERED.value),
            else_=Message.status,
        ),
        delivered_at=_earliest(Message.delivered_at, at),
    )


def _read(incoming: Any) -> Update:
    at = incoming.cb_at
    return move_messages(
        MessageMove.READ,
        Message.message_id == incoming.cb_message_id,
        or_(
            Message.status != MessageStatus.READ,
            _would_lower(Message.read_at, at),
            _would_lower(Message.delivered_at, at),
        ),
        read_at=_earliest(Message.read_at, at),
        delivered_at=_earliest(Message.delivered_at, at),
    )


def _failed(incoming: Any) -> Update:
    return move_messages(
        MessageMove.CALLBACK_FAILED,
        Message.message_id == incoming.cb_message_id,
        last_error_code=incoming.cb_code,
        last_error_detail=incoming.cb_detail,
    )


# Each status's rule, over the incoming callbacks' columns (VALUES or bound parameters).
_RULES = {"delivered": _delivered, "read": _read, "failed": _failed}
