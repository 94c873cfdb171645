"""After a Redis failover, a worker moves to the new master at once, and grants no token for a
moment while every worker does.

A Sentinel client finds the new master on its next connection, but the connections it holds
keep working on the old master until the Sentinels make it a replica, which takes up to ten
seconds (their INFO period). In that time a worker whose pool opened a connection (to the new
master) and one that kept its old ones would ask two limiters, and the sender would get up to
twice its rate. So each worker asks the Sentinels where the master is every POLL_SECONDS;
when it moved, the worker's pools drop the old master's connections (idle ones at once, busy
ones before their next use: stickerq/redis_master.py), and its limiter holds every grant for
HOLD_SECONDS from the moment the pool learned of the move, longer than any two workers' polls
can differ. The old master's limiter then serves the workers that have not yet seen the move,
the new one only those that have and waited: no second holds grants from both
(worker/limiter.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
HOLD_SECONDS = 1.5


class MasterWatch:
    def __init__(self, aredis: aioredis.Redis, sync: redis.Redis) -> None:
        self._async_pool: Any = aredis.connection_pool  # an AsyncMasterPool
        self._sync_pool: Any = sync.connection_pool
        self._master: Any = None

    @staticmethod
    def applies_to(client: aioredis.Redis) -> bool:
        """Only a Sentinel client's pool knows a master that can move."""
        return hasattr(client.connection_pool, "moved_at")

    def hold_seconds(self) -> float:
        """How long the limiter still holds its grants after the last move (0: it does not).
        The pool records the move when any of its connections learns of it, not only when
        this watch asks (stickerq/redis_master.py)."""
        moved_at: float = self._async_pool.moved_at
        return max(0.0, moved_at + HOLD_SECONDS - time.monotonic())

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(POLL_SECONDS)

    async def check(self) -> None:
        try:
            master = await self._async_pool.get_master_address()
        except (redis.RedisError, OSError) as exc:  # every Sentinel is down: nothing learned
            log.debug("no Sentinel says where the Redis master is: %s", exc)
            return
        if self._master is not None and master != self._master:
            # idle connections went with get_master_address; busy ones close before their
            # next use, as do the other pool's
            await asyncio.to_thread(self._sync_pool.get_master_address)
            log.warning(
                "the Redis master moved from %s:%s to %s:%s: this worker's clients follow it, "
                "and no token is granted for %.1f s while every worker does",
                *self._master,
                *master,
                HOLD_SECONDS,
            )
        self._master = master
