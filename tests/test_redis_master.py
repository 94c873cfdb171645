"""A connection busy during a failover is not used on the old master afterwards
(stickerq/redis_master.py), with real Sentinels: the old master takes writes as a master for
seconds after `SENTINEL FAILOVER`, so a write that lands there is a write lost, and for the
rate limiter a second bucket."""

from __future__ import annotations

import asyncio
import time

import redis

from stickerq.redis_client import Purpose, RedisTarget, make_async_redis, make_redis
from tests.conftest import wait_until
from tests.redis_servers import MASTER_NAME, SentinelTopology


def test_a_connection_busy_during_a_failover_writes_to_the_new_master(
    topology: SentinelTopology,
) -> None:
    target = RedisTarget(topology.url, sentinel_master=MASTER_NAME)
    old = topology.master_port()
    sync_client = make_redis(target, purpose=Purpose.WORKER)

    async def scenario() -> None:
        client = make_async_redis(target, purpose=Purpose.WORKER)
        pool = client.connection_pool
        try:
            await client.ping()
            sync_client.ping()
            # busy while the failover happens: open to the old master, and not idle
            busy = await pool.get_connection()
            sync_busy = sync_client.connection_pool.get_connection()
            assert busy.port == sync_busy.port == old
            before = time.monotonic()
            new = topology.failover()

            async def learned() -> bool:  # as another connection's reconnect would
                try:
                    return (await pool.get_master_address())[1] == new
                except redis.RedisError:  # no majority yet
                    return False

            deadline = time.monotonic() + 20
            while not await learned():
                assert time.monotonic() < deadline, "the Sentinels never agreed on a new master"
                await asyncio.sleep(0.1)
            assert pool.moved_at > before
            wait_until(lambda: sync_client.connection_pool.get_master_address()[1] == new)
            await pool.release(busy)
            sync_client.connection_pool.release(sync_busy)

            await client.set("async", "1")
            sync_client.set("sync", "1")
        finally:
            await client.aclose()

        with topology.servers[new].client() as direct:
            assert direct.mget("async", "sync") == [b"1", b"1"]
        with topology.servers[old].client() as direct:  # still a master, and took neither
            assert direct.info("replication")["role"] == "master"
            assert direct.mget("async", "sync") == [None, None]

    try:
        asyncio.run(scenario())
    finally:
        sync_client.close()
