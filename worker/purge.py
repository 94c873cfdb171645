"""Retention: a finished campaign's messages and their attempts go once it is old enough, and
idempotency keys after a day; the campaign and its counts stay for ever.

A campaign is due when it is `completed` or `cancelled` and finished longer ago than its
account's `retention_days` (else STICKERQ_RETENTION_DAYS; 0 keeps it for ever). Its purge:

0. with STICKERQ_ARCHIVE_DIR, writes its export there first (`campaign-<id>.csv.gz`, written
   beside and renamed into place): a campaign whose archive cannot be written keeps its rows;
1. marks it (`campaigns.messages_purged_at`) in a transaction of its own, only while it is
   still finished: from then on the counting trigger leaves its counts alone (migration
   0013) and a requeue is refused, so what `status` and `report` show does not change;
2. deletes its messages `batch` at a time, each batch one short transaction (their attempts
   first, by the index on message_pk, then the messages by primary key), so no statement of
   the send path waits long behind it; while a campaign is queued or running, it pauses
   after each batch `sending_pause` times as long as the batch took, so that sending keeps
   the cores (on 2 cores, at full speed, the purge took a quarter to a half of a
   campaign's rate: bench/purge.py).

A run deletes at most `max_batches` batches and leaves the rest to the next; a campaign marked
and not yet emptied is taken up again first. Two runs at once delete the same rows at worst.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import Account
from stickerq.audit import Action, campaign_target, record
from stickerq.counts import send_totals
from stickerq.db import one_of, rows_changed
from stickerq.errors import StickerqError
from stickerq.export import export_campaign
from stickerq.logs import ids
from stickerq.models import Attempt, Campaign, IdempotencyKey, Message, PurgeTotals, utcnow
from stickerq.space import SpaceGiven, return_free_pages
from stickerq.states import CampaignStatus

log = logging.getLogger(__name__)

BATCH = 10_000  # messages per delete transaction
MAX_BATCHES = 100  # per run of beat's purge: a million messages
SENDING_PAUSE = 3.0  # while a campaign sends: pause 3 x a batch's time after it (a quarter)
SENDING = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)
IDEMPOTENCY_KEY_HOURS = 24.0
FINISHED = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Retention:
    """Days a finished campaign's messages are kept: per account, else the default (0: ever)."""

    default_days: float
    per_sid: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, default_days: float, accounts: Iterable[Account]) -> Retention:
        return cls(
            default_days,
            {a.sid: a.retention_days for a in accounts if a.retention_days is not None},
        )

    def past(self, now: datetime) -> ColumnElement[bool]:
        """Campaigns finished longer ago than their account keeps them."""

        def older(days: float) -> ColumnElement[bool]:
            return Campaign.finished_at < now - timedelta(days=days) if days else false()

        own = [and_(Campaign.sid == sid, older(days)) for sid, days in self.per_sid.items()]
        others = and_(Campaign.sid.not_in(list(self.per_sid)), older(self.default_days))
        return or_(*own, others)


class NotPurgeable(StickerqError):
    """A campaign named for a purge that does not exist or has not finished."""


def check_purgeable(sessions: sessionmaker[Session], campaign_ids: Sequence[int]) -> None:
    with sessions() as session:
        found = dict(
            session.execute(
                select(Campaign.id, Campaign.status).where(Campaign.id.in_(campaign_ids))
            ).all()
        )
    for campaign_id in campaign_ids:
        status = found.get(campaign_id)
        if status is None:
            raise NotPurgeable(f"no campaign {campaign_id}; `stickerq campaigns list` shows them")
        if status not in FINISHED:
            raise NotPurgeable(
                f"campaign {campaign_id} is {status}: only a completed or cancelled campaign's "
                f"messages are purged (cancel it first: `stickerq campaigns cancel {campaign_id}`)"
            )


@dataclass(slots=True)
class CampaignPurge:
    campaign_id: int
    finished_at: datetime | None
    messages: int = 0
    attempts: int = 0
    done: bool = False  # no message of it is left
    archive: Path | None = None  # its export, written before its rows went
    error: str | None = None  # why it was left alone (its archive could not be written)


@dataclass(slots=True)
class PurgeReport:
    campaigns: list[CampaignPurge] = field(default_factory=list)
    idempotency_keys: int = 0
    space: SpaceGiven | None = None  # what a SQLite file gave back afterwards

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.campaigns)

    @property
    def attempts(self) -> int:
        return sum(c.attempts for c in self.campaigns)


def due_campaigns(
    session: Session,
    *,
    older_than: ColumnElement[bool],
    campaign_ids: Sequence[int] | None = None,
) -> list[tuple[int, datetime | None, bool]]:
    """(id, finished_at, marked) of the finished campaigns `older_than` holds whose messages
    are not gone yet: those being purged (marked) first, then the oldest."""
    has_messages = exists().where(Message.campaign_id == Campaign.id)
    chosen = [Campaign.id.in_(campaign_ids)] if campaign_ids is not None else []
    rows = session.execute(
        select(Campaign.id, Campaign.finished_at, Campaign.messages_purged_at.is_not(None))
        .where(
            Campaign.status.in_(FINISHED),
            or_(Campaign.messages_purged_at.is_not(None), older_than),
            has_messages,
            *chosen,
        )
        .order_by(Campaign.messages_purged_at.is_(None), Campaign.finished_at, Campaign.id)
    ).all()
    return [(campaign_id, finished_at, bool(marked)) for campaign_id, finished_at, marked in rows]


def purge(
    sessions: sessionmaker[Session],
    older_than: ColumnElement[bool],
    *,
    now: datetime | None = None,
    campaign_ids: Sequence[int] | None = None,
    batch: int = BATCH,
    max_batches: int | None = MAX_BATCHES,
    key_hours: float = IDEMPOTENCY_KEY_HOURS,
    archive_dir: Path | None = None,
    sending_pause: float = SENDING_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
    actor: str | None = None,
) -> PurgeReport:
    """Purge the messages of the finished campaigns `older_than` holds (`Retention.past`), at
    most `max_batches` batches (None: all), then the idempotency keys older than `key_hours`;
    with `archive_dir`, each campaign's export is written there first. While a campaign
    sends, each batch is followed by a pause of `sending_pause` times its duration.

    `actor`: the person of a hand purge (`stickerq purge`), whose marking of each campaign
    is recorded in the audit log; None for beat's retention, which is no one's change."""
    now = now or utcnow()
    report = PurgeReport()
    with sessions() as session:
        due = due_campaigns(session, older_than=older_than, campaign_ids=campaign_ids)
    left = max_batches
    for campaign_id, finished_at, marked in due:
        if left is not None and left <= 0:
            break
        purged = CampaignPurge(campaign_id, finished_at)
        if archive_dir is not None and not marked:
            try:
                purged.archive = write_archive(sessions, campaign_id, archive_dir)
            except OSError as exc:
                purged.error = f"its archive could not be written in {archive_dir}: {exc}"
                report.campaigns.append(purged)
                log.error("campaign %s kept: %s", campaign_id, purged.error, extra=ids(campaign_id))
                continue
        if not _mark(sessions, campaign_id, now, actor):
            continue
        report.campaigns.append(purged)
        while left is None or left > 0:
            started = time.monotonic()
            messages, attempts = _delete_batch(sessions, campaign_id, batch)
            purged.messages += messages
            purged.attempts += attempts
            left = None if left is None else left - 1
            if messages < batch:
                purged.done = True
                break
            if sending_pause and _sending(sessions):
                sleep(sending_pause * (time.monotonic() - started))
        log.info(
            "campaign %s: %s message(s) and %s attempt(s) purged%s",
            campaign_id,
            purged.messages,
            purged.attempts,
            "" if purged.done else "; the rest in the next run",
            extra=ids(campaign_id),
        )
    report.idempotency_keys = _delete_old_keys(sessions, now - timedelta(hours=key_hours))
    if report.messages:
        with sessions() as session:
            engine = session.get_bind()
        if isinstance(engine, Engine):  # SQLite: the file shrinks (stickerq/space.py)
            report.space = return_free_pages(engine)
    return report


def archive_path(archive_dir: Path, campaign_id: int) -> Path:
    return archive_dir / f"campaign-{campaign_id}.csv.gz"


def write_archive(sessions: sessionmaker[Session], campaign_id: int, archive_dir: Path) -> Path:
    """The campaign's export (stickerq/export.py) as gzip CSV in `archive_dir`, written beside
    and renamed into place, so a file there is always whole; raises OSError."""
    target = archive_path(archive_dir, campaign_id)
    partial = target.with_name(f".{target.name}.partial")
    archive_dir.mkdir(parents=True, exist_ok=True)
    try:
        with sessions() as session, gzip.open(partial, "wt", encoding="utf-8", newline="") as out:
            export_campaign(session, campaign_id, out)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _mark(
    sessions: sessionmaker[Session], campaign_id: int, now: datetime, actor: str | None
) -> bool:
    """Mark the campaign as being purged, if it is still finished (a requeue may have reopened
    it); True when it is marked, by this run or an earlier one. Once marked, its messages go
    whoever deletes the batches: the mark is the change the audit log records."""
    with sessions.begin() as session:
        newly = rows_changed(
            session.execute(
                update(Campaign)
                .where(
                    Campaign.id == campaign_id,
                    Campaign.status.in_(FINISHED),
                    Campaign.messages_purged_at.is_(None),
                )
                .values(messages_purged_at=now),
                execution_options={"synchronize_session": False},
            )
        )
        if newly:
            _keep_totals(session, campaign_id)
            if actor is not None:
                record(session, actor, Action.CAMPAIGN_PURGED, campaign_target(campaign_id))
        marked = session.scalar(
            select(Campaign.messages_purged_at.is_not(None)).where(Campaign.id == campaign_id)
        )
    return bool(marked)


def _keep_totals(session: Session, campaign_id: int) -> None:
    """What the report shows beyond the counts, read once while every message is there."""
    totals = send_totals(session, campaign_id)
    session.add(PurgeTotals(campaign_id=campaign_id, **asdict(totals)))


def _delete_batch(sessions: sessionmaker[Session], campaign_id: int, batch: int) -> tuple[int, int]:
    """One transaction: up to `batch` of the campaign's messages and their attempts; returns
    (messages, attempts) deleted."""
    with sessions.begin() as session:
        pks = list(
            session.scalars(
                select(Message.id).where(Message.campaign_id == campaign_id).limit(batch)
            )
        )
        if not pks:
            return 0, 0
        dialect = session.get_bind().dialect.name
        attempts = rows_changed(
            session.execute(
                delete(Attempt).where(one_of(Attempt.message_pk, dialect)),
                {"pks": pks},
                execution_options={"synchronize_session": False},
            )
        )
        messages = rows_changed(
            session.execute(
                delete(Message).where(one_of(Message.id, dialect)),
                {"pks": pks},
                execution_options={"synchronize_session": False},
            )
        )
    return messages, attempts


def _sending(sessions: sessionmaker[Session]) -> bool:
    """Whether a campaign is queued or running (by the index on campaigns.status)."""
    with sessions() as session:
        return bool(session.scalar(select(exists().where(Campaign.status.in_(SENDING)))))


def _delete_old_keys(sessions: sessionmaker[Session], before: datetime) -> int:
    with sessions.begin() as session:
        return rows_changed(
            session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < before),
                execution_options={"synchronize_session": False},
            )
        )


def would_purge(
    sessions: sessionmaker[Session],
    older_than: ColumnElement[bool],
    *,
    now: datetime | None = None,
    campaign_ids: Sequence[int] | None = None,
    key_hours: float = IDEMPOTENCY_KEY_HOURS,
    archive_dir: Path | None = None,
) -> PurgeReport:
    """What `purge` would delete (and archive), deleting nothing (`stickerq purge --dry-run`)."""
    now = now or utcnow()
    report = PurgeReport()
    with sessions() as session:
        due = due_campaigns(session, older_than=older_than, campaign_ids=campaign_ids)
        for campaign_id, finished_at, marked in due:
            of_campaign = Message.campaign_id == campaign_id
            messages = session.scalar(select(func.count()).where(of_campaign)) or 0
            attempts = session.scalar(
                select(func.count()).select_from(Attempt).join(Message).where(of_campaign)
            )
            purged = CampaignPurge(campaign_id, finished_at, messages, attempts or 0, done=True)
            if archive_dir is not None and not marked:
                purged.archive = archive_path(archive_dir, campaign_id)
            report.campaigns.append(purged)
        report.idempotency_keys = (
            session.scalar(
                select(func.count()).where(
                    IdempotencyKey.created_at < now - timedelta(hours=key_hours)
                )
            )
            or 0
        )
    return report
