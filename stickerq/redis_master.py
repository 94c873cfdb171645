"""Sentinel clients that never send a command to a master the Sentinels replaced.

redis-py's Sentinel pool learns of a new master when one of its connections reconnects, and
closes its idle connections then. A connection that was busy at that moment, or that was
still connecting to the old master while another learned the new one, goes back to the pool
open to the old master, which takes writes as a master until the Sentinels demote it (up to
ten seconds later). Found under test: five seconds after a failover a worker took a burst of
rate-limit tokens from the old master's bucket while the other worker took them from the new
one's, and the sender went to 1.15 times its rate.

So a connection is closed, and opened again to the master the pool knows last, whenever it is
handed out while open to any other address; and the pool records when its master moved, from
which worker/master_watch.py holds the rate limiter.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio.sentinel as aiosentinel
import redis.sentinel


def _open_elsewhere(connection: Any) -> bool:
    """Open to another address than the master its pool knows last."""
    known = connection.connection_pool.master_address
    return (
        connection.is_connected
        and known is not None
        and (connection.host, int(connection.port)) != tuple(known)
    )


class MasterConnection(redis.sentinel.SentinelManagedConnection):
    def connect(self) -> None:
        if _open_elsewhere(self):
            self.disconnect()  # type: ignore[no-untyped-call]
        super().connect()  # type: ignore[no-untyped-call]


class AsyncMasterConnection(aiosentinel.SentinelManagedConnection):
    async def connect(self) -> None:
        if _open_elsewhere(self):
            await self.disconnect()
        await super().connect()  # type: ignore[no-untyped-call]


class AsyncMasterPool(aiosentinel.SentinelConnectionPool):
    """Also records when the master moved (`moved_at`, time.monotonic()), before any
    connection can reach the new one."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connection_class", AsyncMasterConnection)
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self.moved_at = float("-inf")

    async def get_master_address(self) -> Any:
        address = await self.sentinel_manager.discover_master(self.service_name)
        if self.master_address != address:
            if self.master_address is not None:
                self.moved_at = time.monotonic()
            self.master_address = address
            await self.disconnect(inuse_connections=False)
        return address
