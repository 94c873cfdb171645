"""Webhook events of status callbacks: `message.status` for every callback of a known
message, and `message.failed` for a failed or not-sent one, in the callbacks' transaction.
A callback heard again (Kaleyra's retry) makes an event with the same id: one per message_id,
status and type, which a receiver that drops copies by id takes once.

Callbacks come at thousands a second: without a subscriber this costs a dictionary lookup;
with one, a few more columns in the lookup of the batch's messages that applying them makes
anyway (EVENT_COLUMNS), one lookup of their campaigns' accounts, and one INSERT per type.
Events carry the message's id, message_id and refs, never the recipient's number (a
receiver matches them by ref or message_id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.models import Campaign, Message
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.webhook_outbox import Event, EventType, subscribers, write_rows

FAILED = frozenset({"failed", "not-sent"})


# what the events of a message carry, read with the lookup of the callbacks' messages
EVENT_COLUMNS = (Message.id, Message.campaign_id, Message.ref, Message.ref1, Message.ref2)


def wants_events(session: Session) -> bool:
    """Whether some endpoint takes the events of status callbacks (cached)."""
    return bool(
        subscribers(session, EventType.MESSAGE_STATUS)
        or subscribers(session, EventType.MESSAGE_FAILED)
    )


def add_status_events(
    session: Session, callbacks: Sequence[StatusCallback], messages: Mapping[str, Any]
) -> int:
    """Write the events of callbacks already applied, of the known `messages` (message_id ->
    a row with EVENT_COLUMNS); returns how many rows."""
    status_to = subscribers(session, EventType.MESSAGE_STATUS)
    failed_to = subscribers(session, EventType.MESSAGE_FAILED)
    if not (status_to or failed_to) or not callbacks:
        return 0
    once = {(c.message_id, c.status): c for c in callbacks}
    sids = _accounts(session, {row.campaign_id for row in messages.values()})
    events = [
        (callback.status, _event(callback, messages[callback.message_id], sids))
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


def _accounts(session: Session, campaign_ids: set[int]) -> dict[int, str]:
    rows = session.execute(select(Campaign.id, Campaign.sid).where(Campaign.id.in_(campaign_ids)))
    return {campaign_id: sid for campaign_id, sid in rows}


def _event(callback: StatusCallback, message: Any, sids: Mapping[int, str]) -> Event:
    status = "failed" if callback.status == "not-sent" else callback.status
    data = {
        "campaign_id": message.campaign_id,
        "message": message.id,
        "message_id": callback.message_id,
        "status": status,
        "at": callback.at.isoformat(),
        "code": callback.error_code,
        "detail": callback.error_detail,
        "ref": message.ref,
        "ref1": message.ref1,
        "ref2": message.ref2,
    }
    # Kaleyra may send a callback again, in a later batch: its event keeps its id.
    key = f"{callback.message_id}:{status}"
    return Event(message.campaign_id, sids.get(message.campaign_id), data, key)
