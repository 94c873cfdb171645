"""WA500 retries (quick, then durable), E110 pauses, and redelivery of the same batch."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from stickerq.models import utcnow
from stickerq.pauses import pause_keys
from stickerq.producer.api import dispatch_campaign, enqueue_campaign
from stickerq.producer.lifecycle import cancel_campaign
from stickerq.producer.operations import resume_sending
from stickerq.producer.request import CampaignRequest
from stickerq.queue import app as celery_app
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.worker import runtime
from stickerq.worker.claims import claim
from stickerq.worker.results import MessageResult, write_results
from tests.conftest import STICKER_ID, wait_until
from tests.helpers import Db
from tests.worker.one_batch import process_batch

RECIPIENT = "+919812345678"


def numbers(count: int) -> list[str]:
    return [f"+91981234{n:04d}" for n in range(count)]


def test_wa500_then_accepted_is_sent_with_every_attempt_recorded(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    sandbox.script({RECIPIENT: ["WA500", "WA500", "WA202"]})
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=RECIPIENT)
    ).campaign_id
    wait_until(lambda: db.settled(campaign_id))
    message = db.message(campaign_id, RECIPIENT)
    assert message.status == MessageStatus.SENT
    assert [(a.number, a.code, a.action) for a in db.attempts(message.id)] == [
        (1, "WA500", "retry"),
        (2, "WA500", "retry"),
        (3, "WA202", "sent"),
    ]
    db.close()


def test_wa500_exhausted_after_quick_and_delayed_retries_fails(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    settings = settings.model_copy(update={"quick_attempts": 2})  # then 2 delayed (0.2 s each)
    sandbox.script({RECIPIENT: ["WA500"] * 10})
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=RECIPIENT)
    ).campaign_id

    def failed() -> bool:
        celery_app.send_task("stickerq.dispatch_due")  # what beat does every few seconds
        return db.message(campaign_id, RECIPIENT).status == MessageStatus.FAILED

    wait_until(failed, interval=0.3)
    message = db.message(campaign_id, RECIPIENT)
    assert message.attempts == 4
    assert message.last_error_code == "WA500"
    assert "exhausted" in (message.last_error_detail or "")
    assert [a.code for a in db.attempts(message.id)] == ["WA500"] * 4
    assert sandbox.stats()["by_code"]["WA500"] == 4
    assert db.campaign(campaign_id).status == "completed"
    db.close()


def test_e110_parks_pauses_account_and_nothing_more_is_sent_until_resumed(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    settings = settings.model_copy(update={"in_flight": 1, "batch_size": 10})
    sandbox.configure(balance=15)
    run_worker(settings)  # two threads: at most 2 requests in flight
    db = Db(settings)
    recipients = numbers(60)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    ).campaign_id

    wait_until(lambda: db.active_pauses() and not _sending(db, campaign_id))
    [pause] = db.active_pauses()
    assert (pause.scope, pause.code) == ("account", "E110")
    stats = sandbox.stats()
    assert stats["accepted_total"] == 15
    assert 1 <= stats["by_code"]["E110"] <= 2  # only what was already in flight
    parked = [m for m in db.messages(campaign_id) if m.status == MessageStatus.PARKED]
    assert len(parked) == stats["by_code"]["E110"]

    # Dispatching again while paused sends nothing.
    dispatch_campaign(settings, db.sessions, campaign_id)
    requests_while_paused = stats["requests"]
    wait_until(lambda: _no_new_requests(sandbox, requests_while_paused), timeout=5)

    sandbox.configure(balance=None)
    resume_sending(settings, account=settings.kaleyra_sid, actor="tester")
    wait_until(lambda: not _unsettled(db, campaign_id))
    counts = sandbox.stats()["accepted"]
    assert all(count == 1 for count in counts.values())
    sent = {m.recipient for m in db.messages(campaign_id) if m.status == MessageStatus.SENT}
    assert sent == set(counts)
    assert len(sent) + len(parked) == 60
    db.close()


def _sending(db: Db, campaign_id: int) -> bool:
    return any(m.status == MessageStatus.SENDING for m in db.messages(campaign_id))


def _unsettled(db: Db, campaign_id: int) -> bool:
    return any(m.status in ("pending", "sending") for m in db.messages(campaign_id))


def _no_new_requests(sandbox: SandboxServer, before: int) -> bool:
    time.sleep(1.0)
    return sandbox.stats()["requests"] == before


def test_redelivered_batches_send_nothing_twice(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    recipients = numbers(120)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    ).campaign_id
    dispatch_campaign(settings, db.sessions, campaign_id)  # every batch published twice
    run_worker(settings)
    wait_until(lambda: db.settled(campaign_id))
    ids = [m.id for m in db.messages(campaign_id)]
    outcome = process_batch(runtime.current_runtime(), campaign_id, ids)  # and a third time
    assert not outcome.results and not outcome.unsent
    client = redis.Redis.from_url(settings.redis_url)
    # every claim's record is gone once its results are written (by the batches' finishers)
    wait_until(lambda: client.keys(f"{settings.redis_prefix}claim:*") == [], timeout=10)
    counts = sandbox.stats()["accepted"]
    assert sorted(counts) == sorted(recipients)
    assert set(counts.values()) == {1}
    assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.SENT}
    db.assert_counters_exact(campaign_id)
    db.close()


def test_a_run_of_wa400s_auto_pauses_the_campaign_with_the_reason(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    settings = settings.model_copy(
        update={"wa400_pause_threshold": 5, "in_flight": 1, "batch_size": 4}
    )
    recipients = numbers(30)
    sandbox.script({number: ["WA400"] for number in recipients})  # a bad media id, say
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    ).campaign_id

    wait_until(lambda: db.campaign(campaign_id).status == "paused")
    wait_until(lambda: not _sending(db, campaign_id))
    campaign = db.campaign(campaign_id)
    assert "WA400" in (campaign.pause_reason or "")
    failed = [m for m in db.messages(campaign_id) if m.status == MessageStatus.FAILED]
    pending = [m for m in db.messages(campaign_id) if m.status == MessageStatus.PENDING]
    assert 5 <= len(failed) <= 5 + 2 * 4  # the batches already running may finish theirs
    assert len(failed) + len(pending) == 30
    db.close()


def test_a_claim_never_lifts_a_pause_mirror_the_database_does_not_hold_yet(
    settings: Settings, sandbox: SandboxServer
) -> None:
    """A batch that meets E110 sets the mirror before its pause reaches the database; a batch
    claimed meanwhile must leave it (deleting it let sends leak past the pause)."""
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(5)))
    ).campaign_id
    client = redis.Redis.from_url(settings.redis_url)
    account_key, _ = pause_keys(settings.redis_prefix, settings.kaleyra_sid, "")
    client.set(account_key, "E110")
    runtime.configure(settings)
    try:
        ids = [m.id for m in db.messages(campaign_id)]
        outcome = process_batch(runtime.current_runtime(), campaign_id, ids)
    finally:
        runtime.shutdown()
    assert client.get(account_key) == b"E110"
    assert sandbox.stats()["requests"] == 0
    assert not outcome.results and sorted(outcome.unsent) == sorted(ids)
    assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.PENDING}
    db.close()


def test_a_parked_message_is_never_committed_without_its_pause(
    settings: Settings, sandbox: SandboxServer
) -> None:
    """Whoever sees the WA401 message parked must see its sender paused too: writing the two
    in separate transactions let a reader (a report, a claim) find the park and no pause."""
    settings = settings.model_copy(update={"sender": "+919000000077"})  # not on the account
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(3)))
    ).campaign_id
    after_each_commit: list[tuple[int, int]] = []

    def look(_: Session) -> None:
        parked = [m for m in db.messages(campaign_id) if m.status == MessageStatus.PARKED]
        after_each_commit.append((len(parked), len(db.active_pauses())))

    runtime.configure(settings)
    try:
        worker_runtime = runtime.current_runtime()
        event.listen(worker_runtime.sessions, "after_commit", look)
        ids = [m.id for m in db.messages(campaign_id)]
        process_batch(worker_runtime, campaign_id, ids)
    finally:
        runtime.shutdown()
    assert any(parked for parked, _ in after_each_commit), after_each_commit
    assert all(pauses == 1 for parked, pauses in after_each_commit if parked), after_each_commit
    db.close()


def test_a_retry_written_back_after_its_campaign_was_cancelled_ends_cancelled_unsent(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    """The cancel leaves a `sending` message to its worker; the worker writes it back to
    `pending` (a WA500 with a retry left). Its batch, dispatched when due, cancels it."""
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=RECIPIENT)
    ).campaign_id
    [pk] = [m.id for m in db.messages(campaign_id)]
    with db.sessions.begin() as session:
        assert [m.pk for m in claim(session, campaign_id, [pk], "T1")] == [pk]
    cancel_campaign(settings, campaign_id, sessions=db.sessions, actor="tester")
    retry = MessageResult(
        pk, MessageStatus.PENDING, [], 1, 0, code="WA500", next_attempt_at=utcnow()
    )
    with db.sessions.begin() as session:
        write_results(session, "T1", [retry])
    assert db.message(campaign_id, RECIPIENT).status == MessageStatus.PENDING  # the old end

    run_worker(settings)
    process_batch(runtime.current_runtime(), campaign_id, [pk])

    message = db.message(campaign_id, RECIPIENT)
    assert (message.status, message.next_attempt_at) == (MessageStatus.CANCELLED, None)
    assert sandbox.stats()["requests"] == 0
    assert db.settled(campaign_id)
    db.assert_counters_exact(campaign_id)
    db.close()
