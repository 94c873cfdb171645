"""The global rate limit: one limit per sender number, shared through Redis by every worker.

One Lua script (GCRA, Redis server time) decides in one round trip whether a sender may send
now, how many tokens it gets and how long to wait otherwise; it also refuses while a pause
mirror key exists. Without Redis nothing is granted: sending stops until Redis is back.

Why the bucket holds about two tokens, not a whole second of them: with GCRA, grants at
t_i <= ... <= t_j move the key's TAT (theoretical arrival time) up by N/rate, from at least
t_i to at most t_j + burst/rate, so any window shorter than one second holds N < rate + burst
grants. A bucket of a whole second (burst = rate) would let 2 * rate - 1 through the first
second after every idle spell (full bucket, then refill); `burst_tokens` keeps every window
at or below floor(rate) + 1, including right after idle, and is never more than one second
of tokens.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions

from stickerq.masking import mask_phone

log = logging.getLogger(__name__)

# Redis cannot answer (down, restarting, loading its data): wait and ask again, grant nothing.
REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

_FIRST_BACKOFF = 0.1  # seconds; doubles per failed try up to max_backoff

# KEYS[1]: the sender's bucket; KEYS[2]: a send-marker set, or "" for none;
# KEYS[3..]: block keys (pause mirrors).
# ARGV: emission interval (microseconds per token), burst (tokens), tokens wanted, and the
# member to add to the marker set on a grant.
# Returns {granted, wait in microseconds (when granted < wanted), blocked (0/1/2)}:
# 1 a block key exists, 2 the marker set is gone (Redis lost its state: nothing may be sent
# under a claim whose record of sends was lost, see worker/inflight.py).
# The bucket key holds TAT in microseconds of Redis time; a missing key is an idle bucket,
# so the key expires as soon as TAT is in the past.
_GCRA = """
if #KEYS > 2 and redis.call('EXISTS', unpack(KEYS, 3)) > 0 then
  return {0, 0, 1}
end
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {0, 0, 2}
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2]) * interval
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local stored = redis.call('GET', KEYS[1])
local tat = stored and tonumber(stored) or now
if tat < now then tat = now end
-- 1 microsecond of slack absorbs float rounding at the instant a token falls due
local free = math.floor((now + tolerance - tat + 1) / interval)
local granted = math.max(0, math.min(wanted, free))
if granted > 0 then
  if KEYS[2] ~= '' then redis.call('SADD', KEYS[2], ARGV[4]) end
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat),
             'PX', math.ceil((tat - now) / 1000) + 1)
end
local wait = 0
if granted < wanted then
  wait = math.max(1, math.ceil(tat + interval - tolerance - now))
end
return {granted, wait, 0}
"""


@dataclass(frozen=True)
class Grant:
    """One answer of the limiter."""

    granted: int  # tokens granted now (0..requested)
    wait_seconds: float  # when granted < requested: how long until the next token is due
    blocked: bool  # a block key exists (or the marker set is lost): nothing granted


def burst_tokens(rate_per_second: float) -> float:
    """The bucket's capacity in tokens: between 1 and 2, never more than one second of tokens.

    2 - frac(rate) makes the window bound N < rate + burst come out at N <= floor(rate) + 1.
    """
    return min(2.0 - rate_per_second % 1.0, max(1.0, rate_per_second))


def backoff_delay(failures: int, cap: float) -> float:
    """Capped exponential backoff with jitter after `failures` failed tries in a row."""
    return random.uniform(0.5, 1.0) * min(cap, _FIRST_BACKOFF * 2 ** min(failures - 1, 30))


class RateLimiter:
    """Tokens per sender number from one Redis, shared by every process and host.

    `max_backoff` caps the wait between tries while Redis is unreachable.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str, *, max_backoff: float = 5.0) -> None:
        if not max_backoff > 0:
            raise ValueError(f"max_backoff must be more than 0 seconds, got {max_backoff!r}")
        self._redis = redis
        self._prefix = prefix
        self._max_backoff = max_backoff
        self._script = redis.register_script(_GCRA)
        # One asker per sender and event loop goes to Redis; the others queue here, so a
        # token falling due wakes one request per process, not every waiting one.
        self._askers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def bucket_key(self, sender: str) -> str:
        return f"{self._prefix}limit:{sender}"

    async def try_acquire(
        self,
        sender: str,
        rate_per_second: float,
        tokens: int = 1,
        block_keys: Sequence[str] = (),
        mark: tuple[str, str] | None = None,
    ) -> Grant:
        """Ask once for up to `tokens`; raises the redis error if Redis cannot be reached.

        With `mark=(set_key, member)` a grant also adds member to that set, atomically, and
        nothing is granted if the set does not exist.
        """
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second!r}")
        if tokens < 1:
            raise ValueError(f"tokens must be at least 1, got {tokens!r}")
        granted, wait_us, blocked = await self._script(
            keys=[self.bucket_key(sender), mark[0] if mark else "", *block_keys],
            args=[
                repr(1e6 / rate_per_second),
                repr(burst_tokens(rate_per_second)),
                tokens,
                mark[1] if mark else "",
            ],
        )
        return Grant(granted=int(granted), wait_seconds=int(wait_us) / 1e6, blocked=bool(blocked))

    async def take(
        self,
        sender: str,
        rate_per_second: float,
        tokens: int = 1,
        block_keys: Sequence[str] = (),
        mark: tuple[str, str] | None = None,
    ) -> int:
        """Wait until at least one token is granted and return how many (<= tokens).

        Returns 0 at once when a block key exists. Waiting is never an error; while Redis
        is unreachable this keeps trying with backoff and grants nothing.
        """
        async with self._asker(sender):
            failures = 0
            while True:
                try:
                    grant = await self.try_acquire(
                        sender, rate_per_second, tokens, block_keys, mark
                    )
                except REDIS_UNAVAILABLE as exc:
                    failures += 1
                    delay = backoff_delay(failures, self._max_backoff)
                    log.warning(
                        "rate limiter cannot reach Redis (%s: %s): nothing is sent from %s; "
                        "trying again in %.1fs (failure %d in a row)",
                        type(exc).__name__,
                        exc,
                        mask_phone(sender),
                        delay,
                        failures,
                    )
                    await asyncio.sleep(delay)
                    continue
                if failures:
                    log.info("rate limiter reached Redis again after %d failed tries", failures)
                    failures = 0
                if grant.blocked:
                    return 0
                if grant.granted:
                    return grant.granted
                await asyncio.sleep(grant.wait_seconds)

    def _asker(self, sender: str) -> asyncio.Lock:
        locks = self._askers.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(sender, asyncio.Lock())
