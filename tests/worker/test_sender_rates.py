"""A real worker sends to the sandbox at the sender's stored rate, and a rate changed while
its one batch is sending reaches that batch within a second, with no restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.producer.senders import set_rate
from stickerq.settings import Settings
from tests.conftest import SENDER, STICKER_ID, make_settings, wait_until
from tests.helpers import Db
from tests.worker.test_global_limit import max_in_any_second, sandbox_process  # noqa: F401

pytestmark = pytest.mark.serial  # times arrivals at the sandbox: alone

STORED, CHANGED = 20.0, 50.0
BEFORE_CHANGE = 40


def test_a_stored_rate_holds_and_a_change_reaches_the_batch_already_sending(
    pg_database: str,
    redis_prefix: str,
    sandbox_process: str,  # noqa: F811
    spawn_worker: Callable[..., object],
) -> None:
    # The default (1,000/s) would send the whole campaign in a blink; one batch of 140.
    settings: Settings = make_settings(
        pg_database, redis_prefix, sandbox_process, batch_size=200, in_flight=50
    )
    set_rate(settings, SENDER, STORED, actor="tester")
    db = Db(settings)
    log = spawn_worker(settings, "--concurrency", "1")
    wait_until(lambda: "ready." in log.read_text(), timeout=60)  # type: ignore[attr-defined]
    recipients = ",".join(f"+91981234{n:04d}" for n in range(140))
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
    ).campaign_id

    def arrivals() -> list[float]:
        return [row["at"] for row in httpx.get(f"{sandbox_process}/_sandbox/requests").json()]

    wait_until(lambda: len(arrivals()) >= BEFORE_CHANGE, timeout=60, interval=0.05)
    changed_at = time.time()
    set_rate(settings, SENDER, CHANGED, actor="tester")
    wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)
    db.close()

    times = sorted(arrivals())
    assert len(times) == 140
    before = [t for t in times if t < changed_at]
    after = [t for t in times if t >= changed_at + 0.5]
    # The stored rate, not the default: every window within the limiter's bound (plus the
    # machine's jitter, as in test_global_limit), and the budget used.
    assert max_in_any_second(before) <= STORED * 1.1 + 1, before
    assert (len(before) - 1) / (before[-1] - before[0]) >= STORED * 0.85
    # Within half a second of the change the batch sends at the new rate, no faster.
    busiest = max_in_any_second(after)
    assert STORED * 1.5 < busiest <= CHANGED * 1.1 + 1, busiest
