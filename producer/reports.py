"""A campaign's report: totals by status and code, success rate, pace (rate and ETA),
duration, delivered/read counts from callbacks, and a breakdown by ref, ref1 or ref2.

Every number is an SQL aggregate (COUNT / MIN / MAX ... GROUP BY) or a counter: a report on a
million recipients reads a handful of rows, never the messages themselves. A campaign whose
messages were purged (worker/purge.py) reports its kept counts and totals instead. Its pace is
`campaigns show`'s (producer/pace.py). `stickerq report --json` prints it as
producer.views.reports.ReportView.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from stickerq.counts import campaign_counts, send_totals
from stickerq.errors import CampaignNotFound, MessagesPurged
from stickerq.models import Campaign, Message
from stickerq.producer.pace import Pace, campaign_pace
from stickerq.producer.progress import campaign_progress
from stickerq.producer.window import outside_window
from stickerq.states import MessageStatus

RefColumn = Literal["ref", "ref1", "ref2"]
REF_COLUMNS: tuple[RefColumn, ...] = ("ref", "ref1", "ref2")
DEFAULT_TOP = 20
# Kaleyra accepted these (a message_id came back); callbacks may have moved them on.
SUCCEEDED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)

# What a code means, for the report table (Kaleyra's words; Meta's codes come in callbacks).
CODE_MEANINGS = {
    "WA400": "payload refused (bad media id or link?)",
    "WA401": "sender number not on the account",
    "WA-401": "API not available to the account, or number on another API version",
    "WA500": "Kaleyra internal error (retries exhausted)",
    "E110": "low balance",
    "RBC001": "wrong SID or api-key",
    "WAV2101": "account daily limit reached",
    "130429": "throughput exceeded",
    "131026": "undeliverable",
    "131047": "outside the recipient's 24-hour window (stickers are not templates)",
    "131048": "spam rate limit",
    "131056": "pair rate limit (same recipient too often)",
    "131050": "the user stopped marketing messages (number suppressed)",
}


def _all_statuses(counts: dict[str, int]) -> dict[str, int]:
    """Every message status as a key (0 when none), in the state machine's order."""
    return {status.value: int(counts.get(status, 0)) for status in MessageStatus}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class RefGroup:
    """The messages sharing one ref value (None: messages without that ref)."""

    value: str | None
    recipients: int
    by_status: dict[str, int]

    @property
    def succeeded(self) -> int:
        return sum(self.by_status.get(status, 0) for status in SUCCEEDED)

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.recipients)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The `top` largest groups by one ref column; `other` sums the remaining groups."""

    by: RefColumn
    top: int
    group_count: int  # distinct values, NULL counted as one
    groups: list[RefGroup]
    other: RefGroup | None  # value None; recipients and by_status summed over the rest


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    name: str
    status: str
    sender: str
    recipients: int
    by_status: dict[str, int]
    by_code: dict[str, int]
    attempts: int
    sent: int  # messages with a sent_at (accepted by Kaleyra), whatever came after
    delivered: int  # delivered or read callback arrived (a read message was delivered)
    read: int  # read callback arrived
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    duration_seconds: float | None
    pace: Pace  # messages settled per second since it started, and the ETA at that rate
    breakdown: Breakdown | None = field(default=None)
    # Its messages were purged (retention): the figures are its counts, kept
    messages_purged_at: datetime | None = None

    @property
    def succeeded(self) -> int:
        """Messages now sent, delivered or read."""
        return sum(self.by_status.get(status, 0) for status in SUCCEEDED)

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.recipients)

    @property
    def outside_window(self) -> int:
        """Messages outside the window (131047, or never sent): only a template reaches them."""
        return outside_window(self.by_code, self.by_status)


def campaign_report(
    session: Session,
    campaign_id: int,
    by: RefColumn | None = None,
    *,
    top: int = DEFAULT_TOP,
    now: datetime | None = None,
) -> CampaignReport:
    """Report on one campaign; `by` adds a breakdown by that ref column (top `top` groups).

    Raises CampaignNotFound for an unknown id, ValueError for a `by` that is not a ref column.
    """
    if by is not None and by not in REF_COLUMNS:
        raise ValueError(f"cannot break down by {by!r}: choose one of {', '.join(REF_COLUMNS)}")
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; check the id printed by `stickerq send`"
        )
    purged = campaign.messages_purged_at is not None
    if purged and by is not None:
        raise MessagesPurged.of(campaign.id, campaign.messages_purged_at, f"a breakdown by {by}")
    if purged:  # its counts, kept when the messages went
        counts = campaign_counts(session, campaign_id)
        by_status, by_code, attempts = counts.by_status, counts.by_code, counts.attempts
    else:
        by_status, by_code, attempts = _counted(session, campaign_id)
    recipients = sum(by_status.values())
    totals = send_totals(session, campaign_id)
    now = now or datetime.now(UTC)
    return CampaignReport(
        campaign_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        sender=campaign.sender,
        recipients=recipients,
        by_status=_all_statuses(by_status),
        by_code=dict(sorted(by_code.items())),
        attempts=int(attempts),
        sent=totals.sent,
        delivered=totals.delivered,
        read=totals.read,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        first_sent_at=totals.first_sent_at,
        last_sent_at=totals.last_sent_at,
        duration_seconds=_duration(campaign, now),
        pace=campaign_pace(
            campaign_progress(session, campaign_id), campaign.started_at, campaign.finished_at, now
        ),
        breakdown=(
            _breakdown(session, campaign_id, by, top, recipients, by_status) if by else None
        ),
        messages_purged_at=campaign.messages_purged_at,
    )


def _counted(session: Session, campaign_id: int) -> tuple[dict[str, int], dict[str, int], int]:
    """(by status, by code, attempts) from the campaign's messages."""
    by_status: dict[str, int] = {}
    by_code: dict[str, int] = {}
    attempts = 0
    for status, code, count, tried in session.execute(
        select(
            Message.status,
            Message.last_error_code,
            func.count(),
            func.coalesce(func.sum(Message.attempts), 0),
        )
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status, Message.last_error_code)
    ):
        by_status[status] = by_status.get(status, 0) + count
        if code is not None:
            by_code[code] = by_code.get(code, 0) + count
        attempts += int(tried)
    return by_status, by_code, attempts


def _duration(campaign: Campaign, now: datetime) -> float | None:
    """started → finished; while it runs, started → now; None if it never started."""
    if campaign.started_at is None:
        return None
    return ((campaign.finished_at or now) - campaign.started_at).total_seconds()


def _breakdown(
    session: Session,
    campaign_id: int,
    by: RefColumn,
    top: int,
    recipients: int,
    by_status: dict[str, int],
) -> Breakdown:
    column: InstrumentedAttribute[str | None] = getattr(Message, by)
    of_campaign = Message.campaign_id == campaign_id
    sizes = session.execute(
        select(column, func.count())
        .where(of_campaign)
        .group_by(column)
        .order_by(func.count().desc(), column.asc().nulls_last())
        .limit(top)
    ).all()
    group_count = session.scalar(
        select(func.count()).select_from(
            select(column).where(of_campaign).group_by(column).subquery()
        )
    )
    values = [value for value, _ in sizes]
    in_top: ColumnElement[bool] = column.in_([v for v in values if v is not None])
    if None in values:  # IN never matches NULL
        in_top = or_(in_top, column.is_(None))
    counts: dict[str | None, dict[str, int]] = {value: {} for value in values}
    for value, status, count in session.execute(
        select(column, Message.status, func.count())
        .where(of_campaign, in_top)
        .group_by(column, Message.status)
    ):
        counts[value][status] = count
    groups = [RefGroup(value, size, _all_statuses(counts[value])) for value, size in sizes]
    other = None
    if len(groups) < (group_count or 0):
        rest = {
            status: by_status.get(status, 0) - sum(g.by_status[status] for g in groups)
            for status in _all_statuses({})
        }
        other = RefGroup(None, recipients - sum(g.recipients for g in groups), rest)
    return Breakdown(by, top, group_count or 0, groups, other)
