"""Taking a claim on a batch, and giving back what it never sent.

A message leaves `pending` only through `claim`: one conditional UPDATE that moves it to
`sending` where it is still `pending`. Celery delivers at least once (acks_late), so the same
batch may run twice; the second run claims nothing and sends nothing. Both statements lock
their rows by primary key first (worker/locked_rows.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from stickerq.campaign_status import Move, move_campaign
from stickerq.db import one_of
from stickerq.message_status import MessageMove, end_unsent, move_messages
from stickerq.message_status import release as release_messages
from stickerq.models import Campaign, Message, utcnow
from stickerq.states import CampaignStatus
from stickerq.worker.locked_rows import claimed_by, locked

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
    # `--in-window`: when its recipient's window ends (less the margin), its own deadline
    window_ends_at: datetime | None = None


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
    # One array parameter on PostgreSQL: rendering and binding 200 IN values was a third of
    # the claim's CPU in the worker (py-spy).
    batch = locked(one_of(Message.id, session.get_bind().dialect.name))
    conditions = [
        Message.id == batch.c.id,
        batch.c.campaign_id == campaign_id,
        or_(batch.c.next_attempt_at.is_(None), batch.c.next_attempt_at <= now),
        campaign_sendable,
    ]
    if held is not None and held.senders:
        sent_from = func.coalesce(batch.c.sender, held.campaign_sender)
        conditions.append(sent_from.not_in(held.senders))
    rows = session.execute(
        move_messages(
            MessageMove.CLAIM,
            *conditions,
            rows=batch,
            claimed_at=now,
            next_attempt_at=None,
            claim_token=token,
        ).returning(
            Message.id,
            Message.recipient,
            Message.ref,
            Message.ref1,
            Message.ref2,
            Message.attempts,
            Message.delayed_retries,
            Message.sender,
        ),
        {"pks": list(message_pks)},
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
    # The worker knows these never left, even if a sweeper had to guess `unknown`.
    release_messages(
        session,
        Message.id == batch.c.id,
        claimed_by(batch, token),
        rows=batch,
        cancelled=bool(cancelled),
    )


def drop_claimed(
    session: Session, move: MessageMove, message_pks: Sequence[int], token: str, detail: str
) -> None:
    """SUPPRESS or WINDOW_CLOSED: messages this claim took that will never be sent, settled
    in the claim's transaction (`detail` says why); they leave the claim."""
    batch = locked(Message.id.in_(message_pks))
    session.execute(
        move_messages(
            move,
            Message.id == batch.c.id,
            claimed_by(batch, token),
            rows=batch,
            claimed_at=None,
            claim_token=None,
            last_error_detail=detail,
        )
    )


def cancel_unsent(session: Session, campaign_id: int, message_pks: Sequence[int]) -> int:
    """A batch of a cancelled campaign: its messages still `pending` become `cancelled`.

    The cancel itself leaves `sending` messages to their worker, and a worker may write one
    back to `pending` after it (a WA500 with a retry left, no connection made): that retry is
    dispatched when due and ends here instead of waiting for ever."""
    batch = locked(Message.id.in_(message_pks))
    return end_unsent(
        session, MessageMove.CANCEL, campaign_id, Message.id == batch.c.id, rows=batch
    )
