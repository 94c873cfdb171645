"""Webhook events of status callbacks: `message.status` for every callback of a known
message, and `message.failed` for a failed or not-sent one, in the callbacks' transaction.

Callbacks come at thousands a second: without a subscriber this costs a dictionary lookup;
with one, a lookup of the batch's messages (by the message_id index, as applying them did)
and one INSERT per type. Events carry the message's id, message_id and refs, never the
recipient's number (a receiver matches them by ref or message_id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.models import Campaign, Message
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.webhook_outbox import Event, EventType, subscribers, write_rows

LOOKUP_CHUNK = 500
FAILED = frozenset({"failed", "not-sent"})


def add_status_events(session: Session, callbacks: Sequence[StatusCallback]) -> int:
    """Write the events of callbacks already applied; returns how many rows."""
    status_to = subscribers(session, EventType.MESSAGE_STATUS)
    failed_to = subscribers(session, EventType.MESSAGE_FAILED)
    if not (status_to or failed_to) or not callbacks:
        return 0
    once = {(c.message_id, c.status): c for c in callbacks}
    messages = _messages(session, {message_id for message_id, _ in once})
    events = [
        (callback.status, _event(callback, messages[callback.message_id]))
        for callback in once.values()
        if callback.message_id in messages
    ]
    written = 0
    if status_to:
        written += write_rows(session, EventType.MESSAGE_STATUS, [e for _, e in events], status_to)
    if failed_to:
        failed = [e for status, e in events if status in FAILED]
        written += write_rows(session, EventType.MESSAGE_FAILED, failed, failed_to)
    return written


def _messages(session: Session, message_ids: set[str]) -> dict[str, Any]:
    ordered, found = sorted(message_ids), {}
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        rows = session.execute(
            select(
                Message.message_id,
                Message.id,
                Message.campaign_id,
                Campaign.sid,
                Message.ref,
                Message.ref1,
                Message.ref2,
            )
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.message_id.in_(chunk))
        )
        found.update({row.message_id: row for row in rows})
    return found


def _event(callback: StatusCallback, message: Any) -> Event:
    data = {
        "campaign_id": message.campaign_id,
        "message": message.id,
        "message_id": callback.message_id,
        "status": "failed" if callback.status == "not-sent" else callback.status,
        "at": callback.at.isoformat(),
        "code": callback.error_code,
        "detail": callback.error_detail,
        "ref": message.ref,
        "ref1": message.ref1,
        "ref2": message.ref2,
    }
    return Event(message.campaign_id, message.sid, data)
