"""Kaleyra status callbacks (sent, delivered, read, failed, not-sent) applied to messages.

Payloads are read by producer/callback_payloads.py. Applying moves a message only forward,
and the result is the same whatever order the callbacks come in and however often: a time is
the earliest one heard (a `read` heard before its `delivered` sets delivered_at, which the
late `delivered` may only move earlier), a late `sent` or `delivered` after `read` changes no
status, and a duplicate matches no row. A time that cannot be true (before the message was
sent, or in the future) is recorded as the time received instead (producer/callback_times.py).
Callbacks are applied in bulk, one statement per status for a whole batch
(producer/callback_updates.py), after one lookup of their messages.

A callback whose message_id matches no message is kept in `unknown_callbacks`, not refused
(`producer/unknown_callbacks.py`): once per message_id and status (a unique index; the
copies Kaleyra sends again are ignored, on both backends). A failure with Meta's 131050 (the
user stopped marketing messages) also puts the recipient on its account's suppression list
(`producer/suppressions.py`); one with Meta's 131047 (outside the 24-hour window) shuts
that recipient's window in the window ledger (`producer/window_callbacks.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from stickerq.models import Message, UnknownCallback
from stickerq.producer.callback_events import EVENT_COLUMNS, add_status_events, wants_events
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callback_times import doubt
from stickerq.producer.callback_updates import update_status
from stickerq.producer.suppressions import MARKETING_OPT_OUT, add_from_callbacks
from stickerq.producer.window_callbacks import close_reported_windows, window_closed

LOOKUP_CHUNK = 500  # message_ids per IN (...) lookup


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch of callbacks did: messages changed, callbacks kept as unknown (copies
    already kept included), and times replaced by the time received, by reason."""

    changed: int
    unknown: int
    times_replaced: Counter[str] = field(default_factory=Counter)


def apply_callbacks(session: Session, callbacks: Sequence[StatusCallback]) -> Applied:
    """Record callbacks on their messages, in the caller's transaction; keep unknown ones."""
    wanted = wants_events(session)
    messages = _messages(session, {callback.message_id for callback in callbacks}, wanted)
    sent = {row.message_id: row.sent_at or row.created_at for row in messages}
    replaced: Counter[str] = Counter()
    known: list[StatusCallback] = []
    unknown: list[StatusCallback] = []
    for callback in callbacks:
        is_known = callback.message_id in sent
        reason = doubt(callback.at, callback.received_at, sent.get(callback.message_id))
        if reason is not None:
            replaced[reason] += 1
            callback = replace(callback, at=callback.received_at)
        (known if is_known else unknown).append(callback)
    if unknown:
        _keep_unknown(session, unknown)
    changed = 0
    for status, rows in _by_status(known).items():
        changed += update_status(session, status, rows)
    add_from_callbacks(session, (c.message_id for c in known if _opted_out(c)))
    closing = [c for c in known if window_closed(c)]
    if closing:
        close_reported_windows(session, closing)
    if wanted:
        add_status_events(session, known, {row.message_id: row for row in messages})
    return Applied(changed=changed, unknown=len(unknown), times_replaced=replaced)


def apply_callback(session: Session, callback: StatusCallback) -> int:
    """Record one callback; returns how many messages changed (0 or 1)."""
    return apply_callbacks(session, [callback]).changed


def _opted_out(callback: StatusCallback) -> bool:
    """Meta says the user stopped marketing messages: never send them a sticker again."""
    return callback.status in ("failed", "not-sent") and callback.error_code == MARKETING_OPT_OUT


def _messages(session: Session, message_ids: set[str], for_events: bool) -> list[Any]:
    """The known messages' rows (message_id, sent_at, created_at; with `for_events`, what
    their webhook events carry too): in one lookup, which finding them took anyway."""
    lookup = _FOR_EVENTS if for_events else _SENT
    if session.get_bind().dialect.name == "postgresql":  # one statement, compiled once
        return list(session.execute(lookup.where(_PG_ANY), {"message_ids": list(message_ids)}))
    ordered = sorted(message_ids)
    found: list[Any] = []
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        found += session.execute(lookup.where(Message.message_id.in_(chunk))).all()
    return found


_SENT = select(Message.message_id, Message.sent_at, Message.created_at)
_FOR_EVENTS = _SENT.add_columns(*EVENT_COLUMNS)
_PG_ANY = Message.message_id == func.any(bindparam("message_ids", type_=ARRAY(String())))


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


def _keep_unknown(session: Session, callbacks: list[StatusCallback]) -> None:
    """Insert one row per (message_id, status), unless one is kept already."""
    rows = {(c.message_id, c.status): _unknown_row(c) for c in reversed(callbacks)}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(UnknownCallback).on_conflict_do_nothing(
        index_elements=[UnknownCallback.message_id, UnknownCallback.status]
    )
    session.execute(statement, list(rows.values()))


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
        "received_at": callback.received_at,
    }
