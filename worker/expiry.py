"""Messages past their campaign's deadline (valid_until) become `expired`, never sent.

A batch handed over after the deadline expires instead of claiming (`expire_late`: one
UPDATE by primary key, like the claim). The periodic expiry (with beat's dispatch of due
retries) covers the messages no task holds: a paused campaign's, those waiting for a WA500
retry or behind an account pause. It finds the live campaigns past their deadline through the
index on (status, valid_until), skips those with nothing pending by their counters, and
expires each one's pending messages through the (campaign_id, status) index: never a scan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import Move, complete_if_settled, move_campaign
from stickerq.counts import messages_in
from stickerq.logs import ids
from stickerq.message_status import MessageMove, end_unsent
from stickerq.models import Campaign, Message, utcnow
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.worker.locked_rows import locked

log = logging.getLogger(__name__)

# Campaigns whose pending messages may still be sent (a scheduled one's deadline is later
# than its time, and beat queues it when due).
LIVE = (CampaignStatus.QUEUED, CampaignStatus.RUNNING, CampaignStatus.PAUSED)


def expire_overdue(sessions: sessionmaker[Session]) -> int:
    """Expire the pending messages of every live campaign past its deadline; returns how many."""
    now = utcnow()
    with sessions() as session:
        overdue = list(
            session.scalars(
                select(Campaign.id)
                .where(
                    Campaign.status.in_(LIVE),
                    Campaign.valid_until <= now,
                    messages_in(Campaign.id, [MessageStatus.PENDING]) > 0,
                )
                .order_by(Campaign.id)
            )
        )
    total = 0
    for campaign_id in overdue:
        with sessions.begin() as session:
            expired = _expire_campaign(session, campaign_id)
        if expired:
            with sessions.begin() as session:  # after the commit: it sees every batch's
                complete_if_settled(session, campaign_id)
            log.info(
                "campaign %s: %s message(s) expired, past its deadline",
                campaign_id,
                expired,
                extra=ids(campaign_id),
            )
        total += expired
    return total


def _expire_campaign(session: Session, campaign_id: int) -> int:
    expired = end_unsent(session, MessageMove.EXPIRE, campaign_id)
    if expired:
        _started_by_expiry(session, campaign_id)
    return expired


def expire_late(session: Session, campaign_id: int, message_pks: Sequence[int]) -> int:
    """Past the campaign's deadline: the batch's still-pending messages (due or waiting for a
    retry) become `expired`, never sent. One UPDATE by primary key, like the claim."""
    batch = locked(Message.id.in_(message_pks))
    expired = end_unsent(
        session, MessageMove.EXPIRE, campaign_id, Message.id == batch.c.id, rows=batch
    )
    if expired:
        _started_by_expiry(session, campaign_id)
    return expired


def _started_by_expiry(session: Session, campaign_id: int) -> None:
    """Expiring its messages starts a campaign: a queued one runs, a paused one resumes to
    running, and either completes once settled (a never-started one would stay queued)."""
    now = utcnow()
    if not move_campaign(session, campaign_id, Move.START, started_at=now):
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.started_at.is_(None))
            .values(started_at=now),
            execution_options={"synchronize_session": False},
        )
