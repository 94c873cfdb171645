"""Beat's side of scheduling: dispatch campaigns whose time has come, start recurring runs.

Both steps are one conditional UPDATE each, so two beats at once (or a beat restarted in the
middle) never dispatch a campaign twice nor create the same run twice. Nothing waits in
Redis with a far-future ETA: the time lives in the database and beat asks every
`dispatch_interval_seconds` what is due.

Recurring runs copy the template campaign's recipients (the audience is frozen when the
schedule is made; see producer/schedule.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import Move, move_campaigns
from stickerq.counts import campaign_counts
from stickerq.cron import next_run
from stickerq.db import rows_changed
from stickerq.logs import ids
from stickerq.models import Campaign, CampaignSender, Message, Schedule, utcnow
from stickerq.queue import dispatch_messages
from stickerq.states import CampaignStatus, MessageStatus

log = logging.getLogger(__name__)

# Copied from the template campaign into each run (everything that says what to send).
RUN_FIELDS = (
    "name",
    "sid",
    "sender",
    "sticker_id",
    "sticker_link",
    "wa_source",
    "ref",
    "ref1",
    "ref2",
    "senders_per_row",
    "in_window",
)


def dispatch_due_campaigns(sessions: sessionmaker[Session], batch_size: int) -> list[int]:
    """Move due `scheduled` campaigns to `queued` and publish their messages; returns their ids.

    The UPDATE is the claim: on PostgreSQL a second beat waits for the first one's row locks
    and then finds the rows no longer `scheduled`; SQLite serialises writers (BEGIN IMMEDIATE).
    It commits before publishing, so a worker never sees a batch of a still-scheduled campaign.
    """
    with sessions.begin() as session:
        due = move_campaigns(session, Move.DUE, Campaign.scheduled_at <= utcnow())
    for campaign_id in sorted(due):
        with sessions() as session:
            batches = dispatch_messages(campaign_id, _pending_ids(session, campaign_id), batch_size)
        log.info(
            "scheduled campaign %s dispatched: %s batches",
            campaign_id,
            batches,
            extra=ids(campaign_id),
        )
    return sorted(due)


def _pending_ids(session: Session, campaign_id: int) -> Iterator[int]:
    yield from session.scalars(
        select(Message.id)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING)
        .order_by(Message.id)
        .execution_options(yield_per=10_000)
    )


def run_due_schedules(sessions: sessionmaker[Session]) -> list[int]:
    """Create the campaign of every recurring run whose time has come; returns their ids.

    Each run is `scheduled` at its own time, so dispatch_due_campaigns sends it. Runs missed
    while no beat ran are not caught up one by one: the latest missed one goes, then the
    schedule moves on to its next time after now.
    """
    now = utcnow()
    with sessions() as session:
        due = session.execute(
            select(Schedule.id, Schedule.next_run_at).where(
                Schedule.active.is_(True), Schedule.next_run_at <= now
            )
        ).all()
    created = []
    for schedule_id, run_at in due:
        if run_at is None:  # not due (the query's condition excludes it)
            continue
        with sessions.begin() as session:
            campaign_id = _start_run(session, schedule_id, run_at, now)
        if campaign_id is not None:
            created.append(campaign_id)
    return created


def _start_run(session: Session, schedule_id: int, run_at: datetime, now: datetime) -> int | None:
    """Advance the schedule past `run_at` and create that run, in the caller's transaction.

    The UPDATE only matches while next_run_at is still the value read: of two beats, one wins
    and the other updates nothing, so it creates nothing.
    """
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        return None
    zone = ZoneInfo(schedule.timezone)
    latest = run_at
    following = next_run(schedule.cron, zone, run_at)
    while following <= now:  # skip the runs missed while no beat ran, keep the latest
        latest, following = following, next_run(schedule.cron, zone, following)
    won = rows_changed(
        session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule_id,
                Schedule.active.is_(True),
                Schedule.next_run_at == run_at,
            )
            .values(next_run_at=following, last_run_at=latest),
            execution_options={"synchronize_session": False},
        )
    )
    if not won:
        return None
    template_id = schedule.template_campaign_id
    template = session.get(Campaign, template_id) if template_id is not None else None
    if template is None:
        log.warning("schedule %s: template campaign is gone; schedule stopped", schedule_id)
        session.execute(update(Schedule).where(Schedule.id == schedule_id).values(active=False))
        return None
    return _copy_campaign(session, template, schedule, latest)


def _copy_campaign(session: Session, template: Campaign, schedule: Schedule, at: datetime) -> int:
    """A new `scheduled` campaign with the template's content and recipients (one INSERT SELECT)."""
    run = Campaign(
        **{field: getattr(template, field) for field in RUN_FIELDS},
        status=CampaignStatus.SCHEDULED,
        scheduled_at=at,
        timezone=schedule.timezone,
        schedule_id=schedule.id,
        # Each run's deadline counts from its own time (producer/validity.py).
        valid_for_seconds=template.valid_for_seconds,
        valid_until=None
        if template.valid_for_seconds is None
        else at + timedelta(seconds=template.valid_for_seconds),
    )
    session.add(run)
    session.flush()
    source = select(
        literal(run.id),
        Message.recipient,
        Message.ref,
        Message.ref1,
        Message.ref2,
        Message.sender,
        literal(MessageStatus.PENDING.value),
        literal(0),
        literal(0),
        literal(utcnow(), Message.created_at.type),
    ).where(Message.campaign_id == template.id)
    columns = ["campaign_id", "recipient", "ref", "ref1", "ref2", "sender", "status", "attempts"]
    columns += ["delayed_retries", "created_at"]
    session.execute(insert(Message).from_select(columns, source))
    session.execute(
        insert(CampaignSender).from_select(
            ["campaign_id", "sender"],
            select(literal(run.id), CampaignSender.sender).where(
                CampaignSender.campaign_id == template.id
            ),
        )
    )
    # Counted: SQLAlchemy gives rowcount -1 for this INSERT ... SELECT on PostgreSQL.
    copied = campaign_counts(session, run.id).messages
    run.recipient_count = copied
    log.info(
        "schedule %s: run campaign %s at %s, %s recipients",
        schedule.id,
        run.id,
        at,
        copied,
        extra=ids(run.id),
    )
    return run.id
