"""Every Redis client of stickerq comes from here, as every database engine comes from
`stickerq.db.make_engine`.

A caller names its purpose, and the purpose sets how long the client waits: to connect, and
for each reply. The timeouts live in one table (TIMEOUTS) instead of in each caller. Redis is
never the truth (the database is), so a client that gives up costs a retry or a warning,
never a message. This is the one place to change how clients reach Redis (a Sentinel's
current master, TLS), for every user at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis
import redis.asyncio as aioredis


class Purpose(StrEnum):
    """Who wants a client, which decides its timeouts."""

    # The worker: the limiter, the pair guard, claims' records of sends, pause mirrors. A
    # timeout is an outage like a refused connection: retried (worker/outages.py).
    WORKER = "worker"
    # A CLI command or an API route: pause, resume, cancel, a sender's rate, the demo's
    # clean-up, `send`'s check before it stores anything, /readyz. It gives up and says so.
    COMMAND = "command"
    # A look that must not hold up what asked for it: a scrape of /metrics, or a CLI command
    # checking that beat runs.
    GLANCE = "glance"
    # The dashboard's session store: a page waits no longer than this for its session.
    SESSIONS = "sessions"


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float  # seconds to connect
    reply: float  # seconds to wait for each reply


# Always given: a client made without them waits as its redis-py version decides (for ever
# before 8.0, 5 s since).
TIMEOUTS: dict[Purpose, Timeouts] = {
    Purpose.WORKER: Timeouts(connect=5.0, reply=5.0),
    Purpose.COMMAND: Timeouts(connect=2.0, reply=5.0),
    Purpose.GLANCE: Timeouts(connect=1.0, reply=1.0),
    Purpose.SESSIONS: Timeouts(connect=1.0, reply=0.5),
}


def make_redis(url: str, *, purpose: Purpose) -> redis.Redis:
    """A client of the Redis at `url` with the timeouts of `purpose`; close it when done."""
    timeouts = TIMEOUTS[purpose]
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeouts.connect, socket_timeout=timeouts.reply
    )


def make_async_redis(url: str, *, purpose: Purpose) -> aioredis.Redis:
    """The same as `make_redis`, for an asyncio event loop; `aclose` it when done."""
    timeouts = TIMEOUTS[purpose]
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=timeouts.connect, socket_timeout=timeouts.reply
    )
