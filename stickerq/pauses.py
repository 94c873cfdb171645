"""Account and sender pauses: durable in the database, mirrored in Redis for a cheap check.

The database is the truth (a flushed Redis forgets nothing that matters): claims read it,
and every claim re-writes the mirror of a pause it found, so a lost mirror heals itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import SQLCoreOperations

from stickerq.keys import account_pause_key, sender_pause_key
from stickerq.models import Campaign, CampaignSender, Pause, utcnow
from stickerq.states import PauseScope
from stickerq.webhook_outbox import Event, EventType, add_event


@dataclass(frozen=True, slots=True)
class PauseRequest:
    """A pause the send path asks for; the batch's writer stores it with the next results."""

    scope: PauseScope
    code: str
    reason: str


def pause_keys(prefix: str, sid: str, sender: str) -> tuple[str, str]:
    """The Redis mirror keys that block a sender: its account's, then its own."""
    return account_pause_key(prefix, sid), sender_pause_key(prefix, sid, sender)


def mirror_key(prefix: str, scope: PauseScope, sid: str, sender: str) -> str:
    account_key, sender_key = pause_keys(prefix, sid, sender)
    return account_key if scope is PauseScope.ACCOUNT else sender_key


def in_force(
    sid: str | SQLCoreOperations[str], sender: str | SQLCoreOperations[str]
) -> ColumnElement[bool]:
    """SQL: the pause rows that hold this sender now, its account's and its own. `sid` and
    `sender` may be values or columns (Campaign.sid, Campaign.sender)."""
    return and_(
        Pause.sid == sid,
        Pause.resumed_at.is_(None),
        or_(Pause.scope == PauseScope.ACCOUNT, Pause.sender == sender),
    )


def account_pauses(session: Session, sid: str) -> list[Pause]:
    """Every pause in force on this account: its own and each of its senders'."""
    return list(session.scalars(select(Pause).where(Pause.sid == sid, Pause.resumed_at.is_(None))))


def campaign_senders(session: Session, campaign: Campaign) -> list[str]:
    """The numbers a campaign's messages go out from: its sender or, with per-row senders,
    each number its rows name (its own sender among them if some rows use it)."""
    if not campaign.senders_per_row:
        return [campaign.sender]
    return list(
        session.scalars(
            select(CampaignSender.sender)
            .where(CampaignSender.campaign_id == campaign.id)
            .order_by(CampaignSender.sender)
        )
    )


def campaign_pauses(session: Session, campaign: Campaign) -> list[Pause]:
    """Every pause holding some of this campaign's messages, oldest first: its account's,
    its sender's and, with per-row senders, each of its numbers'."""
    senders = campaign_senders(session, campaign)
    return list(
        session.scalars(
            select(Pause)
            .where(
                Pause.sid == campaign.sid,
                Pause.resumed_at.is_(None),
                or_(
                    Pause.scope == PauseScope.ACCOUNT,
                    and_(Pause.scope == PauseScope.SENDER, Pause.sender.in_(senders)),
                ),
            )
            .order_by(Pause.id)
        )
    )


def resume_command(scope: str, sid: str, sender: str) -> str:
    """The command that lifts a pause (of `scope` "account" or "sender")."""
    flag = f"--account {sid}" if scope == PauseScope.ACCOUNT else f"--sender {sender}"
    return f"stickerq resume {flag}"


def record_pause(
    session: Session, request: PauseRequest, sid: str, sender: str, campaign_id: int | None
) -> None:
    """Insert the pause unless an equal one is already in force (several batches may ask);
    a pause inserted writes its `pause.started` webhook event."""
    scoped_sender = sender if request.scope is PauseScope.SENDER else ""
    pause = Pause(
        scope=request.scope,
        sid=sid,
        sender=scoped_sender,
        code=request.code,
        reason=request.reason,
        campaign_id=campaign_id,
    )
    try:
        with session.begin_nested():
            session.add(pause)
    except IntegrityError:
        return  # uq_pauses_in_force: another batch recorded it first
    add_event(session, EventType.PAUSE_STARTED, _pause_event(pause, "started"))


def _pause_event(pause: Pause, what: str) -> Event:
    data = {
        "scope": pause.scope,
        "account": pause.sid,
        "sender": pause.sender or None,
        "code": pause.code,
        "reason": pause.reason,
        what: utcnow(),
    }
    return Event(None, pause.sid, data)


def describe_pause(pause: Pause) -> dict[str, str]:
    """A pause as plain data, for --json and tables."""
    return {
        "scope": pause.scope,
        "sid": pause.sid,
        "sender": pause.sender,
        "code": pause.code,
        "since": pause.paused_at.isoformat(),
        "reason": pause.reason,
    }


def list_pauses(session: Session) -> list[Pause]:
    return list(session.scalars(select(Pause).where(Pause.resumed_at.is_(None))))


def resume(session: Session, sid: str, sender: str | None = None) -> int:
    """Lift the account pause (sender=None) or one sender's pause. Returns how many; each
    lifted writes its `pause.lifted` webhook event."""
    condition = (
        (Pause.scope == PauseScope.ACCOUNT)
        if sender is None
        else (Pause.scope == PauseScope.SENDER) & (Pause.sender == sender)
    )
    lifted = list(
        session.scalars(
            update(Pause)
            .where(Pause.sid == sid, Pause.resumed_at.is_(None), condition)
            .values(resumed_at=utcnow())
            .returning(Pause)
        )
    )
    for pause in lifted:
        add_event(session, EventType.PAUSE_LIFTED, _pause_event(pause, "lifted"))
    return len(lifted)


def restore_mirror(
    client: redis.Redis, prefix: str, sid: str, sender: str, pause: Pause | None
) -> None:
    """Set the Redis mirror of a pause the database holds (a lost mirror heals itself).

    Never deletes one: a batch that has just met E110 sets the mirror before its pause
    reaches the database, and a claim running meanwhile must not lift it. Only resuming
    (`stickerq resume`) deletes a mirror.
    """
    if pause is None:
        return
    account_key, sender_key = pause_keys(prefix, sid, sender)
    client.set(account_key if pause.scope == PauseScope.ACCOUNT else sender_key, pause.code)
