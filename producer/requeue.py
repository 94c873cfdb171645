"""Requeue: an operator sends parked, failed, unknown or expired messages again
(docs/architecture.md, "Message states").

Each chunk is one conditional UPDATE (`status IN (...)` still holds → `pending`), so two
requeues running at once move each message once, and a second requeue finds nothing. The
moved ids are then dispatched; a duplicate task is harmless because only a claim sends.
Attempt history stays: the attempt count and numbering go on from where they were, and a
sent message's WA202 attempt, kept on its row, gets a row of its own before it goes again.

Messages past their campaign's deadline (`expired`, or any once the deadline has passed)
go again only with a new deadline (`valid_for` from now, or `valid_until`), stored on the
campaign before any message moves, so no claim expires them again at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, campaign_target, record
from stickerq.campaign_status import Move, move_campaign
from stickerq.db import open_sessions
from stickerq.errors import CampaignNotFound, StickerqError
from stickerq.message_status import MessageMove, move_messages
from stickerq.models import Campaign, Message, Pause, utcnow
from stickerq.pauses import campaign_pauses, describe_pause, resume_command
from stickerq.producer.failures import parse_status
from stickerq.producer.operations import resume_sending
from stickerq.producer.queue import check_broker, dispatch_campaign, dispatch_ids
from stickerq.producer.validity import Validity, read_validity
from stickerq.sending_attempts import write_out as write_out_sending_attempts
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus, PauseScope

CHUNK = 1000  # messages per conditional UPDATE (and per short transaction)


class RequeueRefused(StickerqError):
    """The messages would only fail again (a pause in force), expire again (past the
    deadline) or can never go (cancelled)."""


@dataclass(frozen=True, slots=True)
class RequeueResult:
    campaign_id: int
    status: str
    code: str | None
    dry_run: bool
    requeued: int  # moved back to pending (or, in a dry run, that would be)
    batches: int = 0  # send_batch tasks published for them
    pauses_lifted: int = 0
    # Pauses that were in force: a dry run reports them, a requeue with resume lifted them.
    pauses: list[dict[str, str]] = field(default_factory=list)
    campaign_status: str = ""


def requeue(
    settings: Settings,
    campaign_id: int,
    status: str,
    code: str | None = None,
    dry_run: bool = False,
    resume: bool = False,
    sessions: sessionmaker[Session] | None = None,
    *,
    actor: str,
    valid_for: str | timedelta | None = None,
    valid_until: str | datetime | None = None,
) -> RequeueResult:
    """Move the campaign's `status` messages (with `code`, if given) back to `pending` and
    dispatch them. Refuses while the campaign's account or sender is paused, unless `resume`
    lifts the pause first, and past the campaign's deadline (or for `expired` messages)
    unless given a new one. A dry run only counts. `sessions` reuses the caller's factory.
    `actor` is who asks: each committed chunk, new deadline and lifted pause is recorded in
    the audit log under that name, in its own transaction."""
    wanted = parse_status(status)
    validity = read_validity(valid_for, valid_until)
    with open_sessions(settings.database_url, sessions) as factory:
        return _requeue(
            settings, factory, campaign_id, wanted, code, dry_run, resume, validity, actor
        )


def _requeue(
    settings: Settings,
    sessions: sessionmaker[Session],
    campaign_id: int,
    wanted: MessageStatus,
    code: str | None,
    dry_run: bool,
    resume: bool,
    validity: Validity,
    actor: str,
) -> RequeueResult:
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignNotFound(
                f"no campaign {campaign_id}; `stickerq failures` shows each failure's campaign"
            )
        campaign_status = campaign.status
        deadline = campaign.valid_until
        pauses = campaign_pauses(session, campaign)
        matching = session.scalar(
            select(func.count()).where(*_selection(campaign_id, wanted, code))
        )
    if campaign_status == CampaignStatus.CANCELLED:
        raise RequeueRefused(f"campaign {campaign_id} was cancelled: its messages cannot go out")
    if campaign.messages_purged_at is not None:
        raise RequeueRefused(purged_refusal(campaign_id, campaign.messages_purged_at))
    _check_deadline(campaign_id, wanted, deadline, validity)
    described = [describe_pause(pause) for pause in pauses]
    if dry_run:
        return RequeueResult(
            campaign_id, wanted, code, True, matching or 0, pauses=described,
            campaign_status=campaign_status,
        )  # fmt: skip
    if pauses and not resume:
        raise RequeueRefused(_refusal(campaign_id, pauses))
    check_broker(settings)
    lifted = 0
    for pause in pauses:
        scoped_sender = pause.sender if pause.scope == PauseScope.SENDER else None
        # a sender's pause by its number alone: resume_sending takes one of the two
        account = None if scoped_sender else pause.sid
        lifted += resume_sending(settings, actor=actor, account=account, sender=scoped_sender)[0]
    if validity.limited:
        with sessions.begin() as session:
            new_deadline = validity.deadline(utcnow())
            session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(valid_until=new_deadline)
            )
            target = campaign_target(campaign_id)
            record(session, actor, Action.CAMPAIGN_DEADLINE_SET, target, valid_until=new_deadline)
    moved, batches = 0, 0
    for ids in _requeue_chunks(sessions, campaign_id, wanted, code, actor):
        moved += len(ids)
        # A paused campaign keeps its pending messages until it is resumed.
        if campaign_status != CampaignStatus.PAUSED:
            batches += dispatch_ids(settings, campaign_id, ids)
    batches += _reopen_if_completed_early(settings, sessions, campaign_id)
    with sessions() as session:
        final_status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return RequeueResult(
        campaign_id, wanted, code, False, moved, batches, lifted, described, final_status or ""
    )


def _check_deadline(
    campaign_id: int, wanted: MessageStatus, deadline: datetime | None, validity: Validity
) -> None:
    """Expired messages, or any past the deadline, would only expire again at their claim."""
    if validity.limited:
        return
    past = deadline is not None and deadline <= utcnow()
    if wanted == MessageStatus.EXPIRED or past:
        when = f" (it was {deadline:%Y-%m-%d %H:%M:%S} UTC)" if deadline else ""
        raise RequeueRefused(
            f"campaign {campaign_id}'s deadline has passed{when}: requeued messages would only "
            "expire again. Give a new deadline: --valid-for 2h (from now) or --valid-until "
            "2026-12-01T18:00+05:30"
        )


def _selection(
    campaign_id: int, status: MessageStatus, code: str | None
) -> list[ColumnElement[bool]]:
    conditions = [Message.campaign_id == campaign_id, Message.status == status]
    if code is not None:
        conditions.append(Message.last_error_code == code)
    return conditions


def _requeue_chunks(
    sessions: sessionmaker[Session],
    campaign_id: int,
    status: MessageStatus,
    code: str | None,
    actor: str,
) -> Iterator[list[int]]:
    """Move the chosen messages to `pending`, one short transaction per chunk; yield the ids
    each committed chunk moved (memory stays flat however many there are). Each chunk has
    its audit entry in its own transaction: a chunk rolled back leaves none."""
    after = 0
    conditions = _selection(campaign_id, status, code)
    while True:
        with sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(Message.id)
                    .where(*conditions, Message.id > after)
                    .order_by(Message.id)
                    .limit(CHUNK)
                )
            )
            if not ids:
                return
            after = ids[-1]
            # The status condition is repeated: a message changed since the SELECT stays put.
            taken = session.scalars(
                move_messages(
                    MessageMove.REQUEUE,
                    Message.id.in_(ids),
                    *conditions,
                    starts={status},
                    delayed_retries=0,
                    next_attempt_at=None,
                    claimed_at=None,
                    claim_token=None,
                ).returning(Message.id)
            ).all()
            if taken:
                # Sending again overwrites what holds a sent message's WA202 attempt: written
                # out for the messages this chunk moved (and holds), so only once.
                write_out_sending_attempts(session, Message.id.in_(taken))
                _reopen(session, campaign_id)
                _check_not_purged(session, campaign_id)
                params = {"status": str(status), "code": code, "requeued": len(taken)}
                record(
                    session, actor, Action.CAMPAIGN_REQUEUED, campaign_target(campaign_id), **params
                )
        if taken:
            yield sorted(taken)


def purged_refusal(campaign_id: int, purged_at: datetime) -> str:
    return (
        f"campaign {campaign_id}'s messages were purged on {purged_at:%Y-%m-%d} (retention: "
        "STICKERQ_RETENTION_DAYS, or the account's retention_days): there is nothing to "
        "requeue. Its counts remain in `stickerq report`; send a new campaign instead"
    )


def _check_not_purged(session: Session, campaign_id: int) -> None:
    """After the chunk's messages moved (messages before the campaign row: the claims' lock
    order): a purge that marked the campaign first wins, and this chunk rolls back; one that
    comes after finds the campaign running and leaves it (worker/purge.py)."""
    purged_at = session.scalar(
        select(Campaign.messages_purged_at).where(Campaign.id == campaign_id).with_for_update()
    )
    if purged_at is not None:
        raise RequeueRefused(purged_refusal(campaign_id, purged_at))


def _reopen(session: Session, campaign_id: int) -> None:
    """A completed campaign runs again, and completes again once its messages settle."""
    move_campaign(session, campaign_id, Move.REOPEN, finished_at=None)


def _reopen_if_completed_early(
    settings: Settings, sessions: sessionmaker[Session], campaign_id: int
) -> int:
    """A batch that finished while we requeued may have read the campaign as settled
    (its snapshot predates our commit) and completed it; reopen it and dispatch again."""
    pending = exists().where(
        Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING
    )
    with sessions.begin() as session:
        reopened = move_campaign(session, campaign_id, Move.REOPEN, pending, finished_at=None)
    return dispatch_campaign(settings, sessions, campaign_id) if reopened else 0


def _refusal(campaign_id: int, pauses: Sequence[Pause]) -> str:
    held = "; ".join(
        f"{_scope_name(pause)} paused after {pause.code} since "
        f"{pause.paused_at:%Y-%m-%d %H:%M:%S} UTC ({pause.reason})"
        for pause in pauses
    )
    lift = " and ".join(
        f"`{resume_command(pause.scope, pause.sid, pause.sender)}`" for pause in pauses
    )
    return (
        f"campaign {campaign_id} cannot be requeued while a pause is in force: {held}. "
        "Requeued messages would only wait behind it. Fix the cause (top up the balance, "
        "register the sender...), then pass --resume to lift the pause and requeue in one "
        f"step, or lift it first with {lift}."
    )


def _scope_name(pause: Pause) -> str:
    return f"account {pause.sid}" if pause.scope == PauseScope.ACCOUNT else f"sender {pause.sender}"
