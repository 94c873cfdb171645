"""Delivered and failed webhook events are deleted STICKERQ_WEBHOOK_RETENTION_DAYS after they
happened, in batches of PURGE_BATCH rows, each its own short transaction (beat's purge).

Rows are read oldest first by primary key (ids grow with time), so the purge needs no index
of its own that every event would pay for. Past the retention every row is settled: an
event is retried for STICKERQ_WEBHOOK_RETRY_FOR_SECONDS (a day) at most."""

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
    deleted, after = 0, 0
    for _ in range(MAX_BATCHES):
        with sessions.begin() as session:
            oldest = session.execute(
                select(WebhookOutboxEvent.id, WebhookOutboxEvent.created_at, settled)
                .where(WebhookOutboxEvent.id > after)
                .order_by(WebhookOutboxEvent.id)
                .limit(PURGE_BATCH)
            ).all()
            old = [row for row in oldest if row.created_at < before]
            pks = [row.id for row in old if row[2]]
            if pks:
                session.execute(delete(WebhookOutboxEvent).where(WebhookOutboxEvent.id.in_(pks)))
        deleted += len(pks)
        if len(old) < PURGE_BATCH:
            return deleted  # reached the events still kept
        after = old[-1].id
    return deleted
