"""Delivered and failed webhook events are deleted STICKERQ_WEBHOOK_RETENTION_DAYS after they
happened, in batches of PURGE_BATCH rows, each its own short transaction (beat's purge)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import WebhookOutboxEvent, utcnow

PURGE_BATCH = 1_000
MAX_BATCHES = 100  # a run's bound: the next minute's run goes on


def purge_webhook_events(sessions: sessionmaker[Session], days: float) -> int:
    """Delete the settled events older than `days`; returns how many."""
    before = utcnow() - timedelta(days=days)
    settled = WebhookOutboxEvent.delivered_at.is_not(None) | WebhookOutboxEvent.failed_at.is_not(
        None
    )
    deleted = 0
    for _ in range(MAX_BATCHES):
        with sessions.begin() as session:
            pks = list(
                session.scalars(
                    select(WebhookOutboxEvent.id)
                    .where(WebhookOutboxEvent.created_at < before, settled)
                    .limit(PURGE_BATCH)
                )
            )
            if pks:
                session.execute(delete(WebhookOutboxEvent).where(WebhookOutboxEvent.id.in_(pks)))
        deleted += len(pks)
        if len(pks) < PURGE_BATCH:
            break
    return deleted
