"""Taking a claim on a batch, and giving back what it never sent.

A message leaves `pending` only through `claim`: one conditional UPDATE that moves it to
`sending` where it is still `pending`. Celery delivers at least once (acks_late), so the same
batch may run twice; the second run claims nothing and sends nothing. Both statements lock
their rows by primary key first (worker/locked_rows.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from stickerq.campaign_status import Move, move_campaign
from stickerq.db import rows_changed
from stickerq.models import Campaign, Message, utcnow
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.worker.locked_rows import locked, still_claimed

SENDABLE_CAMPAIGN = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class HeldSenders:
    """The paused numbers a claim leaves alone: `campaign_sender` stands for rows with none."""

    campaign_sender: str
    senders: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    pk: int
    recipient: str
    ref: str | None
    ref1: str | None
    ref2: str | None
    attempts: int
    delayed_retries: int
    sender: str | None = None  # its own `from` number; None: the campaign's sender


def claim(
    session: Session,
    campaign_id: int,
    message_pks: Sequence[int],
    token: str,
    held: HeldSenders | None = None,
) -> list[ClaimedMessage]:
    """Move the batch's still-pending, due messages to `sending` under this claim token;
    with `held`, not those sent from a paused number (a campaign with per-row senders)."""
    now = utcnow()
    campaign_sendable = exists().where(
        Campaign.id == campaign_id, Campaign.status.in_(SENDABLE_CAMPAIGN)
    )
    batch = locked(Message.id.in_(message_pks))
    conditions = [
        Message.id == batch.c.id,
        batch.c.campaign_id == campaign_id,
        batch.c.status == MessageStatus.PENDING,
        or_(batch.c.next_attempt_at.is_(None), batch.c.next_attempt_at <= now),
        campaign_sendable,
    ]
    if held is not None and held.senders:
        sent_from = func.coalesce(batch.c.sender, held.campaign_sender)
        conditions.append(sent_from.not_in(held.senders))
    rows = session.execute(
        update(Message)
        .where(*conditions)
        .values(
            status=MessageStatus.SENDING, claimed_at=now, next_attempt_at=None, claim_token=token
        )
        .returning(
            Message.id,
            Message.recipient,
            Message.ref,
            Message.ref1,
            Message.ref2,
            Message.attempts,
            Message.delayed_retries,
            Message.sender,
        ),
        execution_options={"synchronize_session": False},
    ).all()
    if rows:
        move_campaign(session, campaign_id, Move.START, started_at=now)
    return [
        ClaimedMessage(pk, recipient, ref, ref1, ref2, attempts, retries, sender)
        for pk, recipient, ref, ref1, ref2, attempts, retries, sender in rows
    ]


def release(session: Session, campaign_id: int, token: str, message_pks: Sequence[int]) -> None:
    """Claimed but never sent (a pause stopped the batch): back to `pending`, or to
    `cancelled` when the campaign was cancelled meanwhile."""
    if not message_pks:
        return
    cancelled = session.scalar(
        select(Campaign.status == CampaignStatus.CANCELLED).where(Campaign.id == campaign_id)
    )
    batch = locked(Message.id.in_(message_pks))
    session.execute(
        update(Message)
        # The worker knows these never left, even if a sweeper had to guess `unknown`.
        .where(Message.id == batch.c.id, still_claimed(batch, token))
        .values(
            status=MessageStatus.CANCELLED if cancelled else MessageStatus.PENDING,
            claimed_at=None,
            claim_token=None,
        ),
        execution_options={"synchronize_session": False},
    )


def cancel_unsent(session: Session, campaign_id: int, message_pks: Sequence[int]) -> int:
    """A batch of a cancelled campaign: its messages still `pending` become `cancelled`.

    The cancel itself leaves `sending` messages to their worker, and a worker may write one
    back to `pending` after it (a WA500 with a retry left, no connection made): that retry is
    dispatched when due and ends here instead of waiting for ever."""
    batch = locked(Message.id.in_(message_pks))
    result = session.execute(
        update(Message)
        .where(
            Message.id == batch.c.id,
            batch.c.campaign_id == campaign_id,
            batch.c.status == MessageStatus.PENDING,
        )
        .values(status=MessageStatus.CANCELLED, next_attempt_at=None),
        execution_options={"synchronize_session": False},
    )
    return rows_changed(result)
