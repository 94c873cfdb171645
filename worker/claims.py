"""Claiming messages and writing their results: short transactions, bulk statements.

A message leaves `pending` only through `claim`: one conditional UPDATE that moves it to
`sending` where it is still `pending`. Celery delivers at least once (acks_late), so the same
batch may run twice; the second run claims nothing and sends nothing.

Each statement here first locks its rows by primary key alone (`_locked`), then tests
their status, claim and campaign on what it locked. A condition on `messages.status` itself
would let the planner walk an index that holds status (with no statistics yet after a bulk
COPY, or stale ones that have never seen this campaign, or a generic plan, it does): a claim
of 200 messages would read the campaign's million (tests/worker/test_plans.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from stickerq.campaign_status import Move, move_campaign
from stickerq.models import RETRY_DUE, Attempt, Campaign, Message, utcnow
from stickerq.states import CampaignStatus, MessageStatus

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
    batch = _locked(Message.id.in_(message_pks))
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


EXPIRED_DETAIL = "not sent before its campaign's deadline (valid_until)"


def expire_late(session: Session, campaign_id: int, message_pks: Sequence[int]) -> int:
    """Past the campaign's deadline: the batch's still-pending messages (due or waiting for a
    retry) become `expired`, never sent. One UPDATE by primary key, like the claim."""
    batch = _locked(Message.id.in_(message_pks))
    expired = session.execute(
        update(Message)
        .where(
            Message.id == batch.c.id,
            batch.c.campaign_id == campaign_id,
            batch.c.status == MessageStatus.PENDING,
        )
        .values(
            status=MessageStatus.EXPIRED, next_attempt_at=None, last_error_detail=EXPIRED_DETAIL
        )
        .returning(Message.id),
        execution_options={"synchronize_session": False},
    ).all()
    if expired:
        started_by_expiry(session, campaign_id)
    return len(expired)


def started_by_expiry(session: Session, campaign_id: int) -> None:
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


def release(session: Session, campaign_id: int, token: str, message_pks: Sequence[int]) -> None:
    """Claimed but never sent (a pause stopped the batch): back to `pending`, or to
    `cancelled` when the campaign was cancelled meanwhile."""
    if not message_pks:
        return
    cancelled = session.scalar(
        select(Campaign.status == CampaignStatus.CANCELLED).where(Campaign.id == campaign_id)
    )
    batch = _locked(Message.id.in_(message_pks))
    session.execute(
        update(Message)
        # The worker knows these never left, even if a sweeper had to guess `unknown`.
        .where(Message.id == batch.c.id, _still_claimed(batch, token))
        .values(
            status=MessageStatus.CANCELLED if cancelled else MessageStatus.PENDING,
            claimed_at=None,
            claim_token=None,
        ),
        execution_options={"synchronize_session": False},
    )


def _locked(rows: ColumnElement[bool]) -> CTE:
    """The rows chosen by a primary-key condition, locked (FOR UPDATE: a concurrent claim
    waits, then sees what this one wrote), with the columns the statements test."""
    return (
        select(
            Message.id,
            Message.campaign_id,
            Message.status,
            Message.next_attempt_at,
            Message.claim_token,
            Message.sender,
        )
        .where(rows)
        .with_for_update()
        .cte("locked")
        .prefix_with("MATERIALIZED")
    )


def _still_claimed(locked: CTE, token: str | BindParameter[str]) -> ColumnElement[bool]:
    """Still under this claim. A sweeper that took the claim for dead may have made its
    messages `unknown`; the worker's own word (a result, or "never sent") still wins."""
    return and_(
        locked.c.claim_token == token,
        # OR of equalities, not IN: an expanding IN cannot go with executemany.
        or_(locked.c.status == MessageStatus.SENDING, locked.c.status == MessageStatus.UNKNOWN),
    )


_table = cast(Table, Message.__table__)
# Each result's parameter, the message column it sets, and its type in an array.
_RESULT_COLUMNS: dict[str, tuple[str, TypeEngine[Any]]] = {
    "pk": ("id", BigInteger()),
    "status": ("status", String()),
    "total_attempts": ("attempts", Integer()),
    "delayed_retries": ("delayed_retries", Integer()),
    "message_id": ("message_id", String()),
    "code": ("last_error_code", String()),
    "http_status": ("last_http_status", Integer()),
    "detail": ("last_error_detail", String()),
    "next_attempt_at": ("next_attempt_at", DateTime(timezone=True)),
    "last_attempt_at": ("last_attempt_at", DateTime(timezone=True)),
    "sent_at": ("sent_at", DateTime(timezone=True)),
}
_SET_BY_RESULT = [name for name in _RESULT_COLUMNS if name != "pk"]


def _write_statement(
    rows: ColumnElement[bool], pk: ColumnElement[int], values: dict[str, Any]
) -> Update:
    ours = _locked(rows)
    return (
        update(_table)
        .where(_table.c.id == ours.c.id, ours.c.id == pk, _still_claimed(ours, bindparam("token")))
        .values(values)
    )


# SQLite: one UPDATE per result, executemany (it has no arrays; it writes in-process anyway).
_write_result = _write_statement(
    _table.c.id == bindparam("pk"),
    bindparam("pk"),
    {_RESULT_COLUMNS[name][0]: bindparam(name) for name in _SET_BY_RESULT},
)

# PostgreSQL: one UPDATE ... FROM unnest(arrays) for the whole flush, so the counting trigger
# (once per statement) runs once per flush.
_pks = bindparam("pk", type_=ARRAY(BigInteger()))
_results = (
    func.unnest(
        _pks,
        *(bindparam(name, type_=ARRAY(_RESULT_COLUMNS[name][1])) for name in _SET_BY_RESULT),
    )
    .table_valued(*_RESULT_COLUMNS)
    .render_derived(name="result")
)
_write_results_pg = _write_statement(
    _table.c.id == any_(_pks),
    _results.c.pk,
    {_RESULT_COLUMNS[name][0]: _results.c[name] for name in _SET_BY_RESULT},
)


def write_results(session: Session, token: str, results: Sequence[MessageResult]) -> None:
    """All of a batch's outcomes and attempts in two statements."""
    if not results:
        return
    rows = [_result_params(r) for r in results]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        arrays = {name: [row[name] for row in rows] for name in _RESULT_COLUMNS}
        connection.execute(_write_results_pg, {**arrays, "token": token})
    else:
        connection.execute(_write_result, [{**row, "token": token} for row in rows])
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


def take_due_retries(session: Session) -> list[tuple[int, int]]:
    """Pending messages whose retry time has come: (campaign_id, message pk), made undelayed.

    The conditional UPDATE hands each due message to one dispatcher even with two beats.
    """
    now = utcnow()
    rows = session.execute(
        update(Message)
        # The partial index's own predicate, as text: a bound 'pending' would not prove it
        # in a generic plan, and the statement would read the whole table.
        .where(text(RETRY_DUE), Message.next_attempt_at <= now)
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


def _leaving_statement(rows: ColumnElement[bool]) -> Update:
    batch = _locked(rows)
    return (
        update(_table)
        .where(
            _table.c.id == batch.c.id,
            batch.c.claim_token == bindparam("token"),
            batch.c.status == MessageStatus.SENDING,
        )
        .values(leaving_claim_token=bindparam("token"))
        .returning(_table.c.id)
    )


# One text for any number of messages on PostgreSQL (an array), so psycopg prepares it once.
RECORD_LEAVING_PG = _leaving_statement(
    _table.c.id == any_(bindparam("pks", type_=ARRAY(BigInteger())))
)
_record_leaving = _leaving_statement(_table.c.id.in_(bindparam("pks", expanding=True)))


def record_leaving(connection: Connection, token: str, message_pks: Sequence[int]) -> set[int]:
    """Before their first request under this claim leaves: the database's evidence that these
    messages may have left. Returns the ones still ours to send; a sweeper that took the claim
    for dead has already settled the others, which must not be sent (the row lock orders the
    two: whichever writes first, the other sees it). On a Connection, not a Session: it runs
    hundreds of times a second, and the ORM's session would cost more than the statement."""
    statement = RECORD_LEAVING_PG if connection.dialect.name == "postgresql" else _record_leaving
    rows = connection.execute(statement, {"pks": list(message_pks), "token": token})
    return set(rows.scalars())
