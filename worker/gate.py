"""What one request waits for before it leaves, none of it an attempt or a failure: its
recipient's pair free (worker/pairs.py), a rate-limit token and an in-flight slot
(worker/limiter.py), and the database's evidence that it may leave (worker/leaving.py).

A pause, a halt or a sweeper that settled the claim ends the wait with Stopped; the
message's deadline (its campaign's, or its window's end) passing during it, with Expired.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from redis.exceptions import RedisError

from stickerq.metrics import LIMITER_WAIT_SECONDS
from stickerq.models import utcnow
from stickerq.worker.claims import ClaimedMessage
from stickerq.worker.inflight import ClaimKeys
from stickerq.worker.leaving import LeavingRecord
from stickerq.worker.limiter import RateLimiter
from stickerq.worker.pairs import PairGuard, PairWait

log = logging.getLogger(__name__)


class Stopped(Exception):
    """A pause (ours or another worker's) stops the batch before this attempt."""


class Expired(Exception):
    """The message's deadline passed before this attempt: it is not made."""


def deadline_of(valid_until: datetime | None, message: ClaimedMessage) -> datetime | None:
    """A message's deadline: its campaign's, or its window's end when that comes first."""
    window_end = message.window_ends_at
    if window_end is None or (valid_until is not None and valid_until <= window_end):
        return valid_until
    return window_end


class RequestGate:
    """The waits of one sender's batch: shared by its requests, each passing on its own."""

    def __init__(
        self,
        *,
        sender: str,
        rate_per_second: float,
        valid_until: datetime | None,
        block_keys: tuple[str, ...],
        claim: ClaimKeys,
        limiter: RateLimiter,
        slots: asyncio.Semaphore,
        leaving: LeavingRecord,
        pairs: PairGuard | None,
        stop: asyncio.Event,
    ) -> None:
        self.sender = sender
        self.rate_per_second = rate_per_second
        self.valid_until = valid_until
        self.block_keys = block_keys  # any of them set: nothing more of the batch goes
        self.claim = claim
        self.limiter = limiter
        self.slots = slots  # the process's requests in flight, shared by its batches
        self.leaving = leaving
        self.pairs = pairs  # None: the pair guard is off
        self.stop = stop

    async def through(self, message: ClaimedMessage, leaving_recorded: bool) -> bool:
        """Wait until the message may go. On return it holds a token and a slot (the caller
        releases the slot after the request). Returns that its leaving is recorded."""
        owner = f"{self.claim.token}:{message.pk}"
        while True:  # twice only when another owner took the pair while the token was awaited
            reserved_at = await self._until_pair_free(message, owner)
            leaving_recorded = await self._take_token(message, leaving_recorded)
            if await self._pair_confirmed(message, owner, reserved_at):
                return leaving_recorded
            self.slots.release()  # a wasted token: the request waits for its pair again

    async def _until_pair_free(self, message: ClaimedMessage, owner: str) -> float:
        """Wait, with no token or slot held, until no other message to this recipient from
        this sender went out within the pair interval."""
        if self.pairs is None:
            return 0.0
        deadline = deadline_of(self.valid_until, message)
        seconds_left = None if deadline is None else (deadline - utcnow()).total_seconds()
        wait, reserved_at = await self.pairs.reserve(
            self.sender, message.recipient, owner, self.stop, seconds_left
        )
        if wait is PairWait.STOPPED:
            raise Stopped
        if wait is PairWait.EXPIRED:
            raise Expired
        return reserved_at

    async def _pair_confirmed(
        self, message: ClaimedMessage, owner: str, reserved_at: float
    ) -> bool:
        if self.pairs is None:
            return True
        try:
            return await self.pairs.confirm(self.sender, message.recipient, owner, reserved_at)
        except RedisError:  # not sent without the pair held: the reservation waits for Redis
            log.warning("could not hold the pair in Redis before the request; waiting")
            return False
        except BaseException:  # cancelled: the slot is not used
            self.slots.release()
            raise

    async def _take_token(self, message: ClaimedMessage, leaving_recorded: bool) -> bool:
        """Wait for a rate-limit token and an in-flight slot (held on return)."""
        leaving: asyncio.Future[bool] | None = None

        def record_leaving() -> None:
            # Once it holds an in-flight slot: the database's evidence that it may leave is
            # written while the token is awaited (worker/leaving.py).
            nonlocal leaving
            if not leaving_recorded:
                leaving = self.leaving.may_leave(self.claim.token, message.pk)

        # The same atomic step records the message as possibly sent in Redis (see
        # worker/inflight.py).
        asked_at = time.perf_counter()
        granted = await self.limiter.take(
            self.sender,
            self.rate_per_second,
            self.block_keys,
            mark=(self.claim.sent, str(message.pk)),
            slots=self.slots,
            stop=self.stop,
            slot_held=record_leaving,
        )
        if not granted:
            if leaving is not None:
                leaving.cancel()
            self.stop.set()
            raise Stopped
        LIMITER_WAIT_SECONDS.observe(time.perf_counter() - asked_at)
        if leaving is None:
            return leaving_recorded
        await self._until_recorded(leaving)
        return True

    async def _until_recorded(self, leaving: asyncio.Future[bool]) -> None:
        """Wait for the evidence, holding the granted token and slot; without it, or when a
        sweeper has settled the claim meanwhile, nothing more of this batch is sent."""
        try:
            ours = await leaving
        except Exception:
            log.exception("could not record what may leave: the batch stops unsent")
            ours = False
        except BaseException:
            self.slots.release()
            raise
        if not ours:
            self.slots.release()
            self.stop.set()
            raise Stopped
