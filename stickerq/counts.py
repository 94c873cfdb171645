"""A campaign's messages counted by status and error code, read from `campaign_counts`.

The database keeps those rows with every change to `messages` (triggers, migration 0003),
so these reads cost the same for 20 recipients and for a million.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import SQLCoreOperations

from stickerq.models import CampaignCount, Message, PurgeTotals
from stickerq.states import UNSETTLED


@dataclass(slots=True)
class CampaignCounts:
    by_status: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    attempted: int = 0  # messages with at least one attempt
    retries_waiting: int = 0  # pending with a due time (WA500 retry, resend)

    @property
    def messages(self) -> int:
        return sum(self.by_status.values())


def campaign_counts(session: Session, campaign_id: int) -> CampaignCounts:
    rows = session.execute(
        select(
            CampaignCount.status,
            CampaignCount.code,
            func.sum(CampaignCount.messages),
            func.sum(CampaignCount.attempts),
            func.sum(CampaignCount.attempted),
            func.sum(CampaignCount.retries_waiting),
        )
        .where(CampaignCount.campaign_id == campaign_id)
        .group_by(CampaignCount.status, CampaignCount.code)
    ).all()
    return _fold(rows)


def messages_in(
    campaign_id: SQLCoreOperations[int] | int, statuses: Iterable[str] = UNSETTLED
) -> ColumnElement[int]:
    """A campaign's messages in these statuses, as a scalar subquery (0 when none)."""
    return (
        select(func.coalesce(func.sum(CampaignCount.messages), 0))
        .where(CampaignCount.campaign_id == campaign_id, CampaignCount.status.in_(list(statuses)))
        .scalar_subquery()
    )


def counted_from_rows(session: Session, campaign_id: int) -> CampaignCounts:
    """The same figures counted from the messages themselves: what the counters must equal
    (tests compare the two after faults; an operator can too)."""
    code = func.coalesce(Message.last_error_code, "")
    rows = session.execute(
        select(
            Message.status,
            code,
            func.count(),
            func.coalesce(func.sum(Message.attempts), 0),
            func.count().filter(Message.attempts > 0),
            func.count(Message.next_attempt_at),
        )
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status, code)
    ).all()
    return _fold(rows)


def _fold(rows: Iterable[Sequence[Any]]) -> CampaignCounts:
    """(status, code, messages, attempts, attempted, retries_waiting) rows, added up."""
    counts = CampaignCounts()
    for status, code, messages, attempts, attempted, retries_waiting in rows:
        if messages:
            counts.by_status[status] = counts.by_status.get(status, 0) + int(messages)
            if code:
                counts.by_code[code] = counts.by_code.get(code, 0) + int(messages)
        counts.attempts += int(attempts)
        counts.attempted += int(attempted)
        counts.retries_waiting += int(retries_waiting)
    return counts


@dataclass(frozen=True, slots=True)
class SendTotals:
    """What a report shows beyond the counts: messages Kaleyra accepted, and what came of
    them."""

    sent: int  # messages with a sent_at, whatever came after
    delivered: int  # a delivered or read callback arrived (a read message was delivered)
    read: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None


def send_totals(session: Session, campaign_id: int) -> SendTotals:
    """Counted from the campaign's messages; for a purged campaign, as they were kept when its
    purge began (worker/purge.py)."""
    kept = session.get(PurgeTotals, campaign_id)
    if kept is not None:
        return SendTotals(
            kept.sent, kept.delivered, kept.read, kept.first_sent_at, kept.last_sent_at
        )
    heard = or_(Message.delivered_at.is_not(None), Message.read_at.is_not(None))
    sent, delivered, read, first, last = session.execute(
        select(
            func.count(Message.sent_at),
            func.count().filter(heard),
            func.count(Message.read_at),
            func.min(Message.sent_at),
            func.max(Message.sent_at),
        ).where(Message.campaign_id == campaign_id)
    ).one()
    return SendTotals(sent, delivered, read, first, last)
