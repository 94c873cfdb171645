"""Retention (worker/purge.py) on SQLite and PostgreSQL: a finished campaign past its
retention loses its messages and attempts, in bounded batches, and keeps its counts and its
report; younger, unfinished and kept-for-ever campaigns keep everything."""

from __future__ import annotations

import csv
import gzip
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, true
from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import Account
from stickerq.counts import campaign_counts
from stickerq.errors import MessagesPurged
from stickerq.export import COLUMNS, export_rows, unguard_cell
from stickerq.models import Attempt, Campaign, IdempotencyKey, Message, utcnow
from stickerq.producer.failures import MessageNotFound, message_history
from stickerq.producer.reports import campaign_report
from stickerq.queue import PURGE_MESSAGES, app, configure_celery
from stickerq.states import CampaignStatus
from stickerq.worker import runtime, tasks
from stickerq.worker.purge import NotPurgeable, Retention, check_purgeable, purge, would_purge
from tests.conftest import make_settings

SID, OTHER_SID = "HXAP16XXXXXX97IN", "HXAP16XXXXXX98IN"
# status, last_error_code, attempts, sent, delivered, read
MIX = [
    ("read", None, 1, True, True, True),
    ("delivered", None, 1, True, True, False),
    ("sent", None, 2, True, False, False),
    ("failed", "131026", 1, True, False, False),
    ("parked", "E110", 1, False, False, False),
    ("failed", "WA400", 1, False, False, False),
]


def finished_campaign(
    sessions: sessionmaker[Session],
    days_ago: float,
    *,
    copies: int = 5,
    sid: str = SID,
    status: CampaignStatus = CampaignStatus.COMPLETED,
) -> int:
    """A campaign finished `days_ago` with `copies` messages of each kind in MIX."""
    finished = utcnow() - timedelta(days=days_ago)
    with sessions.begin() as session:
        campaign = Campaign(
            name="old", sid=sid, sender="+919000000001", sticker_id="798123456789012",
            status=status, started_at=finished - timedelta(hours=1), finished_at=finished,
        )  # fmt: skip
        session.add(campaign)
        session.flush()
        for n in range(copies):
            for index, (state, code, attempts, sent, delivered, read) in enumerate(MIX):
                message = Message(
                    campaign_id=campaign.id, recipient=f"+9198{campaign.id:03d}{n:03d}{index:02d}",
                    status=state, last_error_code=code, attempts=attempts,
                    message_id=f"M{campaign.id}-{n}-{index}" if sent else None,
                    sent_at=finished - timedelta(minutes=30 - index) if sent else None,
                    delivered_at=finished if delivered else None,
                    read_at=finished if read else None,
                )  # fmt: skip
                session.add(message)
                session.flush()
                session.execute(
                    insert(Attempt),
                    [
                        {
                            "message_pk": message.id,
                            "number": k + 1,
                            "started_at": finished,
                            "action": "sent",
                            "code": code,
                        }
                        for k in range(attempts)
                    ],
                )
        return campaign.id


def rows(sessions: sessionmaker[Session], campaign_id: int) -> tuple[int, int]:
    with sessions() as session:
        messages = session.scalar(select(func.count()).where(Message.campaign_id == campaign_id))
        attempts = session.scalar(
            select(func.count())
            .select_from(Attempt)
            .join(Message)
            .where(Message.campaign_id == campaign_id)
        )
    return messages or 0, attempts or 0


def report_figures(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, object]:
    with sessions() as session:
        report = campaign_report(session, campaign_id)
    return {
        "by_status": report.by_status, "by_code": report.by_code, "recipients": report.recipients,
        "attempts": report.attempts, "sent": report.sent, "delivered": report.delivered,
        "read": report.read, "first": report.first_sent_at, "last": report.last_sent_at,
    }  # fmt: skip


def test_a_campaign_past_its_retention_loses_its_messages_and_keeps_its_report(
    sessions: sessionmaker[Session],
) -> None:
    old = finished_campaign(sessions, days_ago=40)
    young = finished_campaign(sessions, days_ago=10)
    unfinished = finished_campaign(sessions, days_ago=40, status=CampaignStatus.PAUSED)
    before = report_figures(sessions, old)
    with sessions() as session:
        counts_before = campaign_counts(session, old)
    assert before["recipients"] == 30 and before["sent"] == 20 and before["read"] == 5

    dry = would_purge(sessions, Retention(30).past(utcnow()))
    assert [(c.campaign_id, c.messages, c.attempts) for c in dry.campaigns] == [(old, 30, 35)]
    assert rows(sessions, old) == (30, 35)  # a dry run deletes nothing

    report = purge(sessions, Retention(30).past(utcnow()), batch=7)
    assert [(c.campaign_id, c.messages, c.attempts, c.done) for c in report.campaigns] == [
        (old, 30, 35, True)
    ]
    assert rows(sessions, old) == (0, 0)
    assert rows(sessions, young) == (30, 35)
    assert rows(sessions, unfinished) == (30, 35)
    with sessions() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite's file gives its free pages back (stickerq/space.py); PostgreSQL reuses them
    assert (report.space is not None) == sqlite
    if report.space is not None:
        assert "incremental_vacuum" in report.space.action
    with sessions() as session:
        assert campaign_counts(session, old) == counts_before
        purged = session.get(Campaign, old)
        assert purged is not None and purged.messages_purged_at is not None
        assert campaign_report(session, old).messages_purged_at == purged.messages_purged_at
        with pytest.raises(MessagesPurged, match=r"purged on .* an export needs them"):
            export_rows(session, old)
        with pytest.raises(MessagesPurged, match="a breakdown by ref1"):
            campaign_report(session, old, "ref1")
        with pytest.raises(MessageNotFound, match="purged with its campaign"):
            message_history(session, f"+9198{old:03d}00000")
    assert report_figures(sessions, old) == before


def test_a_run_deletes_at_most_its_batches_and_the_next_goes_on(
    sessions: sessionmaker[Session],
) -> None:
    old = finished_campaign(sessions, days_ago=40)
    older = finished_campaign(sessions, days_ago=50)
    first = purge(sessions, Retention(30).past(utcnow()), batch=7, max_batches=3)
    assert [(c.campaign_id, c.messages, c.done) for c in first.campaigns] == [(older, 21, False)]
    assert rows(sessions, older)[0] == 9 and rows(sessions, old)[0] == 30
    # the half-purged campaign first, whatever its age; nothing past the cutoff is needed
    second = purge(sessions, Campaign.id == older, batch=7, max_batches=2)
    assert [(c.campaign_id, c.messages, c.done) for c in second.campaigns] == [(older, 9, True)]
    third = purge(sessions, Retention(30).past(utcnow()), batch=100, max_batches=None)
    assert [(c.campaign_id, c.messages) for c in third.campaigns] == [(old, 30)]
    assert rows(sessions, old) == (0, 0) and rows(sessions, older) == (0, 0)


def test_each_account_keeps_its_own_retention_and_zero_keeps_for_ever(
    sessions: sessionmaker[Session],
) -> None:
    kept_for_ever = finished_campaign(sessions, days_ago=400, sid=OTHER_SID, copies=1)
    short = finished_campaign(sessions, days_ago=6, copies=1)
    accounts = [Account(sid=SID, retention_days=5), Account(sid=OTHER_SID, retention_days=0)]
    retention = Retention.of(30, accounts)
    assert retention.per_sid == {SID: 5, OTHER_SID: 0}
    purge(sessions, retention.past(utcnow()))
    assert rows(sessions, short) == (0, 0)
    assert rows(sessions, kept_for_ever) == (6, 7)
    everything = Retention(0)
    old = finished_campaign(sessions, days_ago=4000, copies=1)
    assert purge(sessions, everything.past(utcnow())).campaigns == []
    assert rows(sessions, old) == (6, 7)


def test_a_reopened_campaign_is_not_purged(sessions: sessionmaker[Session]) -> None:
    """A requeue reopened it (running again) after the purge chose it: the mark, which needs
    it finished, fails, and nothing of it goes."""
    old = finished_campaign(sessions, days_ago=40, copies=1)
    with sessions.begin() as session:
        reopened = session.get(Campaign, old)
        assert reopened is not None
        reopened.status = CampaignStatus.RUNNING
    assert purge(sessions, true(), campaign_ids=[old]).campaigns == []
    assert rows(sessions, old) == (6, 7)
    with pytest.raises(NotPurgeable, match="is running: only a completed or cancelled"):
        check_purgeable(sessions, [old])
    with pytest.raises(NotPurgeable, match="no campaign 999"):
        check_purgeable(sessions, [999])


def test_idempotency_keys_go_after_a_day(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions.begin() as session:
        session.execute(
            insert(IdempotencyKey),
            [
                {"key": "old", "request_sha256": "a" * 64, "created_at": now - timedelta(hours=25)},
                {"key": "new", "request_sha256": "b" * 64, "created_at": now - timedelta(hours=23)},
            ],
        )
    assert purge(sessions, Retention(30).past(now), now=now).idempotency_keys == 1
    with sessions() as session:
        assert list(session.scalars(select(IdempotencyKey.key))) == ["new"]


def test_beat_runs_the_purge_every_minute_with_the_settings_retention(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session]
) -> None:
    settings = make_settings(database_url, redis_prefix, "http://127.0.0.1:9", retention_days=20)
    configure_celery(settings)
    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == PURGE_MESSAGES)
    assert entry["schedule"] == 60.0 and PURGE_MESSAGES in app.tasks
    old = finished_campaign(sessions, days_ago=21, copies=1)
    young = finished_campaign(sessions, days_ago=19, copies=1)
    runtime.configure(settings)
    try:
        tasks.purge_messages()  # the task's body, here
    finally:
        runtime.shutdown()
    assert rows(sessions, old) == (0, 0) and rows(sessions, young) == (6, 7)


def test_when_it_finished_decides_not_when_it_was_made(sessions: sessionmaker[Session]) -> None:
    """A campaign made long ago that finished yesterday (a long schedule) is kept."""
    campaign_id = finished_campaign(sessions, days_ago=1, copies=1)
    with sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.created_at = datetime(2020, 1, 1, tzinfo=campaign.finished_at.tzinfo)  # type: ignore[union-attr]
    assert purge(sessions, Retention(30).past(utcnow())).campaigns == []


def test_with_an_archive_dir_each_campaign_is_exported_before_its_rows_go(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = finished_campaign(sessions, days_ago=40, copies=2)
    with sessions() as session:
        expected = [unguard_cell(row[0]) for row in export_rows(session, old)]
    archive_dir = tmp_path / "archive"
    dry = would_purge(sessions, Retention(30).past(utcnow()), archive_dir=archive_dir)
    assert dry.campaigns[0].archive == archive_dir / f"campaign-{old}.csv.gz"
    assert not archive_dir.exists()

    report = purge(sessions, Retention(30).past(utcnow()), archive_dir=archive_dir)
    [purged] = report.campaigns
    assert purged.archive == archive_dir / f"campaign-{old}.csv.gz" and purged.error is None
    with gzip.open(purged.archive, "rt", encoding="utf-8", newline="") as archived:
        lines = list(csv.reader(archived))
    assert lines[0] == list(COLUMNS)
    assert [unguard_cell(row[0]) for row in lines[1:]] == expected
    assert sorted(p.name for p in archive_dir.iterdir()) == [f"campaign-{old}.csv.gz"]
    assert rows(sessions, old) == (0, 0)


def test_a_campaign_whose_archive_cannot_be_written_keeps_its_rows(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = finished_campaign(sessions, days_ago=40, copies=1)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("in the way", encoding="utf-8")
    report = purge(sessions, Retention(30).past(utcnow()), archive_dir=not_a_folder)
    [kept] = report.campaigns
    assert kept.error is not None and "could not be written" in kept.error
    assert kept.messages == 0 and rows(sessions, old) == (6, 7)
    with sessions() as session:
        campaign = session.get(Campaign, old)
        assert campaign is not None and campaign.messages_purged_at is None


def test_the_purge_yields_to_a_sending_campaign_after_each_batch_and_not_otherwise(
    sessions: sessionmaker[Session],
) -> None:
    """Each batch is followed by a pause of SENDING_PAUSE times its own duration while a
    campaign is queued or running (bench/purge.py measures why), and by none when nothing
    sends. The pauses are recorded, not slept."""
    old = finished_campaign(sessions, days_ago=40, copies=5)  # 30 messages: 3 batches of 10
    pauses: list[float] = []
    purge(sessions, Campaign.id == old, batch=10, sleep=pauses.append)
    assert pauses == []  # nothing sends
    older = finished_campaign(sessions, days_ago=40, copies=5)
    sending = finished_campaign(sessions, days_ago=0, copies=1, status=CampaignStatus.RUNNING)
    purge(sessions, Campaign.id == older, batch=10, sleep=pauses.append, sending_pause=3.0)
    assert len(pauses) == 3 and all(pause > 0 for pause in pauses)  # after each full batch
    assert rows(sessions, older) == (0, 0) and rows(sessions, sending) == (6, 7)
