"""A sender's stored rate in the limiter, on the real Redis: the mirror key overrides the
caller's rate on every ask, and a rate lowered while takers wait grants no burst."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from stickerq.keys import sender_rate_key
from stickerq.worker.limiter import RateLimiter
from tests.worker.test_limiter import SENDER, client_for, hammer, max_in_window, run, window_limit

pytestmark = pytest.mark.serial  # counts grants per second


def test_the_stored_rate_overrides_the_callers_rate(redis_url: str, redis_prefix: str) -> None:
    redis.Redis.from_url(redis_url).set(sender_rate_key(redis_prefix, SENDER), "10")

    async def scenario() -> list[float]:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            return await hammer(limiter, SENDER, 200.0, time.monotonic() + 1.5, 4)
        finally:
            await client.aclose()

    stamps = run(scenario)
    assert max_in_window(stamps) <= window_limit(10)
    assert len(stamps) >= 10  # the budget was used: 1.5 s at 10/s, the bucket's 2 first


def test_a_rate_lowered_while_takers_wait_grants_no_burst(
    redis_url: str, redis_prefix: str
) -> None:
    """Takers at 100/s; the stored rate drops to 10: from then on every window holds at most
    the new rate's bound (tokens granted before the drop are due within the look-ahead)."""
    key = sender_rate_key(redis_prefix, SENDER)
    sync = redis.Redis.from_url(redis_url)
    sync.set(key, "100")

    async def scenario() -> tuple[list[float], float]:
        client = client_for(redis_url)
        try:
            start = time.monotonic()
            limiter = RateLimiter(client, redis_prefix)

            async def lower() -> float:
                await asyncio.sleep(1.0)
                await client.set(key, "10")
                return time.monotonic()

            stamps, lowered = await asyncio.gather(
                hammer(limiter, SENDER, 100.0, start + 2.5, 12), lower()
            )
            return stamps, lowered
        finally:
            await client.aclose()

    stamps, lowered = run(scenario)
    before = [s for s in stamps if s < lowered]
    after = [s for s in stamps if s >= lowered + 0.1]
    assert len(before) >= 80  # it did send at 100/s first
    assert max_in_window(after) <= window_limit(10), max_in_window(after)
    assert len(after) >= 12  # and goes on at 10/s: 1.4 s of it
