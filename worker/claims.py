"""Claiming messages and writing their results: short transactions, bulk statements.

A message leaves `pending` only through `claim`: one conditional UPDATE that moves it to
`sending` where it is still `pending`. Celery delivers at least once (acks_late), so the same
batch may run twice; the second run claims nothing and sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session

from stickerq.models import Attempt, Campaign, Message, utcnow
from stickerq.states import CampaignStatus, MessageStatus

SENDABLE_CAMPAIGN = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    pk: int
    recipient: str
    ref: str | None
    ref1: str | None
    ref2: str | None
    attempts: int
    delayed_retries: int


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    started_at: datetime
    latency_ms: float | None
    http_status: int | None
    code: str | None
    action: str
    detail: str | None


@dataclass(slots=True)
class MessageResult:
    """Where one claimed message ends after this batch, and the attempts that got it there."""

    pk: int
    status: MessageStatus
    attempts: list[AttemptRecord]
    total_attempts: int
    delayed_retries: int
    message_id: str | None = None
    code: str | None = None
    http_status: int | None = None
    detail: str | None = None
    next_attempt_at: datetime | None = None


def claim(
    session: Session, campaign_id: int, message_ids: Sequence[int], token: str
) -> list[ClaimedMessage]:
    """Move the batch's still-pending, due messages to `sending` under this claim token."""
    now = utcnow()
    campaign_sendable = exists().where(
        Campaign.id == campaign_id, Campaign.status.in_(SENDABLE_CAMPAIGN)
    )
    rows = session.execute(
        update(Message)
        .where(
            Message.id.in_(message_ids),
            Message.campaign_id == campaign_id,
            Message.status == MessageStatus.PENDING,
            or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
            campaign_sendable,
        )
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
        ),
        execution_options={"synchronize_session": False},
    ).all()
    if rows:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.QUEUED)
            .values(status=CampaignStatus.RUNNING, started_at=now)
        )
    return [ClaimedMessage(*row) for row in rows]


def release(session: Session, campaign_id: int, token: str, message_pks: Sequence[int]) -> None:
    """Claimed but never sent (a pause stopped the batch): back to `pending`, or to
    `cancelled` when the campaign was cancelled meanwhile."""
    if not message_pks:
        return
    cancelled = session.scalar(
        select(Campaign.status == CampaignStatus.CANCELLED).where(Campaign.id == campaign_id)
    )
    session.execute(
        update(Message)
        .where(
            Message.id.in_(message_pks),
            Message.claim_token == token,
            # The worker knows these never left, even if a sweeper had to guess `unknown`.
            or_(Message.status == MessageStatus.SENDING, Message.status == MessageStatus.UNKNOWN),
        )
        .values(
            status=MessageStatus.CANCELLED if cancelled else MessageStatus.PENDING,
            claimed_at=None,
            claim_token=None,
        ),
        execution_options={"synchronize_session": False},
    )


_table = Message.__table__
_write_result = (
    update(_table)
    # A sweeper that took this claim for dead may have made its sent messages `unknown`;
    # the worker's real result wins.
    .where(
        and_(
            _table.c.id == bindparam("pk"),
            _table.c.claim_token == bindparam("token"),
            or_(
                _table.c.status == MessageStatus.SENDING,
                _table.c.status == MessageStatus.UNKNOWN,
            ),
        )
    )
    .values(
        status=bindparam("status"),
        attempts=bindparam("total_attempts"),
        delayed_retries=bindparam("delayed_retries"),
        message_id=bindparam("message_id"),
        last_error_code=bindparam("code"),
        last_http_status=bindparam("http_status"),
        last_error_detail=bindparam("detail"),
        next_attempt_at=bindparam("next_attempt_at"),
        last_attempt_at=bindparam("last_attempt_at"),
        sent_at=bindparam("sent_at"),
    )
)


def write_results(session: Session, token: str, results: Sequence[MessageResult]) -> None:
    """All of a batch's outcomes and attempts in two executemany statements."""
    if not results:
        return
    session.connection().execute(
        _write_result, [{**_result_params(r), "token": token} for r in results]
    )
    attempt_rows = [{"message_pk": r.pk, **vars_of(a)} for r in results for a in r.attempts]
    if attempt_rows:
        session.execute(insert(Attempt), attempt_rows)


def _result_params(result: MessageResult) -> dict[str, object]:
    last = result.attempts[-1].started_at if result.attempts else None
    return {
        "pk": result.pk,
        "status": result.status,
        "total_attempts": result.total_attempts,
        "delayed_retries": result.delayed_retries,
        "message_id": result.message_id,
        "code": result.code,
        "http_status": result.http_status,
        "detail": result.detail,
        "next_attempt_at": result.next_attempt_at,
        "last_attempt_at": last,
        "sent_at": last if result.status is MessageStatus.SENT else None,
    }


def vars_of(record: AttemptRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in AttemptRecord.__slots__}


def complete_if_settled(session: Session, campaign_id: int) -> bool:
    """Mark the campaign completed once no message is pending or sending."""
    unsettled = exists().where(
        Message.campaign_id == campaign_id,
        Message.status.in_((MessageStatus.PENDING, MessageStatus.SENDING)),
    )
    result = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status == CampaignStatus.RUNNING,
            ~unsettled,
        )
        .values(status=CampaignStatus.COMPLETED, finished_at=utcnow())
    )
    return bool(result.rowcount)


def take_due_retries(session: Session) -> list[tuple[int, int]]:
    """Pending messages whose retry time has come: (campaign_id, message pk), made undelayed.

    The conditional UPDATE hands each due message to one dispatcher even with two beats.
    """
    now = utcnow()
    rows = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.PENDING, Message.next_attempt_at <= now)
        .values(next_attempt_at=None)
        .returning(Message.campaign_id, Message.id),
        execution_options={"synchronize_session": False},
    ).all()
    return sorted((campaign_id, pk) for campaign_id, pk in rows)


def pending_ids(session: Session, campaign_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Message.id)
            .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING)
            .order_by(Message.id)
        )
    )
