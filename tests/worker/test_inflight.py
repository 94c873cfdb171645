"""The claim record in Redis: what the sweeper may conclude about a dead worker's sends."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from stickerq.worker.inflight import claim_keys, forget_sent, open_claim, settle_claim
from stickerq.worker.limiter import RateLimiter

SENDER = "+919000000001"


def run(redis_url: str, coro_factory):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await coro_factory(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_live_claim_is_left_alone(redis_url: str, redis_prefix: str) -> None:
    keys = claim_keys(redis_prefix, "live")
    run(redis_url, lambda c: open_claim(c, keys, ttl=10))
    assert settle_claim(redis.Redis.from_url(redis_url), keys).alive


def test_a_dead_claim_reports_what_it_may_have_sent_and_can_send_no_more(
    redis_url: str, redis_prefix: str
) -> None:
    keys = claim_keys(redis_prefix, "dead")

    async def send_two_then_die(client: aioredis.Redis) -> None:
        await open_claim(client, keys, ttl=0.2)
        limiter = RateLimiter(client, redis_prefix)
        for pk in (11, 12, 13):
            assert await limiter.take(SENDER, 1000, (keys.dead,), mark=(keys.sent, str(pk)))
        await forget_sent(client, keys, [13])  # 13's result reached the database
        await asyncio.sleep(0.3)  # the heartbeat stops

    run(redis_url, send_two_then_die)
    verdict = settle_claim(redis.Redis.from_url(redis_url), keys)
    assert (verdict.alive, verdict.record_kept, verdict.sent) == (False, True, {11, 12})

    async def try_again(client: aioredis.Redis) -> bool:
        limiter = RateLimiter(client, redis_prefix)
        return await limiter.take(SENDER, 1000, (keys.dead,), mark=(keys.sent, "14"))

    assert run(redis_url, try_again) is False  # the sweeper's verdict is final


def test_a_lost_record_proves_nothing_and_blocks_sending(redis_url: str, redis_prefix: str) -> None:
    keys = claim_keys(redis_prefix, "lost")
    run(redis_url, lambda c: open_claim(c, keys, ttl=10))
    redis.Redis.from_url(redis_url).delete(keys.alive, keys.sent)  # Redis lost its state

    async def try_send(client: aioredis.Redis) -> bool:
        limiter = RateLimiter(client, redis_prefix)
        return await limiter.take(SENDER, 1000, (keys.dead,), mark=(keys.sent, "1"))

    assert run(redis_url, try_send) is False
    verdict = settle_claim(redis.Redis.from_url(redis_url), keys)
    assert (verdict.alive, verdict.record_kept) == (False, False)
