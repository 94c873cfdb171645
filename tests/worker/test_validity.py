"""Validity periods end to end: a real worker, the sandbox, and messages past their deadline."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from stickerq.export import export_campaign
from stickerq.models import Campaign, Schedule, utcnow
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.failures import FailureFilters, failure_summary
from stickerq.producer.lifecycle import pause_campaign, resume_campaign
from stickerq.producer.progress import campaign_progress
from stickerq.producer.reports import campaign_report
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.requeue import RequeueRefused, requeue
from stickerq.producer.schedule import schedule_campaign
from stickerq.producer.send import send_campaign
from stickerq.queue import app as celery_app
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.worker.scheduling import dispatch_due_campaigns, run_due_schedules
from tests.conftest import STICKER_ID, wait_until
from tests.helpers import Db

EXPIRED = MessageStatus.EXPIRED


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+91981234{n:04d}" for n in range(start, start + count)]


def statuses(db: Db, campaign_id: int) -> dict[str, str]:
    return {m.recipient: m.status for m in db.messages(campaign_id)}


def completed(db: Db, campaign_id: int) -> bool:
    return db.campaign(campaign_id).status == "completed"


def test_messages_not_sent_by_the_deadline_expire_unsent_and_show_everywhere(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    recipients = numbers(5)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients), valid_for="1s")
    campaign_id = enqueue_campaign(settings, request).campaign_id
    campaign = db.campaign(campaign_id)
    assert campaign.valid_until is not None and campaign.valid_for_seconds == 1
    assert abs((campaign.valid_until - campaign.created_at).total_seconds() - 1) < 0.5
    wait_until(lambda: utcnow() > campaign.valid_until)  # no worker yet: the batch waits

    run_worker(settings)
    wait_until(lambda: completed(db, campaign_id))
    assert set(statuses(db, campaign_id).values()) == {EXPIRED}
    assert sandbox.stats()["requests"] == 0
    assert all(m.attempts == 0 and m.message_id is None for m in db.messages(campaign_id))
    db.assert_counters_exact(campaign_id)

    with db.sessions() as session:
        assert campaign_progress(session, campaign_id).by_status == {EXPIRED: 5}
        assert campaign_report(session, campaign_id).by_status[EXPIRED] == 5
        summary = failure_summary(session, FailureFilters(campaign_id=campaign_id))
        assert [(row.status, row.count) for row in summary] == [(EXPIRED, 5)]
        out = io.StringIO()
        export_campaign(session, campaign_id, out)
    assert {row["status"] for row in csv.DictReader(io.StringIO(out.getvalue()))} == {EXPIRED}
    db.close()


def test_requeue_refuses_expired_messages_without_a_new_deadline_and_sends_them_with_one(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    recipients = numbers(3)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients), valid_for="1h")
    campaign_id = enqueue_campaign(settings, request).campaign_id
    # Its hour is up before any worker ran (moved back rather than waited for).
    with db.sessions.begin() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(valid_until=utcnow() - timedelta(seconds=1))
        )
    run_worker(settings)
    wait_until(lambda: completed(db, campaign_id))
    assert set(statuses(db, campaign_id).values()) == {EXPIRED}

    with pytest.raises(RequeueRefused, match=r"deadline has passed.*--valid-for"):
        requeue(settings, campaign_id, "expired", actor="tester")
    with pytest.raises(RequeueRefused, match="deadline has passed"):
        requeue(settings, campaign_id, "failed", actor="tester")  # would only expire at its claim
    assert set(statuses(db, campaign_id).values()) == {EXPIRED}

    result = requeue(settings, campaign_id, "expired", valid_for="1h", actor="tester")
    assert result.requeued == 3
    wait_until(lambda: completed(db, campaign_id) and db.settled(campaign_id))
    assert set(statuses(db, campaign_id).values()) == {MessageStatus.SENT}
    assert sorted(sandbox.stats()["accepted"]) == recipients
    campaign = db.campaign(campaign_id)
    assert campaign.valid_until is not None and campaign.valid_until > utcnow()
    db.assert_counters_exact(campaign_id)
    db.close()


def test_a_wa500_retry_due_after_the_deadline_expires_one_due_before_it_is_sent(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    late, early = numbers(2)
    sandbox.script({late: ["WA500"] * 5, early: ["WA500", "WA202"]})
    # One quick attempt, then a durable retry 0.2 s later, then one 60 s later.
    settings = settings.model_copy(
        update={"quick_attempts": 1, "retry_delays_seconds": [0.2, 60.0]}
    )
    run_worker(settings)
    db = Db(settings)
    request = CampaignRequest(sticker_id=STICKER_ID, to=f"{late},{early}", valid_for="30s")
    campaign_id = enqueue_campaign(settings, request).campaign_id

    def settled() -> bool:
        celery_app.send_task("stickerq.dispatch_due")  # what beat does every few seconds
        return db.settled(campaign_id)

    wait_until(settled, interval=0.3)
    assert statuses(db, campaign_id) == {late: EXPIRED, early: MessageStatus.SENT}
    expired = db.message(campaign_id, late)
    # Its first retry (0.2 s) was made; the second would have been due after the deadline.
    assert expired.attempts == 2 and expired.last_error_code == "WA500"
    assert expired.next_attempt_at is None
    assert sandbox.stats()["by_code"]["WA500"] == 3
    assert completed(db, campaign_id)
    db.assert_counters_exact(campaign_id)
    db.close()


def test_a_pause_that_outlasts_the_deadline_leaves_the_messages_expired_at_resume(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(4)), valid_for="2s")
    campaign_id = enqueue_campaign(settings, request).campaign_id
    pause_campaign(settings, campaign_id, "waiting for approval", actor="tester")
    run_worker(settings)
    deadline = db.campaign(campaign_id).valid_until
    assert deadline is not None

    def expired_while_paused() -> bool:
        celery_app.send_task("stickerq.dispatch_due")  # the periodic expiry runs with it
        return set(statuses(db, campaign_id).values()) == {EXPIRED}

    wait_until(expired_while_paused, interval=0.3)
    assert utcnow() >= deadline
    assert db.campaign(campaign_id).status == "paused"
    db.assert_counters_exact(campaign_id)

    result = resume_campaign(settings, campaign_id, actor="tester")
    assert (result.status, result.batches) == ("completed", 0)
    assert sandbox.stats()["requests"] == 0
    db.close()


def test_a_scheduled_campaign_counts_its_deadline_from_its_time_not_from_the_enqueue(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    run_worker(settings)
    db = Db(settings)
    at = utcnow() + timedelta(seconds=2)
    recipients = numbers(3)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients), valid_for="1s")
    # Counted from the enqueue, the deadline would pass a second before the campaign's time.
    scheduled = schedule_campaign(settings, request, at=at)
    campaign = db.campaign(scheduled.campaign_id)
    assert campaign.valid_until == campaign.scheduled_at + timedelta(seconds=1)

    def dispatched() -> list[int]:
        return dispatch_due_campaigns(db.sessions, settings.batch_size)  # what beat does

    wait_until(dispatched, timeout=10, interval=0.05)
    wait_until(lambda: completed(db, scheduled.campaign_id))
    assert set(statuses(db, scheduled.campaign_id).values()) == {MessageStatus.SENT}
    assert sorted(sandbox.stats()["accepted"]) == recipients
    db.close()


def test_each_recurring_run_counts_its_deadline_from_its_own_time(settings: Settings) -> None:
    db = Db(settings)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(2)), valid_for="6h")
    _, scheduled = send_campaign(
        settings, request, Timing(every="0 9 * * *", tz="Asia/Kolkata"), sessions=db.sessions
    )
    assert scheduled is not None and scheduled.schedule_id is not None
    template = db.campaign(scheduled.campaign_id)
    assert template.valid_until == template.scheduled_at + timedelta(hours=6)
    run_at = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    with db.sessions.begin() as session:
        session.execute(
            update(Schedule).where(Schedule.id == scheduled.schedule_id).values(next_run_at=run_at)
        )
    [run_id] = run_due_schedules(db.sessions)
    run = db.campaign(run_id)
    assert (run.scheduled_at, run.valid_for_seconds) == (run_at, 6 * 3600)
    assert run.valid_until == run_at + timedelta(hours=6)
    db.close()


@pytest.mark.serial  # the claim must come well before the deadline
def test_a_send_that_waits_past_the_deadline_between_claim_and_request_is_not_made(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    """Claimed before the deadline, but the rate limit holds its request until after it."""
    settings = settings.model_copy(update={"rate_per_second": 3.0, "batch_size": 20})
    run_worker(settings)
    db = Db(settings)
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(6)), valid_for="1s")
    campaign_id = enqueue_campaign(settings, request).campaign_id
    wait_until(lambda: completed(db, campaign_id))
    messages = db.messages(campaign_id)
    sent = [m for m in messages if m.status == MessageStatus.SENT]
    expired = [m for m in messages if m.status == EXPIRED]
    assert len(sent) + len(expired) == 6 and 1 <= len(sent) <= 5
    assert all(m.claimed_at is not None and m.attempts == 0 for m in expired)
    assert sandbox.stats()["requests"] == len(sent)
    db.assert_counters_exact(campaign_id)
    db.close()
