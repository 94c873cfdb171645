"""The pair-rate guard end to end (a real worker, the sandbox's arrival times): one sender
never sends one recipient twice within STICKERQ_PAIR_INTERVAL_SECONDS, across campaigns and
worker processes; the held message waits, with no attempt, while everything else goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxConfig, SandboxServer
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, make_settings, wait_until
from tests.helpers import Db

pytestmark = pytest.mark.serial  # arrival times bound to the second

SHARED, OTHER_1, OTHER_2, OTHER_3 = (
    "+919812345680",
    "+919812345681",
    "+919812345682",
    "+919812345683",
)
SECOND_SENDER = "+919000000002"
INTERVAL = 2.5


@pytest.fixture
def two_senders() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        api_key=TEST_API_KEY, senders=frozenset({SENDER, SECOND_SENDER}), timeout_seconds=2
    )
    with SandboxServer(config) as server:
        yield server


def _campaign(settings: Settings, to: str, **fields: Any) -> int:
    request = CampaignRequest(sticker_id=STICKER_ID, to=to, **fields)
    return enqueue_campaign(settings, request).campaign_id


def _arrivals(sandbox: SandboxServer, sender: str, recipient: str) -> list[float]:
    return [
        row["at"]
        for row in sandbox.requests()
        if row.get("sender") == sender
        and str(row.get("recipient")).lstrip("+") == recipient.lstrip("+")
    ]


def _wait_completed(db: Db, *campaign_ids: int) -> None:
    for campaign_id in campaign_ids:
        wait_until(lambda c=campaign_id: db.campaign(c).status == CampaignStatus.COMPLETED)


def test_second_campaign_reaches_a_recipient_only_after_the_interval(
    pg_database: str,
    redis_prefix: str,
    two_senders: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    settings = make_settings(
        pg_database, redis_prefix, two_senders.url, pair_interval_seconds=INTERVAL
    )
    first = _campaign(settings, f"{SHARED},{OTHER_1}")
    second = _campaign(settings, f"{SHARED},{OTHER_2},{OTHER_3}")
    elsewhere = _campaign(settings, SHARED, sender=SECOND_SENDER)
    # Its deadline comes while the pair is still held: it expires unsent.
    too_late = _campaign(settings, SHARED, valid_for=timedelta(seconds=1))

    run_worker(settings)
    db = Db(settings)
    try:
        _wait_completed(db, first, second, elsewhere, too_late)
        shared = _arrivals(two_senders, SENDER, SHARED)
        assert len(shared) == 2
        assert shared[1] - shared[0] >= INTERVAL
        # The sender's other recipients and the other sender were not held back.
        others = [
            *_arrivals(two_senders, SENDER, OTHER_1),
            *_arrivals(two_senders, SENDER, OTHER_2),
            *_arrivals(two_senders, SENDER, OTHER_3),
            *_arrivals(two_senders, SECOND_SENDER, SHARED),
        ]
        assert len(others) == 4
        assert max(others) - shared[0] < INTERVAL / 2
        for campaign_id in (first, second, elsewhere):
            message = db.message(campaign_id, SHARED)
            assert (message.status, message.attempts) == (MessageStatus.SENT, 1)
            assert len(db.attempts(message.id)) == 1
        expired = db.message(too_late, SHARED)
        assert (expired.status, expired.attempts) == (MessageStatus.EXPIRED, 0)
    finally:
        db.close()


def test_interval_zero_sends_the_same_recipient_at_once(
    pg_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    settings = make_settings(pg_database, redis_prefix, sandbox.url, pair_interval_seconds=0)
    campaigns = [_campaign(settings, SHARED) for _ in range(3)]

    run_worker(settings)
    db = Db(settings)
    try:
        _wait_completed(db, *campaigns)
        shared = _arrivals(sandbox, SENDER, SHARED)
        assert len(shared) == 3
        assert shared[-1] - shared[0] < 1.0
    finally:
        db.close()


def test_two_worker_processes_share_the_guard(
    pg_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    spawn_worker: Callable[..., Path],
) -> None:
    settings = make_settings(pg_database, redis_prefix, sandbox.url, pair_interval_seconds=INTERVAL)
    campaigns = [_campaign(settings, f"{SHARED},{other}") for other in (OTHER_1, OTHER_2)]
    spawn_worker(settings, "--concurrency", "1")
    spawn_worker(settings, "--concurrency", "1")
    db = Db(settings)
    try:
        _wait_completed(db, *campaigns)
        shared = _arrivals(sandbox, SENDER, SHARED)
        assert len(shared) == 2
        assert shared[1] - shared[0] >= INTERVAL
        for campaign_id in campaigns:
            assert db.message(campaign_id, SHARED).attempts == 1
    finally:
        db.close()


def test_a_pair_whose_token_came_late_is_held_from_its_request_not_its_reservation(
    pg_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    # 2 tokens a second: the shared recipient, last of five, gets its token about 2 s after
    # it reserved its pair, later than the reservation's interval + slack (1.5 s).
    settings = make_settings(
        pg_database, redis_prefix, sandbox.url, pair_interval_seconds=1.0, rate_per_second=2.0
    )
    first = _campaign(settings, f"{OTHER_1},{OTHER_2},{OTHER_3},+919812345684,{SHARED}")
    run_worker(settings)
    wait_until(lambda: sandbox.requests())
    second = _campaign(settings, SHARED)
    db = Db(settings)
    try:
        _wait_completed(db, first, second)
        shared = _arrivals(sandbox, SENDER, SHARED)
        assert len(shared) == 2
        assert shared[1] - shared[0] >= 1.0
        for campaign_id in (first, second):
            assert db.message(campaign_id, SHARED).attempts == 1
    finally:
        db.close()


def test_quick_wa500_retries_of_one_message_are_not_held_by_its_own_pair(
    pg_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    settings = make_settings(pg_database, redis_prefix, sandbox.url, pair_interval_seconds=INTERVAL)
    sandbox.script({SHARED: ["WA500", "WA202"]})
    campaign = _campaign(settings, SHARED)
    run_worker(settings)
    db = Db(settings)
    try:
        _wait_completed(db, campaign)
        shared = _arrivals(sandbox, SENDER, SHARED)
        assert len(shared) == 2
        assert shared[1] - shared[0] < INTERVAL / 2
        message = db.message(campaign, SHARED)
        assert (message.status, message.attempts) == (MessageStatus.SENT, 2)
    finally:
        db.close()
