"""The pair-rate guard: one sender never sends the same recipient twice within the interval.

WhatsApp allows a recipient about one message every 6 seconds from one business number
(Meta 131056). A Redis key per (sender, recipient), shared by every worker, holds the pair:

- before its rate-limit token is asked for, a message *reserves* its pair for
  interval + SLACK; while another owner holds it, the message sleeps until the key's TTL
  ends (no token, no in-flight slot, not an attempt), and the sender's other recipients go on;
- once the token is granted, and only when more than SLACK passed since the reservation, the
  pair is *confirmed*: its key set again for the interval, from just before the request.

So two requests to one pair are always at least the interval apart: a request made within SLACK
of its reservation is followed by the next at least interval + SLACK after the reservation.
Every call of a loop tick goes to Redis in one script call, so a batch's first reservations
cost one round trip, and most messages need no confirmation. The owner is the message under
its claim: the quick retries of one message (after a WA500, nothing delivered) are not held.
Without Redis nothing is reserved, so nothing is sent (as with the limiter).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from stickerq.keys import pair_key
from stickerq.masking import mask_phone
from stickerq.worker.backoff import backoff_delay
from stickerq.worker.limiter import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

# A reservation outlives the interval by this much, so a request made within it of the
# reservation needs no second round trip.
SLACK_SECONDS = 0.5
_FIRST_BACKOFF = 0.1

# KEYS: pair keys; ARGV: owner and milliseconds to hold, per key. Returns, per key, 0 when the
# key is now the owner's for that long, else the milliseconds until another owner's hold ends.
_HOLD = """
local out = {}
for i, key in ipairs(KEYS) do
  local owner, px = ARGV[2 * i - 1], ARGV[2 * i]
  local holder = redis.call('GET', key)
  if not holder or holder == owner then
    redis.call('SET', key, owner, 'PX', px)
    out[i] = 0
  else
    local ttl = redis.call('PTTL', key)
    if ttl < 1 then ttl = tonumber(px) end
    out[i] = ttl
  end
end
return out
"""


class PairWait(enum.Enum):
    FREE = "free"  # reserved: ask for the token now
    STOPPED = "stopped"  # the batch's stop event was set while the pair was busy
    EXPIRED = "expired"  # the message's deadline came while the pair was busy


@dataclass(slots=True)
class _Ask:
    key: str
    owner: str
    hold_ms: int
    answer: asyncio.Future[int]


@dataclass(slots=True)
class _Tick:
    asks: list[_Ask] = field(default_factory=list)


class PairGuard:
    """Holds (sender, recipient) pairs in Redis for `interval_seconds`, for every worker."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str, interval_seconds: float, max_backoff: float = 5.0
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be more than 0, got {interval_seconds!r}")
        self._prefix = prefix
        self.interval = interval_seconds
        self.max_backoff = max_backoff
        self._script = redis.register_script(_HOLD)
        self._tick: _Tick | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def reserve(
        self,
        sender: str,
        recipient: str,
        owner: str,
        stop: asyncio.Event,
        seconds_left: float | None = None,
    ) -> tuple[PairWait, float]:
        """Wait until the pair is this owner's for interval + SLACK; returns FREE with the
        (monotonic) time of the reservation, or why it gave up waiting. `seconds_left` is the
        time until the message's deadline (None: no deadline)."""
        ends = None if seconds_left is None else time.monotonic() + seconds_left
        key = pair_key(self._prefix, sender, recipient)
        hold_ms = round((self.interval + SLACK_SECONDS) * 1000)
        failures = 0
        while not stop.is_set():
            asked_at = time.monotonic()
            try:
                busy_ms = await self._ask(key, owner, hold_ms)
            except REDIS_UNAVAILABLE as exc:
                failures += 1
                wait = backoff_delay(failures, _FIRST_BACKOFF, self.max_backoff)
                log.warning(
                    "pair guard cannot reach Redis (%s): nothing is sent to %s; trying again "
                    "in %.1fs",
                    type(exc).__name__,
                    mask_phone(recipient),
                    wait,
                )
            else:
                if busy_ms == 0:
                    return PairWait.FREE, asked_at
                wait = busy_ms / 1000
            if ends is not None:
                if ends - time.monotonic() <= 0:
                    return PairWait.EXPIRED, asked_at
                wait = min(wait, ends - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        return PairWait.STOPPED, 0.0

    async def confirm(self, sender: str, recipient: str, owner: str, reserved_at: float) -> bool:
        """Hold the pair for the interval from now, just before the request; False when another
        owner took it since (our reservation ran out while the token was awaited). Raises the
        redis error if Redis cannot be reached."""
        if time.monotonic() - reserved_at <= SLACK_SECONDS:
            return True  # the reservation covers a request made now
        key = pair_key(self._prefix, sender, recipient)
        return await self._ask(key, owner, round(self.interval * 1000)) == 0

    async def _ask(self, key: str, owner: str, hold_ms: int) -> int:
        """One key's answer, from one script call shared by every ask of this loop tick."""
        loop = asyncio.get_running_loop()
        tick = self._tick
        if tick is None:
            tick = self._tick = _Tick()
            # Its first step runs after the ready callbacks of this tick: it takes their asks.
            flush = loop.create_task(self._flush(tick))
            self._flushing.add(flush)
            flush.add_done_callback(self._flushing.discard)
        ask = _Ask(key, owner, hold_ms, loop.create_future())
        tick.asks.append(ask)
        return await ask.answer

    async def _flush(self, tick: _Tick) -> None:
        if self._tick is tick:
            self._tick = None
        asks = tick.asks
        args: list[str | int] = []
        for ask in asks:
            args += (ask.owner, ask.hold_ms)
        try:
            answers = await self._script(keys=[ask.key for ask in asks], args=args)
        except Exception as exc:
            for ask in asks:
                if not ask.answer.done():
                    ask.answer.set_exception(exc)
            return
        for ask, answer in zip(asks, answers, strict=True):
            if not ask.answer.done():
                ask.answer.set_result(int(answer))
