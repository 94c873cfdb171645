"""The send path for one claimed batch: through the gate (pair, token, slot), POST, classify,
retry WA500.

Runs on the worker process's event loop with many requests in flight. It writes no results
(the caller claims before and writes them after, in bulk), but a message's first request
waits for the database's mark that it may leave (worker/leaving.py, through the gate).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stickerq.keys import campaign_pause_key
from stickerq.logs import ids
from stickerq.masking import mask_phone
from stickerq.message_status import EXPIRED_DETAIL, WINDOW_ENDED_DETAIL
from stickerq.models import utcnow
from stickerq.pauses import PauseRequest, mirror_key, pause_keys
from stickerq.states import MessageStatus, PauseScope
from stickerq.worker.claims import ClaimedMessage
from stickerq.worker.gate import Expired, RequestGate, Stopped, deadline_of
from stickerq.worker.inflight import ClaimKeys
from stickerq.worker.kaleyra import KaleyraClient, Reply, StickerRequest
from stickerq.worker.leaving import LeavingRecord
from stickerq.worker.limiter import RateLimiter
from stickerq.worker.outcomes import FINAL_STATUS, Action, Outcome, classify
from stickerq.worker.pairs import PairGuard
from stickerq.worker.results import AttemptRecord, MessageResult
from stickerq.worker.retries import RetryPolicy, with_quick_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendContext:
    """What every message of one campaign's batch shares."""

    campaign_id: int
    sid: str
    sender: str
    sticker: dict[str, str]
    wa_source: str
    rate_per_second: float
    policy: RetryPolicy
    connect_retry_seconds: float
    redis_prefix: str
    valid_until: datetime | None = None  # the campaign's deadline: no attempt after it


@dataclass(slots=True)
class BatchOutcome:
    # Taken by the batch's writer while the batch runs, so results reach the database as
    # they come; at the end, every result of the batch.
    results: list[MessageResult] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)  # claimed, never tried: release them
    pause: PauseRequest | None = None


@dataclass(slots=True)
class _Progress:
    records: list[AttemptRecord] = field(default_factory=list)
    last_reply: Reply | None = None
    leaving_recorded: bool = False  # the database knows it may leave under this claim


class BatchSender:
    def __init__(
        self,
        ctx: SendContext,
        client: KaleyraClient,
        limiter: RateLimiter,
        redis: aioredis.Redis,
        claim: ClaimKeys,
        slots: asyncio.Semaphore,
        leaving: LeavingRecord,
        pairs: PairGuard | None = None,
    ) -> None:
        self.ctx = ctx
        self.slots = slots  # the process's requests in flight, shared by its batches
        self.client = client
        self.limiter = limiter
        self.redis = redis
        self.claim = claim
        # Any of these stops the batch before its next request: the account's or sender's
        # pause, the campaign's pause or cancel, and the sweeper having declared us dead.
        self.block_keys = (
            *pause_keys(ctx.redis_prefix, ctx.sid, ctx.sender),
            campaign_pause_key(ctx.redis_prefix, ctx.campaign_id),
            claim.dead,
        )
        self.stop = asyncio.Event()
        self.gate = RequestGate(
            sender=ctx.sender,
            rate_per_second=ctx.rate_per_second,
            valid_until=ctx.valid_until,
            block_keys=self.block_keys,
            claim=claim,
            limiter=limiter,
            slots=slots,
            leaving=leaving,
            pairs=pairs,
            stop=self.stop,
        )
        self.outcome = BatchOutcome()
        self.results_ready = asyncio.Event()  # wakes the batch's writer

    def take_results(self) -> list[MessageResult]:
        """The results finished so far and not yet taken."""
        self.results_ready.clear()
        taken, self.outcome.results = self.outcome.results, []
        return taken

    async def send(self, claimed: list[ClaimedMessage]) -> BatchOutcome:
        await asyncio.gather(*(self._send_one(message) for message in claimed))
        return self.outcome

    def halt(self) -> None:
        """Stop before the next request: what waits for a token stays unsent (on the loop)."""
        self.stop.set()
        self.limiter.refuse_waiting(self.claim.sent)

    async def _send_one(self, message: ClaimedMessage) -> None:
        progress = _Progress()
        request = StickerRequest(
            sender=self.ctx.sender,
            recipient=message.recipient,
            sticker=self.ctx.sticker,
            ref=message.ref,
            ref1=message.ref1,
            ref2=message.ref2,
            wa_source=self.ctx.wa_source,
        )

        async def attempt() -> Outcome:
            return await self._attempt(message, request, progress)

        try:
            outcome = await with_quick_retries(self.ctx.policy, message.delayed_retries, attempt)
        except Expired:
            outcome = Outcome(Action.FAIL, reason=EXPIRED_DETAIL)
            result = self._result(message, outcome, progress)
            self.outcome.results.append(self._expired(result, message))
            self.results_ready.set()
            return
        except Stopped:
            if not progress.records:
                self.outcome.unsent.append(message.pk)
                return
            outcome = Outcome(Action.RETRY, reason="stopped by a pause between attempts")
        except Exception as exc:  # a bug of ours must not leave the message `sending`
            log.exception(
                "message %s: unexpected error while sending",
                message.pk,
                extra=ids(self.ctx.campaign_id, message.pk),
            )
            outcome = Outcome(Action.UNKNOWN, reason=f"internal error: {type(exc).__name__}")
        self.outcome.results.append(self._result(message, outcome, progress))
        self.results_ready.set()

    async def _attempt(
        self, message: ClaimedMessage, request: StickerRequest, progress: _Progress
    ) -> Outcome:
        if self.stop.is_set():
            raise Stopped
        if self._past_deadline(message):  # no token spent on it
            raise Expired
        progress.leaving_recorded = await self.gate.through(message, progress.leaving_recorded)
        try:
            started_at = utcnow()
            if self._past_deadline(message, started_at):  # the wait for a token outlasted it
                raise Expired
            reply = await self.client.send_sticker(request)
        finally:
            self.slots.release()
        outcome = classify(reply)
        progress.last_reply = reply
        if outcome.action is not Action.NOT_SENT:
            progress.records.append(
                AttemptRecord(
                    number=message.attempts + len(progress.records) + 1,
                    started_at=started_at,
                    latency_ms=reply.latency_ms,
                    http_status=reply.http_status,
                    code=reply.code,
                    action=outcome.action,
                    detail=outcome.reason[:300] if outcome.action is not Action.SENT else None,
                )
            )
        if outcome.pause is not None:
            await self._pause(PauseRequest(outcome.pause, reply.code or "?", outcome.reason))
        if outcome.action is not Action.SENT:
            recipient = mask_phone(message.recipient)
            log.info(
                "message %s to %s: %s (%s)",
                message.pk,
                recipient,
                outcome.action,
                reply.code or reply.http_status or reply.failure,
                extra=ids(
                    self.ctx.campaign_id,
                    message.pk,
                    recipient=recipient,
                    code=reply.code,
                    action=outcome.action,
                ),
            )
        return outcome

    async def _pause(self, request: PauseRequest) -> None:
        """Stop this batch and, through the Redis mirror, every other worker at once."""
        self.stop.set()
        if self.outcome.pause is None:
            self.outcome.pause = request
            key = mirror_key(self.ctx.redis_prefix, request.scope, self.ctx.sid, self.ctx.sender)
            try:
                await self.redis.set(key, request.code)
            except RedisError:  # the database pause (written after the batch) still holds
                log.warning("could not mirror the pause in Redis; other workers see it later")
            held = "" if request.scope == PauseScope.ACCOUNT else f" {mask_phone(self.ctx.sender)}"
            log.warning(
                "pausing %s%s of %s: %s",
                request.scope,
                held,
                self.ctx.sid,
                request.code,
                extra=ids(self.ctx.campaign_id, code=request.code),
            )

    def _result(
        self, message: ClaimedMessage, outcome: Outcome, progress: _Progress
    ) -> MessageResult:
        reply = progress.last_reply
        now = utcnow()
        result = MessageResult(
            pk=message.pk,
            status=MessageStatus.PENDING,
            attempts=progress.records,
            total_attempts=message.attempts + len(progress.records),
            delayed_retries=message.delayed_retries,
            code=reply.code if reply and outcome.action is not Action.SENT else None,
            http_status=reply.http_status if reply else None,
            detail=None if outcome.action is Action.SENT else outcome.reason[:300],
        )
        if outcome.action in FINAL_STATUS:
            result.status = FINAL_STATUS[outcome.action]
            result.message_id = (
                reply.message_id if outcome.action is Action.SENT and reply else None
            )
        elif outcome.action is Action.NOT_SENT:
            result.next_attempt_at = now + timedelta(seconds=self.ctx.connect_retry_seconds)
        elif self.stop.is_set():
            pass  # WA500, then a pause or cancel stopped the batch: pending, for the resume
        else:
            due = self.ctx.policy.next_due(message.delayed_retries, now)
            if due is not None and self._past_deadline(message, due):
                return self._expired(result, message)  # its retry would come after it
            if due is None:
                result.status = MessageStatus.FAILED
                result.detail = f"WA500 retries exhausted after {result.total_attempts} attempts"
            else:
                result.next_attempt_at = due
                result.delayed_retries += 1
        return result

    def _past_deadline(self, message: ClaimedMessage, now: datetime | None = None) -> bool:
        deadline = deadline_of(self.ctx.valid_until, message)
        return deadline is not None and (now or utcnow()) >= deadline

    def _expired(self, result: MessageResult, message: ClaimedMessage) -> MessageResult:
        """Not sent by its deadline: `outside_window` when its window's end came first,
        `expired` when the campaign's deadline did (or both at once)."""
        window_end, valid_until = message.window_ends_at, self.ctx.valid_until
        if window_end is not None and (valid_until is None or window_end < valid_until):
            result.status, result.detail = MessageStatus.OUTSIDE_WINDOW, WINDOW_ENDED_DETAIL
        else:
            result.status, result.detail = MessageStatus.EXPIRED, EXPIRED_DETAIL
        result.next_attempt_at, result.message_id = None, None
        return result
