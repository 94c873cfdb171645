"""Kaleyra status callbacks (sent, delivered, read, failed, not-sent) applied to messages.

The v2 payload carries `message_id` and `status` at the top, ours under `extra_info` and
Meta's under `meta_object.value.statuses[]` (`id`, `status`, `timestamp`, `errors`). Parsed
defensively: any of them may be missing.

Applying moves a message only forward, and the result is the same whatever order the
callbacks come in and however often: a time is the earliest one heard (a `read` heard before
its `delivered` sets delivered_at, which the late `delivered` may only move earlier), a late
`sent` or `delivered` after `read` changes no status, and a duplicate matches no row. Callbacks
are applied in bulk, one statement per status for a whole batch (PostgreSQL's counting
triggers run per statement; SQLite takes an executemany). A callback whose message_id matches
no message is kept in `unknown_callbacks`, not refused (`producer/unknown_callbacks.py`).
A failure with Meta's 131050 (the user stopped marketing messages) also puts the recipient on
its account's suppression list (`producer/suppressions.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import String, Text, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ColumnElement

from stickerq.db import rows_changed
from stickerq.errors import StickerqError
from stickerq.models import REF_LENGTH, Message, UnknownCallback, UTCDateTime, utcnow
from stickerq.producer.suppressions import MARKETING_OPT_OUT, add_from_callbacks
from stickerq.states import MessageStatus

# Meta's code for a message outside the recipient's 24-hour window: stickers are not templates.
OUTSIDE_WINDOW = "131047"
STATUSES = ("sent", "delivered", "read", "failed", "not-sent")
AFTER_SENT = (MessageStatus.SENT, MessageStatus.DELIVERED)
HEARD_OF = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
MESSAGE_ID_LENGTH = 128  # Message.message_id
CODE_LENGTH = 32  # Message.last_error_code
DETAIL_LENGTH = 300
LOOKUP_CHUNK = 500  # message_ids per IN (...) lookup


class CallbackError(StickerqError):
    """A callback without a message_id or a status we know."""


@dataclass(frozen=True, slots=True)
class StatusCallback:
    message_id: str
    status: str  # sent | delivered | read | failed | not-sent
    at: datetime
    error_code: str | None = None
    error_detail: str | None = None
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch of callbacks did: messages changed, callbacks kept as unknown."""

    changed: int
    unknown: int


def parse_callback(payload: Any) -> StatusCallback:
    if not isinstance(payload, dict):
        raise CallbackError("a callback is a JSON object")
    meta = _first_status(payload)
    extra_info = payload.get("extra_info")
    extra: dict[str, Any] = extra_info if isinstance(extra_info, dict) else {}
    message_id = payload.get("message_id") or extra.get("message_id") or meta.get("id")
    status = str(payload.get("status") or meta.get("status") or "").lower()
    if not message_id or not isinstance(message_id, str | int):
        raise CallbackError("the callback has no message_id")
    if len(str(message_id)) > MESSAGE_ID_LENGTH:
        raise CallbackError(f"the callback's message_id is longer than {MESSAGE_ID_LENGTH}")
    if status not in STATUSES:
        raise CallbackError(f"the callback's status {status[:40]!r} is not one Kaleyra sends")
    errors = meta.get("errors") if isinstance(meta.get("errors"), list) else []
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    return StatusCallback(
        message_id=str(message_id),
        status=status,
        at=_timestamp(meta.get("timestamp")),
        error_code=str(error["code"])[:CODE_LENGTH] if error.get("code") is not None else None,
        error_detail=str(error.get("title") or error.get("message") or "")[:DETAIL_LENGTH] or None,
        ref=_ref(extra.get("ref")),
        ref1=_ref(extra.get("ref1")),
        ref2=_ref(extra.get("ref2")),
    )


def apply_callbacks(session: Session, callbacks: Sequence[StatusCallback]) -> Applied:
    """Record callbacks on their messages, in the caller's transaction; keep unknown ones."""
    known = _known_message_ids(session, {callback.message_id for callback in callbacks})
    unknown = [callback for callback in callbacks if callback.message_id not in known]
    if unknown:
        session.execute(insert(UnknownCallback), [_unknown_row(c) for c in unknown])
    changed = 0
    for status, rows in _by_status([c for c in callbacks if c.message_id in known]).items():
        changed += _update(session, status, rows)
    add_from_callbacks(
        session,
        (c.message_id for c in callbacks if c.message_id in known and _opted_out(c)),
    )
    return Applied(changed=changed, unknown=len(unknown))


def _opted_out(callback: StatusCallback) -> bool:
    """Meta says the user stopped marketing messages: never send them a sticker again."""
    return callback.status in ("failed", "not-sent") and callback.error_code == MARKETING_OPT_OUT


def apply_callback(session: Session, callback: StatusCallback) -> int:
    """Record one callback; returns how many messages changed (0 or 1)."""
    return apply_callbacks(session, [callback]).changed


def _known_message_ids(session: Session, message_ids: set[str]) -> set[str]:
    if session.get_bind().dialect.name == "postgresql":  # one statement, compiled once
        return set(session.scalars(_PG_KNOWN, {"message_ids": list(message_ids)}))
    ordered, known = sorted(message_ids), set[str]()
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        known.update(
            session.scalars(select(Message.message_id).where(Message.message_id.in_(chunk)))
        )
    return known


_PG_KNOWN = select(Message.message_id).where(
    Message.message_id == func.any(bindparam("message_ids", type_=ARRAY(String())))
)


def _by_status(callbacks: Iterable[StatusCallback]) -> dict[str, list[dict[str, Any]]]:
    """One row per message and status (the earliest time: an UPDATE ... FROM VALUES applies
    one source row per target row); `sent` changes nothing, not-sent is failed."""
    earliest: dict[tuple[str, str], StatusCallback] = {}
    for callback in callbacks:
        status = "failed" if callback.status == "not-sent" else callback.status
        if status == "sent":
            continue
        seen = earliest.get((status, callback.message_id))
        if seen is None or callback.at < seen.at:
            earliest[(status, callback.message_id)] = callback
    rows: dict[str, list[dict[str, Any]]] = {}
    for (status, message_id), callback in earliest.items():
        row: dict[str, Any] = {"cb_message_id": message_id, "cb_at": callback.at}
        if status == "failed":
            row["cb_code"] = callback.error_code or callback.status
            row["cb_detail"] = callback.error_detail or f"callback: {callback.status}"
        rows.setdefault(status, []).append(row)
    return rows


def _update(session: Session, status: str, rows: list[dict[str, Any]]) -> int:
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


def _status_in(*statuses: MessageStatus) -> ColumnElement[bool]:
    """`status IN (...)` written out: an executemany takes no expanding IN parameter."""
    return or_(*(Message.status == status.value for status in statuses))


def _would_lower(current: Any, at: Any) -> ColumnElement[bool]:
    return or_(current.is_(None), current > at)


def _delivered(incoming: Any) -> Update:
    at = incoming.cb_at
    return (
        update(Message)
        .where(
            Message.message_id == incoming.cb_message_id,
            or_(
                Message.status == MessageStatus.SENT,
                and_(
                    _status_in(MessageStatus.DELIVERED, MessageStatus.READ),
                    _would_lower(Message.delivered_at, at),
                ),
            ),
        )
        .values(
            status=case(
                (Message.status == MessageStatus.SENT, MessageStatus.DELIVERED.value),
                else_=Message.status,
            ),
            delivered_at=_earliest(Message.delivered_at, at),
        )
    )


def _read(incoming: Any) -> Update:
    at = incoming.cb_at
    return (
        update(Message)
        .where(
            Message.message_id == incoming.cb_message_id,
            _status_in(*HEARD_OF),
            or_(
                Message.status != MessageStatus.READ,
                _would_lower(Message.read_at, at),
                _would_lower(Message.delivered_at, at),
            ),
        )
        .values(
            status=MessageStatus.READ,
            read_at=_earliest(Message.read_at, at),
            delivered_at=_earliest(Message.delivered_at, at),
        )
    )


def _failed(incoming: Any) -> Update:
    return (
        update(Message)
        .where(Message.message_id == incoming.cb_message_id, _status_in(*AFTER_SENT))
        .values(
            status=MessageStatus.FAILED,
            last_error_code=incoming.cb_code,
            last_error_detail=incoming.cb_detail,
        )
    )


# Each status's rule, over the incoming callbacks' columns (VALUES or bound parameters).
_RULES = {"delivered": _delivered, "read": _read, "failed": _failed}


def _unknown_row(callback: StatusCallback) -> dict[str, Any]:
    return {
        "message_id": callback.message_id,
        "status": callback.status,
        "occurred_at": callback.at,
        "error_code": callback.error_code,
        "error_detail": callback.error_detail,
        "ref": callback.ref,
        "ref1": callback.ref1,
        "ref2": callback.ref2,
        "received_at": utcnow(),
    }


def _ref(value: Any) -> str | None:
    return str(value)[:REF_LENGTH] if value is not None else None


def _first_status(payload: dict[str, Any]) -> dict[str, Any]:
    meta = payload.get("meta_object")
    value = meta.get("value") if isinstance(meta, dict) else None
    statuses = value.get("statuses") if isinstance(value, dict) else None
    if isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
        return statuses[0]
    return {}


def _timestamp(raw: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()
