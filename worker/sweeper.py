"""The sweeper (beat, every few seconds): nothing stays `sending` or uncovered for ever.

0. A campaign completed while a requeue raced it, and has pending messages, runs again.
1. A claim whose heartbeat stopped (its worker died, or Redis lost it) is settled: messages
   its record says may have left, or the database's own evidence does (worker/leaving.py),
   become `unknown`, the others `pending` again. The record alone is not enough: after a
   Redis failover it may lack the last grants (see worker/inflight.py); when Redis lost it
   altogether, the database's evidence decides alone.
2. When no task is queued or running, every due `pending` message of a live campaign is
   uncovered (Redis lost its queue, a task was dropped): it is dispatched again. A message
   dispatched twice is claimed once, so this is safe on several hosts at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text, true
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import Move, move_campaigns
from stickerq.counts import messages_in
from stickerq.db import rows_changed
from stickerq.message_status import MessageMove, move_messages, release
from stickerq.models import OPEN_CLAIM, Campaign, Message, utcnow
from stickerq.pauses import in_force
from stickerq.queue import dispatch_grouped, queued_tasks
from stickerq.states import MessageStatus
from stickerq.worker.claims import SENDABLE_CAMPAIGN
from stickerq.worker.inflight import claim_keys, settle_claim

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    unknown: int = 0
    pending: int = 0
    redispatched: int = 0


def settle_dead_claims(
    sessions: sessionmaker[Session], client: redis.Redis, prefix: str, grace_seconds: float
) -> SweepReport:
    """Claims older than grace_seconds whose heartbeat stopped. The grace leaves alone a
    claim whose heartbeat is still being opened."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with sessions() as session:
        # The open claims' partial index, by its own predicate (see worker/due_retries.py).
        tokens = session.scalars(
            select(Message.claim_token)
            .where(text(OPEN_CLAIM), Message.claimed_at < cutoff)
            .distinct()
        ).all()
    unknown = pending = 0
    for token in tokens:
        if token is None:
            continue
        verdict = settle_claim(client, claim_keys(prefix, token))
        if verdict.alive:
            continue
        with sessions.begin() as session:
            # `sending` inline (move_messages): the open claims' partial index proves it
            stuck = Message.claim_token == token
            # the database's own evidence, written before each request left
            never_marked = or_(
                Message.leaving_claim_token.is_(None), Message.leaving_claim_token != token
            )
            never_left: ColumnElement[bool] = never_marked
            if verdict.record_kept:
                # Both must say so: a record that lived through a Redis failover may lack
                # the last grants the old master took (replication is asynchronous).
                not_granted = Message.id.not_in(verdict.sent) if verdict.sent else true()
                never_left = and_(not_granted, never_marked)
            pending += release(session, stuck, never_left, starts={MessageStatus.SENDING})
            unknown += rows_changed(
                session.execute(
                    move_messages(
                        MessageMove.DEAD_CLAIM,
                        stuck,
                        last_error_detail=(
                            "its worker died after the request may have left; never resent"
                        ),
                    )
                )
            )
        log.warning("claim %s settled: its worker is gone", token)
    return SweepReport(unknown=unknown, pending=pending)


def redispatch_uncovered(
    sessions: sessionmaker[Session], client: redis.Redis, prefix: str, batch_size: int
) -> int:
    """Dispatch due pending messages again, but only while no task waits in the queue.

    Tasks being run are not counted: with late acks and a prefetch of one, a running task's
    messages are already claimed (`sending`), so the pending ones are uncovered.
    """
    if queued_tasks(client, prefix):
        return 0
    now = utcnow()
    paused = exists().where(in_force(Campaign.sid, func.coalesce(Message.sender, Campaign.sender)))
    with sessions() as session:
        rows = session.execute(
            select(Message.campaign_id, Message.id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(
                Campaign.status.in_(SENDABLE_CAMPAIGN),
                ~paused,
                Message.status == MessageStatus.PENDING,
                or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
            )
            .order_by(Message.campaign_id, Message.id)
        ).all()
    if rows:
        log.warning("re-dispatching %s pending message(s) that no task covers", len(rows))
        dispatch_grouped(((c, m) for c, m in rows), batch_size)
    return len(rows)


def reopen_campaigns_with_pending(sessions: sessionmaker[Session]) -> int:
    """A campaign completed while a requeue put messages back: running again, so it sends
    them and completes again."""
    with sessions.begin() as session:
        pending = messages_in(Campaign.id, [MessageStatus.PENDING]) > 0
        return len(move_campaigns(session, Move.REOPEN, pending, finished_at=None))


def sweep(
    sessions: sessionmaker[Session],
    client: redis.Redis,
    prefix: str,
    batch_size: int,
    grace_seconds: float,
) -> SweepReport:
    reopen_campaigns_with_pending(sessions)
    settled = settle_dead_claims(sessions, client, prefix, grace_seconds)
    redispatched = redispatch_uncovered(sessions, client, prefix, batch_size)
    return SweepReport(settled.unknown, settled.pending, redispatched)
