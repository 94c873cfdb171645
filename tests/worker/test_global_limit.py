"""The limit is global: worker processes share one budget per sender through Redis."""

from __future__ import annotations

from collections.abc import Callable

from producer.api import enqueue_campaign
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import STICKER_ID, wait_until
from tests.helpers import Db

LIMIT = 50


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_worker_processes_share_one_limit_per_sender(
    settings: Settings, sandbox: SandboxServer, spawn_worker: Callable
) -> None:
    settings = settings.model_copy(
        update={"rate_per_second": float(LIMIT), "batch_size": 20, "in_flight": 20}
    )
    sandbox.configure(latency_ms=20)
    db = Db(settings)
    recipients = ",".join(f"+91981234{n:04d}" for n in range(250))
    campaign_id = enqueue_campaign(settings, sticker_id=STICKER_ID, to=recipients).campaign_id
    logs = [spawn_worker(settings, "--concurrency", "1") for _ in range(2)]

    wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)
    arrivals = [row["at"] for row in sandbox.requests()]
    assert len(arrivals) == 250
    assert max_in_any_second(arrivals) <= LIMIT * 1.05 + 1
    span = max(arrivals) - min(arrivals)
    assert 250 / span >= LIMIT * 0.9  # the budget was used, not just respected
    for log in logs:  # both processes took part
        assert "stickerq.send_batch" in log.read_text()
    db.close()
