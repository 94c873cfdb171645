"""The limit is global: worker processes share one budget per sender through Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, make_settings, wait_until
from tests.helpers import Db

pytestmark = pytest.mark.serial  # restarts or kills shared services, or times them: alone

LIMIT = 50


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
def sandbox_process() -> Iterator[str]:
    """The sandbox in a process of its own: its arrival times must not wait for this test
    process's GIL (a thread sandbox here records bursts that never happened on the wire)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stickerq",
            "sandbox",
            "--port",
            str(port),
            "--sender",
            SENDER,
            "--latency-ms",
            "20",
        ],
        env={**os.environ, "STICKERQ_SANDBOX_API_KEY": TEST_API_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=30, interval=0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_two_worker_processes_share_one_limit_per_sender(
    pg_database: str, redis_prefix: str, sandbox_process: str, spawn_worker: Callable
) -> None:
    settings: Settings = make_settings(
        pg_database,
        redis_prefix,
        sandbox_process,
        rate_per_second=float(LIMIT),
        batch_size=20,
        in_flight=20,
    )
    db = Db(settings)
    logs = [spawn_worker(settings, "--concurrency", "1") for _ in range(2)]
    wait_until(lambda: all("ready." in log.read_text() for log in logs), timeout=60)
    recipients = ",".join(f"+91981234{n:04d}" for n in range(250))
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
    ).campaign_id

    wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)
    arrivals = [row["at"] for row in httpx.get(f"{sandbox_process}/_sandbox/requests").json()]
    assert len(arrivals) == 250
    # The limiter keeps every window of its grants at or below LIMIT + 1; arrivals carry the
    # machine's scheduling jitter as well (a request due at t leaves late while its worker
    # waits for a core), hence the margin. A limit per process would show 2 x LIMIT.
    assert max_in_any_second(arrivals) <= LIMIT * 1.1 + 1
    span = max(arrivals) - min(arrivals)
    assert 250 / span >= LIMIT * 0.9  # the budget was used, not just respected
    for log in logs:  # both processes took part
        assert "stickerq.send_batch" in log.read_text()
    db.close()


def test_a_wait_for_the_senders_budget_is_never_an_attempt_a_retry_or_a_failure(
    pg_database: str, redis_prefix: str, sandbox: SandboxServer, spawn_worker: Callable
) -> None:
    """At 4/s the last of 30 messages waits ~7 s for its token: longer than the read
    timeout, several claim heartbeats and sweeps. Until its turn it stays unsent with no
    attempt; then each message goes out once, with exactly one attempt."""
    settings: Settings = make_settings(
        pg_database,
        redis_prefix,
        sandbox.url,
        rate_per_second=4.0,
        batch_size=30,
        read_timeout=1.0,
        claim_heartbeat_seconds=2.0,  # as the fault tests: a loaded machine may stall 1 s
        sweep_interval_seconds=0.5,
    )
    db = Db(settings)
    spawn_worker(settings, "--concurrency", "1", "--beat")
    recipients = [f"+91981234{n:04d}" for n in range(30)]
    result = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    )
    campaign_id = result.campaign_id

    def sent_count() -> int:
        return sum(m.status == MessageStatus.SENT for m in db.messages(campaign_id))

    wait_until(lambda: sent_count() >= 10, timeout=60, interval=0.1)
    waiting = [m for m in db.messages(campaign_id) if m.status != MessageStatus.SENT]
    assert waiting, "the budget should still hold some messages back"
    for message in waiting:
        assert message.status in (MessageStatus.PENDING, MessageStatus.SENDING)
        assert (message.attempts, message.delayed_retries) == (0, 0)
        assert db.attempts(message.id) == []

    wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)
    messages = db.messages(campaign_id)
    assert {m.status for m in messages} == {MessageStatus.SENT}
    assert {(m.attempts, m.delayed_retries, m.last_error_code) for m in messages} == {(1, 0, None)}
    assert sorted(row["recipient"] for row in sandbox.accepted()) == recipients
    db.close()
