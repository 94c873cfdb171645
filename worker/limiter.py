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

A sender's stored rate (`stickerq senders set-rate`) is mirrored in Redis and read by the
script on every ask, so a change reaches every batch already sending within one round trip;
the caller's rate (read from the database at claim time) is the fallback when the mirror is
missing. A changed rate grants no burst: the stored TAT is kept, and the new rate's own
interval and tolerance decide from it (a lower rate waits longer for its next token).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import redis.exceptions

from stickerq.keys import bucket_key, sender_rate_key
from stickerq.masking import mask_phone
from stickerq.worker.backoff import backoff_delay

log = logging.getLogger(__name__)

# Redis cannot answer (down, restarting, loading its data): wait and ask again, grant nothing.
REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

_FIRST_BACKOFF = 0.1  # seconds: the first wait's bound, doubling per failed try up to max_backoff
# Tokens due this soon are granted in the same round trip and used at their due time.
LOOK_AHEAD_SECONDS = 0.02
MAX_TOKENS_PER_ASK = 64
# Requests of one sender (per process) that may hold an in-flight slot while they wait for a
# token: enough to fill a round trip, few enough that a throttled sender leaves slots to others.
WAITING_PER_SENDER = 32

# KEYS[1]: the sender's bucket; KEYS[2]: the sender's stored rate (overrides ARGV[1..2] when
# set); KEYS[3]: a send-marker set, or "" for none; KEYS[4..]: block keys (pause mirrors).
# ARGV: emission interval (microseconds per token), burst (tokens), tokens wanted, look-ahead
# (microseconds), then one member per token wanted to add to the marker set on its grant.
# Returns {granted, wait, blocked, first_due, interval}, times in microseconds from now
# (interval: the one used, as a string): `wait` (when
# granted < wanted) until the next token is due; `first_due` when the first granted token is
# due (token i at first_due + i * interval; 0 or less is now). Tokens due within the
# look-ahead are granted at once, so one round trip serves many requests; the caller holds
# each request until its token is due, which keeps every window within the bound below.
# blocked: 1 a block key exists, 2 the marker set is gone (Redis lost its state: nothing may
# be sent under a claim whose record of sends was lost, see worker/inflight.py).
# The bucket key holds TAT in microseconds of Redis time; a missing key is an idle bucket,
# so the key expires as soon as TAT is in the past.
_GCRA = """
if #KEYS > 3 and redis.call('EXISTS', unpack(KEYS, 4)) > 0 then
  return {0, 0, 1, 0, ARGV[1]}
end
if KEYS[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  return {0, 0, 2, 0, ARGV[1]}
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2]) * interval
local rate = tonumber(redis.call('GET', KEYS[2]) or '')
if rate and rate > 0 and rate < math.huge then  -- as burst_tokens() below
  interval = 1000000 / rate
  tolerance = math.min(2 - rate % 1, math.max(1, rate)) * interval
end
local wanted = tonumber(ARGV[3])
local ahead = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local stored = redis.call('GET', KEYS[1])
local tat = stored and tonumber(stored) or now
if tat < now then tat = now end
-- 1 microsecond of slack absorbs float rounding at the instant a token falls due
local free = math.floor((now + ahead + tolerance - tat + 1) / interval)
local granted = math.max(0, math.min(wanted, free))
local first_due = math.ceil(tat + interval - tolerance - now)
if granted > 0 then
  if KEYS[3] ~= '' then redis.call('SADD', KEYS[3], unpack(ARGV, 5, 4 + granted)) end
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat),
             'PX', math.ceil((tat - now) / 1000) + 1)
end
local wait = 0
if granted < wanted then
  wait = math.max(1, math.ceil(tat + interval - tolerance - now - ahead))
end
return {granted, wait, 0, first_due, string.format('%.6f', interval)}
"""


@dataclass(frozen=True)
class Grant:
    """One answer of the limiter."""

    granted: int  # tokens granted (0..requested)
    wait_seconds: float  # when granted < requested: how long until the next token is due
    blocked: bool  # a block key exists (or the marker set is lost): nothing granted
    first_due_seconds: float = 0.0  # when the first granted token falls due (<= 0: now)
    interval_seconds: float = 0.0  # between the granted tokens' due times

    def due_in(self, index: int) -> float:
        """Seconds from the answer until granted token `index` (from 0) may be used."""
        return max(0.0, self.first_due_seconds + index * self.interval_seconds)


def burst_tokens(rate_per_second: float) -> float:
    """The bucket's capacity in tokens: between 1 and 2, never more than one second of tokens.

    2 - frac(rate) makes the window bound N < rate + burst come out at N <= floor(rate) + 1.
    """
    return min(2.0 - rate_per_second % 1.0, max(1.0, rate_per_second))


def _check_rate(rate_per_second: float) -> None:
    if not (math.isfinite(rate_per_second) and rate_per_second > 0):
        raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second!r}")


class RateLimiter:
    """Tokens per sender number from one Redis, shared by every process and host.

    `max_backoff` caps the wait between tries while Redis is unreachable.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        *,
        max_backoff: float = 5.0,
        hold: Callable[[], float] | None = None,
    ) -> None:
        if not max_backoff > 0:
            raise ValueError(f"max_backoff must be more than 0 seconds, got {max_backoff!r}")
        self._redis = redis
        self._prefix = prefix
        self.max_backoff = max_backoff
        # seconds to grant nothing for, asked before each round trip: after a Redis failover
        # (worker/master_watch.py)
        self.hold = hold or (lambda: 0.0)
        self._script = redis.register_script(_GCRA)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def bucket_key(self, sender: str) -> str:
        return bucket_key(self._prefix, sender)

    async def try_acquire(
        self,
        sender: str,
        rate_per_second: float,
        tokens: int = 1,
        block_keys: Sequence[str] = (),
        mark_set: str | None = None,
        members: Sequence[str] = (),
        look_ahead_seconds: float = 0.0,
    ) -> Grant:
        """Ask once for up to `tokens`; raises the redis error if Redis cannot be reached.

        With `mark_set`, granting token i also adds `members[i]` to that set, atomically, and
        nothing is granted if the set does not exist. Tokens due within `look_ahead_seconds`
        are granted now: the caller must not use token i before `grant.due_in(i)`.
        """
        _check_rate(rate_per_second)
        if tokens < 1:
            raise ValueError(f"tokens must be at least 1, got {tokens!r}")
        if mark_set is not None and len(members) != tokens:
            raise ValueError(f"{tokens} tokens need {tokens} members, got {len(members)}")
        interval_us = 1e6 / rate_per_second
        granted, wait_us, blocked, first_due_us, used_us = await self._script(
            keys=[
                self.bucket_key(sender),
                sender_rate_key(self._prefix, sender),
                mark_set or "",
                *block_keys,
            ],
            args=[
                repr(interval_us),
                repr(burst_tokens(rate_per_second)),
                tokens,
                round(look_ahead_seconds * 1e6),
                *(members if mark_set is not None else ()),
            ],
        )
        return Grant(
            granted=int(granted),
            wait_seconds=int(wait_us) / 1e6,
            blocked=bool(blocked),
            first_due_seconds=int(first_due_us) / 1e6 if int(granted) else 0.0,
            interval_seconds=float(used_us) / 1e6 if int(granted) > 1 else 0.0,
        )

    async def take(
        self,
        sender: str,
        rate_per_second: float,
        block_keys: Sequence[str] = (),
        mark: tuple[str, str] | None = None,
        slots: asyncio.Semaphore | None = None,
        stop: asyncio.Event | None = None,
        slot_held: Callable[[], None] | None = None,
    ) -> bool:
        """Wait for one token; False at once when a block key exists (or the marker set is lost),
        and False, with no token taken, once `stop` is set before it reached Redis.

        `mark=(set_key, member)` adds member to the set in the step that grants the token.
        With `slots` (the process's requests in flight), a slot is acquired before the token
        is asked for, so a granted token is used at once, and belongs to the caller on True:
        release it when the request is done. At most WAITING_PER_SENDER requests of one
        sender hold a slot while they wait for a token, so a throttled sender cannot crowd
        out another. `slot_held()` is called once the slot is held, before the token is asked
        for: work that must be done before the request leaves can overlap the wait for the
        token. Waiting is never an error; while Redis is unreachable this keeps trying
        with backoff and grants nothing. Concurrent calls with the same sender, block keys and
        marker set share their round trips to Redis.
        """
        _check_rate(rate_per_second)
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        gate = state.gates.get(sender)
        if gate is None:
            gate = state.gates[sender] = asyncio.Semaphore(WAITING_PER_SENDER)
        key = (sender, rate_per_second, tuple(block_keys), mark[0] if mark else None)
        async with gate:
            if slots is not None:
                await slots.acquire()
            granted = False
            try:
                if stop is not None and stop.is_set():  # set while this waited for its turn
                    return False
                if slot_held is not None:
                    slot_held()
                dispenser = state.dispensers.get(key)
                if dispenser is None:
                    dispenser = state.dispensers[key] = _Dispenser(self, key, state.dispensers)
                waiter = _Waiter(mark[1] if mark else "", loop.create_future())
                dispenser.add(waiter)
                granted = await waiter.granted
                return granted
            finally:
                if slots is not None and not granted:
                    slots.release()

    def refuse_waiting(self, mark_set: str) -> None:
        """Answer False to every request of this loop waiting for a token under this marker
        set (a batch that stops does not wait for its sender's budget first). Those still
        waiting for their turn learn it from their `stop` event."""
        state = self._loops.get(asyncio.get_running_loop())
        for key, dispenser in list(state.dispensers.items() if state else ()):
            if key[3] == mark_set:
                dispenser.refuse_all()


# sender, rate, block keys, marker set
_DispenserKey = tuple[str, float, tuple[str, ...], str | None]


@dataclass(slots=True)
class _LoopState:
    gates: dict[str, asyncio.Semaphore] = field(default_factory=dict)  # per sender
    dispensers: dict[_DispenserKey, _Dispenser] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _Waiter:
    member: str
    granted: asyncio.Future[bool]


class _Dispenser:
    """The requests of one event loop waiting for tokens under one key: one asker at a time
    goes to Redis for up to MAX_TOKENS_PER_ASK of them, and hands each granted token over at
    its due time."""

    def __init__(
        self, limiter: RateLimiter, key: _DispenserKey, registry: dict[_DispenserKey, _Dispenser]
    ) -> None:
        self.limiter = limiter
        self.key = key
        self.sender, self.rate, self.block_keys, self.mark_set = key
        self.registry = registry
        self.waiting: deque[_Waiter] = deque()
        self.asker: asyncio.Task[None] | None = None

    def add(self, waiter: _Waiter) -> None:
        self.waiting.append(waiter)
        if self.asker is None or self.asker.done():
            self.asker = asyncio.get_running_loop().create_task(self._serve())

    def refuse_all(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.granted.done():
                waiter.granted.set_result(False)

    async def _serve(self) -> None:
        failures = 0
        while True:
            while self.waiting and self.waiting[0].granted.done():  # cancelled or refused
                self.waiting.popleft()
            if not self.waiting:
                self.registry.pop(self.key, None)
                return
            held = self.limiter.hold()
            if held > 0:
                await asyncio.sleep(held)
                continue
            asking = list(itertools.islice(self.waiting, MAX_TOKENS_PER_ASK))
            try:
                grant = await self.limiter.try_acquire(
                    self.sender,
                    self.rate,
                    len(asking),
                    self.block_keys,
                    self.mark_set,
                    [waiter.member for waiter in asking],
                    LOOK_AHEAD_SECONDS,
                )
            except REDIS_UNAVAILABLE as exc:
                failures += 1
                delay = backoff_delay(failures, _FIRST_BACKOFF, self.limiter.max_backoff)
                log.warning(
                    "rate limiter cannot reach Redis (%s: %s): nothing is sent from %s; "
                    "trying again in %.1fs (failure %d in a row)",
                    type(exc).__name__,
                    exc,
                    mask_phone(self.sender),
                    delay,
                    failures,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("rate limiter reached Redis again after %d failed tries", failures)
                failures = 0
            if grant.blocked:
                self.refuse_all()
                continue
            if self.limiter.hold() > 0:
                # The master moved during the ask: these tokens may be the new master's,
                # granted while another worker still takes the old one's. Not used.
                continue
            self._hand_out(asking[: grant.granted], grant)
            if grant.granted < len(asking):
                await asyncio.sleep(grant.wait_seconds)

    def _hand_out(self, granted: list[_Waiter], grant: Grant) -> None:
        for waiter in granted:  # still the first ones, unless refuse_all emptied the queue
            if self.waiting and self.waiting[0] is waiter:
                self.waiting.popleft()
        loop = asyncio.get_running_loop()
        for index, waiter in enumerate(granted):
            due = grant.due_in(index)
            if due > 0:
                loop.call_later(due, self._hand_over, waiter)
            else:
                self._hand_over(waiter)

    @staticmethod
    def _hand_over(waiter: _Waiter) -> None:
        if not waiter.granted.done():  # else cancelled or refused meanwhile: a wasted token
            waiter.granted.set_result(True)
