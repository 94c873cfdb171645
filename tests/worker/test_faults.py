"""Nothing lost, nothing sent twice: real worker processes killed, Redis state lost, faults.

Each test runs a campaign against the sandbox (with latency) and checks at the end: every
message is in a terminal state or `unknown`; the sandbox accepted each recipient at most
once; every `sent` row has the message_id the sandbox returned, with its ref/ref1/ref2.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest
import redis

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.producer.requeue import requeue
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import REDIS_URL, STICKER_ID, wait_until
from tests.helpers import Db
from tests.worker.conftest import Workers

# The tests that bound `unknown` or a count by how fast a worker writes or stops run alone
# (serial); the others assert only what may never happen, and run beside other tests.

# Enough for a worker to hold full claims (4 x 100) ahead when it is killed after 300 sends.
FAULT_RECIPIENTS = 1000
TERMINAL = {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.PARKED, MessageStatus.UNKNOWN}


def audience(count: int) -> list[str]:
    return [f"+9198{n:08d}" for n in range(10_000_000, 10_000_000 + count)]


def assert_nothing_lost_nothing_twice(db: Db, campaign_id: int, sandbox: SandboxServer) -> dict:
    messages = db.messages(campaign_id)
    statuses = {m.status for m in messages}
    assert statuses <= TERMINAL, statuses
    accepted = sandbox.accepted()
    by_recipient: dict[str, dict] = {}
    for row in accepted:
        assert row["recipient"] not in by_recipient, f"{row['recipient']} accepted twice"
        by_recipient[row["recipient"]] = row
    for message in messages:
        if message.status == MessageStatus.SENT:
            row = by_recipient[message.recipient]
            assert message.message_id == row["message_id"]
            assert (message.ref, message.ref1, message.ref2) == (
                row["ref"],
                row["ref1"],
                row["ref2"],
            )
    sent = {m.recipient for m in messages if m.status == MessageStatus.SENT}
    # an accepted recipient is either recorded sent or honestly unknown
    unknown = {m.recipient for m in messages if m.status == MessageStatus.UNKNOWN}
    assert set(by_recipient) <= sent | unknown
    db.assert_counters_exact(campaign_id)
    return {status: sum(1 for m in messages if m.status == status) for status in statuses}


def enqueue(settings: Settings, count: int) -> int:
    return enqueue_campaign(
        settings,
        CampaignRequest(
            sticker_id=STICKER_ID, to=",".join(audience(count)), ref="fault", ref1="r1", ref2="r2"
        ),
    ).campaign_id


def sent_count(db: Db, campaign_id: int) -> int:
    return sum(1 for m in db.messages(campaign_id) if m.status == MessageStatus.SENT)


@pytest.mark.serial  # bounds by timing
def test_sigkill_of_a_worker_mid_campaign_loses_nothing_and_sends_nothing_twice(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    sandbox.configure(latency_ms=100)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, FAULT_RECIPIENTS)
    victim = workers.start(fault_settings)
    wait_until(lambda: sent_count(db, campaign_id) >= 300, timeout=60, interval=0.1)
    workers.kill(victim)
    in_flight_when_killed = sum(
        1 for m in db.messages(campaign_id) if m.status == MessageStatus.SENDING
    )
    sandbox.configure(latency_ms=20)  # the rest goes out quicker: the bounds are on the kill
    workers.start(fault_settings, "--beat")

    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    # Results are written as they arrive, so `unknown` is what was in flight at the kill (20),
    # plus the answers not yet written: ~0.1 s of them at 200/s, more while a commit waits
    # for a slow disk (40 seen). Written per batch, it would be up to 3 batches of 100.
    assert counts.get(MessageStatus.UNKNOWN, 0) <= fault_settings.in_flight * 2.5
    assert counts.get(MessageStatus.UNKNOWN, 0) <= in_flight_when_killed
    assert counts[MessageStatus.SENT] + counts.get(MessageStatus.UNKNOWN, 0) == FAULT_RECIPIENTS
    db.close()


@pytest.mark.serial  # bounds by timing
def test_warm_shutdown_stops_before_the_next_request_and_writes_every_result(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    """A send_batch task returns while its batch still sends: SIGTERM must not leave that
    batch `sending` (nor `unknown`) for the sweeper, but stop it and write its results."""
    sandbox.configure(latency_ms=200)
    settings = fault_settings.model_copy(update={"rate_per_second": 100.0})
    db = Db(settings)
    campaign_id = enqueue(settings, 800)  # 8 s at 100/s
    worker = workers.start(settings, "--concurrency", "2")
    wait_until(lambda: sent_count(db, campaign_id) >= 150, timeout=60, interval=0.1)
    worker.send_signal(signal.SIGTERM)  # to the main process, as Celery's warm shutdown asks
    worker.wait(timeout=30)

    counts = Counter(m.status for m in db.messages(campaign_id))
    assert set(counts) == {MessageStatus.SENT, MessageStatus.PENDING}, counts
    # It stopped: ~150 sent, plus what the shutdown took to reach the batches at 100/s
    # (queued requests that went on to take tokens after the halt made this 580-680).
    assert counts[MessageStatus.SENT] < 450
    assert {row["recipient"] for row in sandbox.accepted()} == {
        m.recipient for m in db.messages(campaign_id) if m.status == MessageStatus.SENT
    }
    assert not redis.Redis.from_url(REDIS_URL).keys(f"{settings.redis_prefix}claim:*")

    # the rest goes out once, from a new worker; quicker answers and a higher rate make it
    # take 1 s instead of 7 (the bounds were on the stop)
    sandbox.configure(latency_ms=20)
    workers.start(settings.model_copy(update={"rate_per_second": 1000.0}), "--beat")
    # What the halted batches put back has no task: the new worker's sweeper re-dispatches
    # it (even with beat's own tasks waiting beside the sweep).
    try:
        wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {db.unsettled(campaign_id)}") from exc
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert counts == {MessageStatus.SENT: 800}
    db.close()


def test_losing_every_redis_key_mid_campaign_loses_nothing(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    """Like FLUSHALL for stickerq (queue, limiter, pause mirrors, claim records), but only
    under this test's prefix, so other users of this Redis are left alone."""
    sandbox.configure(latency_ms=100)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, FAULT_RECIPIENTS)
    workers.start(fault_settings, "--beat")
    wait_until(lambda: sent_count(db, campaign_id) >= 300, timeout=60, interval=0.1)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=fault_settings.redis_prefix + "*", count=1000))
    client.delete(*keys)

    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert counts[MessageStatus.SENT] + counts.get(MessageStatus.UNKNOWN, 0) == FAULT_RECIPIENTS
    assert counts.get(MessageStatus.UNKNOWN, 0) <= fault_settings.in_flight
    db.close()


def test_thirty_percent_wa500_all_sent_and_none_failed_with_retries_left(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    sandbox.configure(latency_ms=50, wa500_rate=0.3, seed=5)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, 500)
    workers.start(fault_settings, "--beat")
    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    most = fault_settings.quick_attempts + len(fault_settings.retry_delays_seconds)
    for message in db.messages(campaign_id):
        if message.status == MessageStatus.FAILED:
            assert message.attempts == most and message.last_error_code == "WA500"
        assert len(db.attempts(message.id)) == message.attempts
    assert counts.get(MessageStatus.FAILED, 0) <= 3  # 0.3**7 of 500: almost surely none
    retried = [m for m in db.messages(campaign_id) if m.attempts > 1]
    assert len(retried) > 75  # about 30% needed a retry
    db.close()


def test_dropped_connections_and_html_502s_are_unknown_never_sent_twice(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    recipients = audience(600)
    script = {number: ["DROP"] for number in recipients[::20]}
    script.update({number: ["HTML_502"] for number in recipients[7::20]})
    sandbox.script(script)
    sandbox.configure(latency_ms=50)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, 600)
    workers.start(fault_settings, "--beat")
    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert counts[MessageStatus.UNKNOWN] == len(script)
    assert counts[MessageStatus.SENT] == 600 - len(script)
    requests_per_recipient = Counter(row["recipient"] for row in sandbox.requests())
    assert set(requests_per_recipient.values()) == {1}  # unknown is never resent
    db.close()


def test_balance_running_out_parks_pauses_and_requeue_sends_each_rest_once(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    sandbox.configure(latency_ms=50, balance=300)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, 800)
    workers.start(fault_settings, "--beat")
    wait_until(
        lambda: (
            db.active_pauses()
            and not any(m.status == MessageStatus.SENDING for m in db.messages(campaign_id))
        ),
        timeout=60,
        interval=0.2,
    )
    [pause] = db.active_pauses()
    assert (pause.scope, pause.code) == ("account", "E110")
    statuses = Counter(m.status for m in db.messages(campaign_id))
    assert statuses[MessageStatus.SENT] == 300
    assert statuses[MessageStatus.PARKED] + statuses[MessageStatus.PENDING] == 500
    assert statuses[MessageStatus.PARKED] <= fault_settings.in_flight  # only those in flight

    sandbox.configure(balance=None)
    requeue(fault_settings, campaign_id, "parked", code="E110", resume=True, actor="tester")
    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert counts == {MessageStatus.SENT: 800}
    assert len(sandbox.accepted()) == 800
    db.close()
