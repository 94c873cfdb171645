"""Every Redis client of stickerq comes from here, as every database engine comes from
`stickerq.db.make_engine`.

A caller names its purpose, and the purpose sets how long the client waits: to connect, and
for each reply. The timeouts live in one table (TIMEOUTS) instead of in each caller. Redis is
never the truth (the database is), so a client that gives up costs a retry or a warning,
never a message.

A target is one Redis (`redis://`, `rediss://`, `unix://`) or a master that Sentinels know by
name (`sentinel://h1:26379;sentinel://h2:26380/0`, Celery's own form, the database number
last). A Sentinel client asks the Sentinels for the master on each new connection, and takes
the one a majority of them name (MajoritySentinel); after a failover the old master's
connections fail (refused, or READONLY once it is a replica, which redis-py turns into a
ConnectionError), and the next one reaches the new master: every user finds it by itself,
with no restart. A connection still open to the old master is closed before it is used
again (stickerq/redis_master.py), and a worker moves before the old master is demoted
(worker/master_watch.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

from stickerq.redis_master import AsyncMasterPool, MasterConnection

SENTINEL_SCHEME = "sentinel://"


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where stickerq's Redis is: a URL, and for a `sentinel://` one the master's name and the
    Sentinels' own password (STICKERQ_REDIS_SENTINEL_MASTER, _PASSWORD)."""

    url: str
    sentinel_master: str | None = None
    sentinel_password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return self.url.startswith(SENTINEL_SCHEME)


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    hosts: list[tuple[str, int]]
    db: int
    password: str | None  # the master's, as in `sentinel://:secret@h1:26379;...`
    username: str | None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """`sentinel://[user:pass@]h1:26379;sentinel://h2:26380/0` (ValueError if it is not)."""
    hosts: list[tuple[str, int]] = []
    db, password, username = 0, None, None
    for part in url.split(";"):
        split = urlsplit(part.strip())
        if split.scheme != "sentinel" or not split.hostname:
            raise ValueError(
                f"{part.split('@')[-1]!r} is not sentinel://host:port: write each Sentinel as "
                "sentinel://host:port, separated by `;`, the database number last "
                "(sentinel://h1:26379;sentinel://h2:26380/0)"
            )
        hosts.append((split.hostname, split.port or 26379))
        if split.password is not None:
            password = unquote(split.password)
            username = unquote(split.username) if split.username else None
        if split.path.strip("/"):
            if not split.path.strip("/").isdigit():
                raise ValueError(f"the database number must be an integer, not {split.path!r}")
            db = int(split.path.strip("/"))
    return SentinelUrl(hosts, db, password, username)


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


class MajoritySentinel(redis.sentinel.Sentinel):
    """The master a majority of the Sentinels name, not the first answer: right after a
    failover some Sentinels still name the old master (they learn within seconds), and two
    clients that asked two Sentinels would write to two masters, two rate limiters among
    them. No majority: no master (MasterNotFoundError, an outage the callers retry)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        votes: Counter[tuple[str, int]] = Counter()
        for sentinel in self.sentinels:
            try:
                masters: Any = sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                continue
            _vote(votes, masters.get(service_name))
        return _elected(votes, len(self.sentinels), service_name)


class AsyncMajoritySentinel(aiosentinel.Sentinel):
    """MajoritySentinel for an asyncio event loop."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        votes: Counter[tuple[str, int]] = Counter()
        for sentinel in self.sentinels:
            try:
                masters: Any = await sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                continue
            _vote(votes, masters.get(service_name))
        return _elected(votes, len(self.sentinels), service_name)


def _vote(votes: Counter[tuple[str, int]], state: dict[str, Any] | None) -> None:
    """One Sentinel's word, when it takes its master for a working master (redis-py's own
    check_master_state: role master, neither subjectively nor objectively down)."""
    if state and state["is_master"] and not (state["is_sdown"] or state["is_odown"]):
        votes[(state["ip"], int(state["port"]))] += 1


def _elected(votes: Counter[tuple[str, int]], sentinels: int, name: str) -> tuple[str, int]:
    if votes:
        address, count = votes.most_common(1)[0]
        if 2 * count > sentinels:
            return address
    raise redis.sentinel.MasterNotFoundError(
        f"no master of {name!r} named by a majority of the {sentinels} Sentinels: {dict(votes)}"
    )


def make_redis(target: RedisTarget | str, *, purpose: Purpose) -> redis.Redis:
    """A client of the Redis (or Sentinel master) at `target` with the timeouts of `purpose`;
    close it when done."""
    target = _target(target)
    timeouts = _timeouts(purpose)
    if not target.is_sentinel:
        return redis.Redis.from_url(target.url, **timeouts)
    found = parse_sentinel_url(target.url)
    sentinels = MajoritySentinel(
        found.hosts, sentinel_kwargs=_sentinel_kwargs(target, timeouts), **timeouts
    )
    master: redis.Redis = sentinels.master_for(
        _master(target), connection_class=MasterConnection, **_master_kwargs(found), **timeouts
    )
    return master


def make_async_redis(target: RedisTarget | str, *, purpose: Purpose) -> aioredis.Redis:
    """The same as `make_redis`, for an asyncio event loop; `aclose` it when done."""
    target = _target(target)
    timeouts = _timeouts(purpose)
    if not target.is_sentinel:
        return aioredis.Redis.from_url(target.url, **timeouts)
    found = parse_sentinel_url(target.url)
    sentinels = AsyncMajoritySentinel(
        found.hosts, sentinel_kwargs=_sentinel_kwargs(target, timeouts), **timeouts
    )
    master: aioredis.Redis = sentinels.master_for(
        _master(target),
        connection_pool_class=AsyncMasterPool,
        **_master_kwargs(found),
        **timeouts,
    )
    return master


def celery_transport_options(target: RedisTarget) -> dict[str, Any]:
    """What kombu's Redis transport needs besides the URL: for Sentinel, the master's name
    and the Sentinels' password (kombu's `sentinel://` transport reads both from here)."""
    if not target.is_sentinel:
        return {}
    options: dict[str, Any] = {"master_name": _master(target)}
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return options


def _target(target: RedisTarget | str) -> RedisTarget:
    return RedisTarget(target) if isinstance(target, str) else target


def _timeouts(purpose: Purpose) -> dict[str, Any]:
    timeouts = TIMEOUTS[purpose]
    return {"socket_connect_timeout": timeouts.connect, "socket_timeout": timeouts.reply}


def _master(target: RedisTarget) -> str:
    if not target.sentinel_master:
        raise ValueError(
            "a sentinel:// STICKERQ_REDIS_URL needs STICKERQ_REDIS_SENTINEL_MASTER, the name "
            "the Sentinels monitor the master by (`sentinel monitor <name> ...`)"
        )
    return target.sentinel_master


def _sentinel_kwargs(target: RedisTarget, timeouts: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: the same timeouts, their own password."""
    kwargs: dict[str, Any] = dict(timeouts)
    if target.sentinel_password:
        kwargs["password"] = target.sentinel_password
    return kwargs


def _master_kwargs(found: SentinelUrl) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"db": found.db}
    if found.password is not None:
        kwargs["password"] = found.password
    if found.username is not None:
        kwargs["username"] = found.username
    return kwargs
