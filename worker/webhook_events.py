"""The worker's webhook events: `message.failed` for the messages a batch's flush wrote
`failed`, in the flush's transaction and one INSERT (stickerq/webhook_outbox.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from stickerq.states import MessageStatus
from stickerq.webhook_outbox import EventType, add_campaign_events, subscribers
from stickerq.worker.results import MessageResult


def add_failed_events(session: Session, campaign_id: int, results: Sequence[MessageResult]) -> int:
    """One `message.failed` event per failed result; nothing at all without a subscriber."""
    if not subscribers(session, EventType.MESSAGE_FAILED):
        return 0
    data = [
        {
            "campaign_id": campaign_id,
            "message": result.pk,
            "message_id": result.message_id,
            "status": MessageStatus.FAILED.value,
            "code": result.code,
            "http_status": result.http_status,
            "detail": result.detail,
            "attempts": result.total_attempts,
        }
        for result in results
        if result.status is MessageStatus.FAILED
    ]
    return add_campaign_events(session, EventType.MESSAGE_FAILED, campaign_id, data)
