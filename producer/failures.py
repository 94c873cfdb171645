"""The operator's view of what did not go out: parked, failed, unknown and expired messages,
and the whole history of one message.

Plain functions over a session (the CLI is a thin shell over them). Rows are streamed, so
listing a campaign of millions of failures keeps memory flat.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from stickerq.errors import StickerqError, excerpt
from stickerq.models import Attempt, Campaign, CampaignCount, Message, utcnow
from stickerq.producer.phones import InvalidPhone, normalise_phone
from stickerq.sending_attempts import ON_ROW_CODE, SENT_ACTION
from stickerq.states import MessageStatus

# The statuses an operator looks at and may requeue, in the order they are listed.
FAILURE_STATUSES: tuple[MessageStatus, ...] = (
    MessageStatus.PARKED,
    MessageStatus.FAILED,
    MessageStatus.UNKNOWN,
    MessageStatus.EXPIRED,
    MessageStatus.OUTSIDE_WINDOW,
)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")


class FilterError(StickerqError):
    """A --status, --since or --code value that cannot be used."""


class MessageNotFound(StickerqError):
    """No message has that recipient or Kaleyra message_id."""


def parse_status(value: str) -> MessageStatus:
    """`parked`, `failed`, `unknown`, `expired` or `outside_window`; anything else is
    refused with the allowed values."""
    allowed = ", ".join(FAILURE_STATUSES)
    if value.strip().lower() not in FAILURE_STATUSES:
        raise FilterError(f"--status {value!r} is not one of {allowed}")
    return MessageStatus(value.strip().lower())


def parse_since(value: str, now: datetime | None = None, option: str = "--since") -> datetime:
    """An ISO datetime with its zone (`2024-05-01T09:00+05:30`, `...Z`) or a duration back
    from now (`30m`, `2h`, `1d`, `1h30m`), as an aware UTC datetime."""
    text = value.strip()
    if _DURATION.fullmatch(text):
        delta = timedelta()
        try:
            for amount, unit in _DURATION_PART.findall(text):
                delta += timedelta(**{_DURATION_UNITS[unit]: int(amount)})
            return (now or utcnow()) - delta
        except OverflowError:
            raise FilterError(f"{option} {excerpt(value)!r} reaches back before year 1") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"{option} {excerpt(value)!r} is neither a duration (30m, 2h, 1d) nor an ISO "
            "datetime (2024-05-01T09:00:00+05:30)"
        ) from None
    if moment.tzinfo is None:
        raise FilterError(
            f"{option} {value!r} has no time zone: add one, e.g. {text}+05:30 or {text}Z"
        )
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class FailureFilters:
    """Which failures to show; None means any. `status` None means every failure state."""

    campaign_id: int | None = None
    status: MessageStatus | None = None
    code: str | None = None
    since: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        statuses = (self.status,) if self.status else FAILURE_STATUSES
        conditions: list[ColumnElement[bool]] = [Message.status.in_(statuses)]
        if self.campaign_id is not None:
            conditions.append(Message.campaign_id == self.campaign_id)
        if self.code is not None:
            conditions.append(Message.last_error_code == self.code)
        if self.since is not None:
            # Unknown rows settled by the sweeper may have no attempt time: use their claim.
            conditions.append(
                func.coalesce(Message.last_attempt_at, Message.claimed_at) >= self.since
            )
        return conditions


@dataclass(frozen=True, slots=True)
class SummaryRow:
    status: str
    code: str | None
    count: int


@dataclass(frozen=True, slots=True)
class FailureRow:
    campaign_id: int
    recipient: str
    status: str
    code: str | None
    http_status: int | None
    detail: str | None
    attempts: int
    last_attempt_at: datetime | None

    @property
    def message(self) -> str | None:
        """Kaleyra's (or our) words for a parked or failed message."""
        return None if self.status == MessageStatus.UNKNOWN else self.detail

    @property
    def why_unknown(self) -> str | None:
        """For an `unknown` message: why we cannot tell whether it went out."""
        return self.detail if self.status == MessageStatus.UNKNOWN else None


def failure_summary(session: Session, filters: FailureFilters) -> list[SummaryRow]:
    """Counts by status and error code, statuses in FAILURE_STATUSES order, biggest first."""
    rows = session.execute(
        select(Message.status, Message.last_error_code, func.count())
        .where(*filters.conditions())
        .group_by(Message.status, Message.last_error_code)
    ).all()
    return _in_order([SummaryRow(status, code, count) for status, code, count in rows])


def campaign_failure_summary(session: Session, campaign_id: int) -> list[SummaryRow]:
    """failure_summary of one whole campaign, read from its counters (stickerq/counts.py):
    a few rows however many messages failed, cheap enough to poll every second."""
    rows = session.execute(
        select(CampaignCount.status, CampaignCount.code, func.sum(CampaignCount.messages))
        .where(
            CampaignCount.campaign_id == campaign_id,
            CampaignCount.status.in_(FAILURE_STATUSES),
        )
        .group_by(CampaignCount.status, CampaignCount.code)
    ).all()
    return _in_order(
        [SummaryRow(status, code or None, int(count)) for status, code, count in rows if count]
    )


def _in_order(summary: list[SummaryRow]) -> list[SummaryRow]:
    """Statuses in FAILURE_STATUSES order, then the biggest count first."""
    order: dict[str, int] = {status: index for index, status in enumerate(FAILURE_STATUSES)}
    return sorted(summary, key=lambda row: (order.get(row.status, 99), -row.count, row.code or ""))


_ROW_COLUMNS = (  # a FailureRow's fields, in order
    Message.campaign_id,
    Message.recipient,
    Message.status,
    Message.last_error_code,
    Message.last_http_status,
    Message.last_error_detail,
    Message.attempts,
    Message.last_attempt_at,
)


def failure_rows(
    session: Session, filters: FailureFilters, limit: int | None = None
) -> Iterator[FailureRow]:
    """The matching messages, oldest first, streamed from the database."""
    query = (
        select(*_ROW_COLUMNS)
        .where(*filters.conditions())
        .order_by(Message.campaign_id, Message.id)
        .execution_options(yield_per=1000)
    )
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query):
        yield FailureRow(*row)


def failure_examples(
    session: Session, campaign_id: int, status: MessageStatus, limit: int
) -> list[FailureRow]:
    """Up to `limit` of the campaign's messages in this failure status, in no set order: read
    through the (campaign, status) index and stopped at `limit`, so it costs the same for
    ten failures or a million (failure_rows lists them all, oldest first)."""
    query = (
        select(*_ROW_COLUMNS)
        .where(Message.campaign_id == campaign_id, Message.status == status)
        .limit(limit)
    )
    return [FailureRow(*row) for row in session.execute(query)]


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    started_at: datetime
    http_status: int | None
    code: str | None
    action: str
    latency_ms: float | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class MessageHistory:
    """One recipient of one campaign, from creation to its last callback."""

    campaign_id: int
    campaign_name: str
    recipient: str
    status: str
    message_id: str | None
    refs: tuple[str | None, str | None, str | None]
    last_error_code: str | None
    last_error_detail: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    next_attempt_at: datetime | None
    attempts: list[AttemptView] = field(default_factory=list)


def message_history(session: Session, recipient_or_message_id: str) -> list[MessageHistory]:
    """Every message to that recipient (one per campaign, oldest campaign first), or the one
    with that Kaleyra message_id, each with all its attempts in order."""
    wanted = recipient_or_message_id.strip()
    matches = [Message.message_id == wanted]
    if (recipient := _as_recipient(wanted)) is not None:
        matches.append(Message.recipient == recipient)
    found = histories(session, or_(*matches))
    if not found:
        raise MessageNotFound(
            f"no message to {excerpt(wanted)!r} and none with that message_id; give the "
            f"recipient in E.164 (+919812345678) or the message_id Kaleyra returned"
            f"{_purged_note(session)}"
        )
    return found


def message_history_by_id(
    session: Session, message_id: str, *, sid: str | None = None
) -> list[MessageHistory]:
    """The message with that Kaleyra message_id (one, unless Kaleyra repeated an id), with
    all its attempts; raises MessageNotFound. `sid`: of that account's campaigns only (a key
    restricted to it: another account's message is as if absent)."""
    condition = Message.message_id == message_id.strip()
    if sid is not None:
        of_account = select(Campaign.id).where(Campaign.sid == sid)
        condition = and_(condition, Message.campaign_id.in_(of_account))
    found = histories(session, condition)
    if not found:
        raise MessageNotFound(
            f"no message has the message_id {excerpt(message_id)!r}: give the id Kaleyra "
            f"returned when it accepted the message{_purged_note(session)}"
        )
    return found


def _purged_note(session: Session) -> str:
    """Where a message may have gone: the retention purge of its campaign."""
    last = session.scalar(select(func.max(Campaign.messages_purged_at)))
    if last is None:
        return ""
    return (
        "; or it was purged with its campaign past the retention period (the latest purge "
        f"began on {last:%Y-%m-%d}: `stickerq campaigns list` and `report` still show them)"
    )


def histories(session: Session, condition: ColumnElement[bool]) -> list[MessageHistory]:
    """The messages that meet `condition`, each with every attempt in order."""
    rows = session.execute(
        select(Message, Campaign.name)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(condition)
        .order_by(Message.campaign_id, Message.id)
    ).all()
    if not rows:
        return []
    attempts: dict[int, list[AttemptView]] = {message.id: [] for message, _ in rows}
    for attempt in session.execute(
        select(
            Attempt.message_pk,
            Attempt.number,
            Attempt.started_at,
            Attempt.http_status,
            Attempt.code,
            Attempt.action,
            Attempt.latency_ms,
            Attempt.detail,
        )
        .where(Attempt.message_pk.in_(attempts))
        .order_by(Attempt.message_pk, Attempt.number, Attempt.started_at, Attempt.id)
    ):
        message_pk, number, started_at, http_status, code, action, latency_ms, detail = attempt
        attempts[message_pk].append(
            AttemptView(number, started_at, http_status, code, action, latency_ms, detail)
        )
    return [
        _history(message, name, _with_sending_attempt(message, attempts[message.id]))
        for message, name in rows
    ]


def _with_sending_attempt(message: Message, attempts: list[AttemptView]) -> list[AttemptView]:
    """The WA202 attempt that sent the message, kept on its row (stickerq/sending_attempts.py)
    unless it has a row of its own (written before 0021, or out by a requeue)."""
    sent_at = message.sent_at
    if sent_at is None:
        return attempts
    if any(a.action == SENT_ACTION and a.started_at == sent_at for a in attempts):
        return attempts
    sending = AttemptView(
        number=message.attempts,
        started_at=sent_at,
        http_status=message.last_http_status,
        code=ON_ROW_CODE,
        action=SENT_ACTION,
        latency_ms=message.sent_latency_ms,
        detail=None,
    )
    return [*attempts, sending]


def _history(message: Message, campaign_name: str, attempts: list[AttemptView]) -> MessageHistory:
    return MessageHistory(
        campaign_id=message.campaign_id,
        campaign_name=campaign_name,
        recipient=message.recipient,
        status=message.status,
        message_id=message.message_id,
        refs=(message.ref, message.ref1, message.ref2),
        last_error_code=message.last_error_code,
        last_error_detail=message.last_error_detail,
        created_at=message.created_at,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        read_at=message.read_at,
        next_attempt_at=message.next_attempt_at,
        attempts=attempts,
    )


def _as_recipient(text: str) -> str | None:
    """The E.164 form of a phone number written with or without its +, else None."""
    candidate = text if text.startswith("+") else "+" + text
    try:
        return normalise_phone(candidate, None)
    except InvalidPhone:
        return None
