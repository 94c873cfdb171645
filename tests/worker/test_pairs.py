"""PairGuard against a real Redis: a held pair waits for its key's TTL, gives up on stop or
deadline, is confirmed only while nobody else took it, and holds nothing without Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from stickerq.keys import pair_key
from stickerq.worker.pairs import SLACK_SECONDS, PairGuard, PairWait

SENDER, RECIPIENT = "+919000000001", "+919812345690"


def _guard(redis_url: str, prefix: str, interval: float = 0.2) -> PairGuard:
    return PairGuard(aioredis.Redis.from_url(redis_url), prefix, interval, max_backoff=0.2)


@pytest.mark.serial  # bounds a wait to a tenth of a second
def test_a_held_pair_waits_for_its_interval_and_other_recipients_do_not(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario() -> tuple[float, float]:
        guard = _guard(redis_url, redis_prefix)
        stop = asyncio.Event()
        assert (await guard.reserve(SENDER, RECIPIENT, "a", stop))[0] is PairWait.FREE
        assert (await guard.reserve(SENDER, RECIPIENT, "a", stop))[0] is PairWait.FREE  # its own
        started = time.monotonic()
        other, held = await asyncio.gather(
            guard.reserve(SENDER, "+919812345691", "c", stop),
            guard.reserve(SENDER, RECIPIENT, "b", stop),
        )
        assert other[0] is held[0] is PairWait.FREE
        return other[1] - started, held[1] - started

    other_after, held_after = asyncio.run(scenario())
    assert other_after < 0.15
    assert held_after >= 0.2 + SLACK_SECONDS - 0.05


def test_a_waiting_pair_gives_up_on_stop_and_on_its_deadline(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario() -> tuple[PairWait, PairWait, float]:
        guard = _guard(redis_url, redis_prefix, interval=5.0)
        stop = asyncio.Event()
        await guard.reserve(SENDER, RECIPIENT, "a", stop)
        started = time.monotonic()
        expired, _ = await guard.reserve(SENDER, RECIPIENT, "b", stop, seconds_left=0.1)
        asyncio.get_running_loop().call_later(0.1, stop.set)
        stopped, _ = await guard.reserve(SENDER, RECIPIENT, "b", stop)
        return expired, stopped, time.monotonic() - started

    expired, stopped, took = asyncio.run(scenario())
    assert (expired, stopped) == (PairWait.EXPIRED, PairWait.STOPPED)
    assert took < 1.0


def test_confirm_fails_when_another_owner_took_the_pair_after_the_reservation(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario() -> tuple[bool, bool, int]:
        guard = _guard(redis_url, redis_prefix, interval=0.05)
        stop = asyncio.Event()
        _, reserved_at = await guard.reserve(SENDER, RECIPIENT, "a", stop)
        fresh = await guard.confirm(SENDER, RECIPIENT, "a", reserved_at)
        await asyncio.sleep(0.05 + SLACK_SECONDS + 0.05)  # the reservation ran out
        await guard.reserve(SENDER, RECIPIENT, "b", stop)
        late = await guard.confirm(SENDER, RECIPIENT, "a", reserved_at)
        redis = aioredis.Redis.from_url(redis_url)
        ttl = await redis.pttl(pair_key(redis_prefix, SENDER, RECIPIENT))
        await redis.aclose()
        return fresh, late, ttl

    fresh, late, ttl = asyncio.run(scenario())
    assert (fresh, late) == (True, False)
    assert ttl > 0  # b's hold stands


def test_without_redis_nothing_is_reserved(redis_prefix: str) -> None:
    async def scenario() -> PairWait:
        guard = _guard("redis://127.0.0.1:1/0", redis_prefix)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        wait, _ = await guard.reserve(SENDER, RECIPIENT, "a", stop)
        return wait

    assert asyncio.run(scenario()) is PairWait.STOPPED
