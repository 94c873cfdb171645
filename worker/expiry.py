"""The periodic expiry (with beat's dispatch of due retries): messages nobody will claim
before their campaign's deadline are made `expired` anyway.

A claim expires what it is handed after the deadline (worker/claims.py, `expire_late`); this
covers the messages no task holds: a paused campaign's, those waiting for a WA500 retry or
behind an account pause. It finds the live campaigns past their deadline through the index
on (status, valid_until), skips those with nothing pending by their counters, and expires
each one's pending messages through the (campaign_id, status) index: never a scan.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import complete_if_settled
from stickerq.counts import messages_in
from stickerq.db import rows_changed
from stickerq.logs import ids
from stickerq.models import Campaign, Message, utcnow
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.worker.claims import EXPIRED_DETAIL, started_by_expiry

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
    expired = rows_changed(
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING)
            .values(
                status=MessageStatus.EXPIRED, next_attempt_at=None, last_error_detail=EXPIRED_DETAIL
            ),
            execution_options={"synchronize_session": False},
        )
    )
    if expired:
        started_by_expiry(session, campaign_id)
    return expired
