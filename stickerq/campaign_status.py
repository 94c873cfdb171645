"""Every change of a campaign's status: one table of moves, one conditional UPDATE.

A move names the statuses it starts from and the one it ends in. `move_campaigns` changes
only the campaigns that are in a starting status when the UPDATE runs, so two processes that
race for the same move (two beats, a sweeper and a requeue, a pause and the last batch) move
a campaign once, and the caller learns which campaigns it moved.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, update
from sqlalchemy.orm import Session

from stickerq.counts import messages_in
from stickerq.models import Campaign, utcnow
from stickerq.states import UNSETTLED, CampaignStatus
from stickerq.webhook_outbox import Event, EventType, add_events

SCHEDULED, QUEUED, RUNNING = CampaignStatus.SCHEDULED, CampaignStatus.QUEUED, CampaignStatus.RUNNING
PAUSED, COMPLETED, CANCELLED = (
    CampaignStatus.PAUSED,
    CampaignStatus.COMPLETED,
    CampaignStatus.CANCELLED,
)


class Move(StrEnum):
    DUE = "due"  # beat: a scheduled campaign's time has come
    START = "start"  # a worker claimed its first batch
    COMPLETE = "complete"  # every message is settled
    REOPEN = "reopen"  # a completed campaign has pending messages again (requeue)
    PAUSE = "pause"  # an operator, or a worker after a run of WA400s
    RESUME = "resume"  # an operator (also lifts a worker's WA400 pause)
    CANCEL = "cancel"  # an operator


# move -> (the statuses it starts from, the status it ends in)
MOVES: dict[Move, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    Move.DUE: (frozenset({SCHEDULED}), QUEUED),
    Move.START: (frozenset({QUEUED}), RUNNING),
    Move.COMPLETE: (frozenset({RUNNING}), COMPLETED),
    Move.REOPEN: (frozenset({COMPLETED}), RUNNING),
    Move.PAUSE: (frozenset({QUEUED, RUNNING}), PAUSED),
    # RUNNING, or QUEUED again when no batch was ever claimed (see _target)
    Move.RESUME: (frozenset({PAUSED}), RUNNING),
    Move.CANCEL: (frozenset({SCHEDULED, QUEUED, RUNNING, PAUSED}), CANCELLED),
}
# the moves that others learn of through webhooks, written with the move (an outbox)
EVENTS = {Move.COMPLETE: EventType.CAMPAIGN_COMPLETED, Move.PAUSE: EventType.CAMPAIGN_PAUSED}


def starts(move: Move) -> tuple[CampaignStatus, ...]:
    """The statuses `move` starts from, in the states' own order (for messages)."""
    return tuple(status for status in CampaignStatus if status in MOVES[move][0])


def move_campaigns(
    session: Session, move: Move, *where: ColumnElement[bool], **values: Any
) -> list[int]:
    """Move every campaign that matches `where` and is in a starting status; returns their
    ids. `values` sets other columns in the same UPDATE. A move in EVENTS also writes its
    webhook event for each campaign moved, in the same transaction."""
    starting, _ = MOVES[move]
    statement = (
        update(Campaign)
        .where(Campaign.status.in_(sorted(starting)), *where)
        .values(status=_target(move), **values)
        .returning(Campaign.id, Campaign.sid)
    )
    moved = session.execute(statement, execution_options={"synchronize_session": False}).all()
    if move in EVENTS and moved:
        status = MOVES[move][1].value
        reason = values.get("pause_reason")
        events = (
            Event(
                campaign_id,
                sid,
                {"campaign_id": campaign_id, "account": sid, "status": status}
                | ({"reason": reason} if reason is not None else {}),
            )
            for campaign_id, sid in moved
        )
        add_events(session, EVENTS[move], events)
    return [campaign_id for campaign_id, _ in moved]


def move_campaign(
    session: Session, campaign_id: int, move: Move, *where: ColumnElement[bool], **values: Any
) -> bool:
    """The same for one campaign: True if it moved."""
    return bool(move_campaigns(session, move, Campaign.id == campaign_id, *where, **values))


def complete_if_settled(session: Session, campaign_id: int) -> bool:
    """Mark the campaign completed once no message is pending or sending."""
    return move_campaign(
        session,
        campaign_id,
        Move.COMPLETE,
        messages_in(campaign_id, UNSETTLED) == 0,
        finished_at=utcnow(),
    )


def _target(move: Move) -> Any:
    if move is Move.RESUME:
        return case((Campaign.started_at.is_(None), QUEUED.value), else_=RUNNING.value)
    return MOVES[move][1]
