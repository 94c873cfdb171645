"""One `send_batch` task's work, on the worker process's event loop: claim, send, write,
settle.

Claim in one short transaction, send with no transaction open, and write the results in bulk
as they arrive; a pause stops the batch and puts its unsent messages back to `pending`. Each
batch is one coroutine; its database work runs in the runtime's few database threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.campaign_status import Move, complete_if_settled, move_campaign
from stickerq.errors import ConfigurationError
from stickerq.keys import campaign_pause_key
from stickerq.logs import ids
from stickerq.metrics import CLAIMS_IN_FLIGHT, MESSAGES
from stickerq.models import Campaign, utcnow
from stickerq.pauses import PauseRequest, account_pauses, record_pause, restore_mirror
from stickerq.states import CampaignStatus, MessageStatus, PauseScope
from stickerq.worker.claims import ClaimedMessage, HeldSenders, cancel_unsent, claim, release
from stickerq.worker.expiry import expire_late
from stickerq.worker.inflight import (
    ClaimKeys,
    beat_forever,
    close_claim,
    forget_sent,
    new_claim,
    open_claim,
)
from stickerq.worker.outages import until_database_is_back, until_redis_is_back
from stickerq.worker.results import MessageResult, write_results
from stickerq.worker.runtime import Runtime
from stickerq.worker.send_metrics import record_results
from stickerq.worker.sender_groups import SenderGroups, by_sender
from stickerq.worker.sender_rates import mirror_rate, sender_rate
from stickerq.worker.sending import BatchOutcome, BatchSender, SendContext
from stickerq.worker.suppressed import drop_suppressed
from stickerq.worker.webhook_events import add_failed_events
from stickerq.worker.window_check import keep_in_window

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25  # the longest a finished result waits for the database
# The least time between two writes of one batch: results arriving one by one are written a
# few at a time instead of a transaction each.
FLUSH_GAP_SECONDS = 0.05
# How long a batch waits for its campaign's share of this process before going back to the
# queue (where a worker with room, or another campaign's batch, goes first).
ROOM_PATIENCE_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class RunningBatch:
    campaign_id: int
    keys: ClaimKeys
    senders: SenderGroups  # one BatchSender per number the batch's messages go out from
    sending: asyncio.Task[BatchOutcome]
    heartbeat: asyncio.Task[None]


# A claimed batch: each sender's context and its messages.
Claimed = list[tuple[SendContext, list[ClaimedMessage]]]


async def send_batch(runtime: Runtime, campaign_id: int, message_pks: Sequence[int]) -> bool:
    """The task's work: claim the batch and start it, then return while its requests go out.

    The batch goes on as a task of the process's loop, so the worker takes its next batch at
    once: batches overlap and share the process's requests in flight, and a sender waiting
    for its budget does not hold a worker that another could use. False: this process
    already runs its share of this campaign's batches, and the batch should go back to the
    queue.
    """
    room = runtime.batches
    if not await room.enter(campaign_id, ROOM_PATIENCE_SECONDS):
        return False
    try:
        batch = await start_batch(runtime, campaign_id, message_pks)
    except BaseException:
        room.leave(campaign_id)
        raise
    if batch is None:
        room.leave(campaign_id)
    else:
        room.hand_over(campaign_id, finish_batch(runtime, batch), batch.senders.halt)
    return True


async def start_batch(
    runtime: Runtime, campaign_id: int, message_pks: Sequence[int]
) -> RunningBatch | None:
    """Claim the messages and start sending them (None: nothing claimed)."""
    keys = new_claim(runtime.settings.redis_prefix)
    ttl = runtime.settings.claim_heartbeat_seconds
    await until_redis_is_back(open_claim)(runtime.aredis, keys, ttl)
    heartbeat = asyncio.create_task(beat_forever(runtime.aredis, keys, ttl))
    try:
        claimed = await runtime.in_database(
            until_database_is_back(_claim), runtime, campaign_id, message_pks, keys
        )
    except BaseException:
        heartbeat.cancel()
        raise
    if not claimed:  # a redelivery, say: nothing of ours to keep a record of
        heartbeat.cancel()
        await close_claim(runtime.aredis, keys)
        return None
    senders = SenderGroups(
        [
            BatchSender(
                ctx,
                runtime.client_for(ctx.sid),
                runtime.limiter,
                runtime.aredis,
                keys,
                runtime.slots,
                runtime.leaving,
                runtime.pairs,
            )
            for ctx, _ in claimed
        ]
    )
    groups = [messages for _, messages in claimed]
    sending: asyncio.Task[BatchOutcome] = asyncio.create_task(senders.send(groups))
    CLAIMS_IN_FLIGHT.inc()  # down again when finish_batch ends
    return RunningBatch(campaign_id, keys, senders, sending, heartbeat)


async def finish_batch(runtime: Runtime, batch: RunningBatch) -> BatchOutcome:
    """Write the results as they arrive, then settle the batch and close its claim."""
    keys, senders = batch.keys, batch.senders
    written: list[MessageResult] = []

    async def flush() -> None:
        results = senders.take_results()
        # Read after the results: a sender sets a pause before it adds the result that
        # caused it, so a parked message is never written without its pause.
        pauses = senders.new_pauses()
        if results or pauses:
            stored = [(ctx, pause) for _, ctx, pause in pauses]
            await runtime.in_database(
                until_database_is_back(_flush), runtime, batch.campaign_id, keys, results, stored
            )
        senders.pauses_stored([index for index, _, _ in pauses])
        written.extend(results)
        record_results(results)
        if results:
            with contextlib.suppress(redis.RedisError):
                await forget_sent(runtime.aredis, keys, [result.pk for result in results])

    try:
        while not batch.sending.done():
            # Write results as they come: what a killed worker leaves `unknown` is then only
            # what was in flight (and the few answers of the last instant).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(senders.results_ready.wait(), FLUSH_SECONDS)
            await flush()
            await asyncio.wait([batch.sending], timeout=FLUSH_GAP_SECONDS)
        outcome = batch.sending.result()
        await flush()
        await runtime.in_database(
            until_database_is_back(_record), runtime, batch.campaign_id, keys, outcome
        )
    finally:
        batch.heartbeat.cancel()
        CLAIMS_IN_FLIGHT.dec()
    await close_claim(runtime.aredis, keys)
    outcome.results.extend(written)
    return outcome


def _flush(
    runtime: Runtime,
    campaign_id: int,
    keys: ClaimKeys,
    results: list[MessageResult],
    pauses: list[tuple[SendContext, PauseRequest]],
) -> None:
    """Write what finished so far, with the pause it caused (claims read pauses from the
    database: at once, not when the batch ends), in one transaction. The caller then drops
    the results from the claim's record of possible sends: a worker killed now leaves
    `unknown` only what was really in flight."""
    with runtime.sessions.begin() as session:
        for ctx, pause in pauses:
            record_pause(session, pause, ctx.sid, ctx.sender, campaign_id)
        write_results(session, keys.token, results)
        add_failed_events(session, campaign_id, results)
        _count_wa400_run(runtime, session, campaign_id, results)


def _claim(
    runtime: Runtime, campaign_id: int, message_pks: Sequence[int], keys: ClaimKeys
) -> Claimed:
    """Claim what may go now: nothing while the account or the campaign's sender is paused;
    with per-row senders, all but the paused numbers' messages. Each sender's share comes
    with its own context (rate, pause keys)."""
    with runtime.sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            log.warning(
                "campaign %s does not exist; batch dropped", campaign_id, extra=ids(campaign_id)
            )
            return []
        if not runtime.holds(campaign.sid):
            raise ConfigurationError(
                f"campaign {campaign_id} belongs to account {campaign.sid} but this worker "
                f"holds the keys of {', '.join(runtime.clients)} only"
            )
        if campaign.status == CampaignStatus.CANCELLED:
            cancel_unsent(session, campaign_id, message_pks)
            return []
        held = _held_senders(runtime, session, campaign)
        if held is None:
            return []
        deadline = campaign.valid_until
        late = deadline is not None and deadline <= utcnow()
        expired = expire_late(session, campaign_id, message_pks) if late else 0
        claimed = [] if late else claim(session, campaign_id, message_pks, keys.token, held)
        sendable = drop_suppressed(session, campaign.sid, keys.token, claimed, runtime.hasher)
        after_suppression = len(sendable)
        if campaign.in_window:
            sendable = keep_in_window(
                session,
                campaign.sender,
                keys.token,
                sendable,
                runtime.settings.window_margin_seconds,
                utcnow(),
            )
        # Expired, suppressed or outside the window here, the batch's last messages may have
        # settled the campaign.
        settled_here = bool(expired) or len(sendable) < len(claimed)
        groups = [
            (_context(runtime, session, campaign, sender), messages)
            for sender, messages in by_sender(sendable, campaign.sender).items()
        ]
    outside_window = after_suppression - len(sendable)
    if outside_window:  # committed: counted as the send path counts its results
        MESSAGES.labels(MessageStatus.OUTSIDE_WINDOW.value, "").inc(outside_window)
    if settled_here and not groups:
        with runtime.sessions.begin() as session:
            complete_if_settled(session, campaign_id)
    return groups


def _held_senders(runtime: Runtime, session: Session, campaign: Campaign) -> HeldSenders | None:
    """The campaign's paused senders (None: nothing of it may be claimed now). Every pause
    found is mirrored again in Redis (a lost mirror heals itself)."""
    pauses = account_pauses(session, campaign.sid)
    # Without Redis the limiter, which needs it too, holds the sends until it is back.
    with contextlib.suppress(redis.RedisError):
        for pause in pauses:
            restore_mirror(
                runtime.redis, runtime.settings.redis_prefix, campaign.sid, pause.sender, pause
            )
    if any(pause.scope == PauseScope.ACCOUNT for pause in pauses):
        return None
    senders = frozenset(pause.sender for pause in pauses)
    if not campaign.senders_per_row and campaign.sender in senders:
        return None
    return HeldSenders(campaign.sender, senders)


def _context(runtime: Runtime, session: Session, campaign: Campaign, sender: str) -> SendContext:
    settings = runtime.settings
    rate = sender_rate(session, sender, settings.rate_per_second)
    with contextlib.suppress(redis.RedisError):  # the limiter waits for Redis anyway
        mirror_rate(runtime.redis, settings.redis_prefix, sender, rate)
    return SendContext(
        campaign_id=campaign.id,
        sid=campaign.sid,
        sender=sender,
        sticker={"id": campaign.sticker_id}
        if campaign.sticker_id
        else {"link": campaign.sticker_link or ""},
        wa_source=campaign.wa_source,
        rate_per_second=rate,
        policy=runtime.policy,
        connect_retry_seconds=settings.connect_retry_seconds,
        redis_prefix=settings.redis_prefix,
        valid_until=campaign.valid_until,
    )


def _record(runtime: Runtime, campaign_id: int, keys: ClaimKeys, outcome: BatchOutcome) -> None:
    """After the last results: unsent messages back, the campaign settled."""
    with runtime.sessions.begin() as session:
        release(session, campaign_id, keys.token, outcome.unsent)
    with runtime.sessions.begin() as session:
        complete_if_settled(session, campaign_id)


def _count_wa400_run(
    runtime: Runtime, session: Session, campaign_id: int, results: Sequence[MessageResult]
) -> None:
    """A long run of WA400s (a bad media id, say) pauses the campaign instead of failing
    every recipient. Batches running at once make the count approximate, never lost."""
    answered = sorted((r for r in results if r.attempts), key=lambda r: r.attempts[-1].started_at)
    if not answered:
        return
    if not any(_is_wa400(r) for r in answered):
        # The common case resets a streak that is mostly 0 already: a plain read first, so
        # that batches writing at once do not queue on the campaign's row lock.
        streak_now = session.scalar(select(Campaign.wa400_streak).where(Campaign.id == campaign_id))
        if not streak_now:
            return
    campaign = session.get(Campaign, campaign_id, with_for_update=True)
    assert campaign is not None
    streak = campaign.wa400_streak
    for result in answered:
        streak = streak + 1 if _is_wa400(result) else 0
    campaign.wa400_streak = streak
    threshold = runtime.settings.wa400_pause_threshold
    reason = (
        f"{streak} WA400 (bad payload) answers in a row: check the sticker id or link, then "
        "`stickerq campaigns resume`"
    )
    if streak >= threshold and move_campaign(session, campaign_id, Move.PAUSE, pause_reason=reason):
        with contextlib.suppress(redis.RedisError):  # claims read the status anyway
            runtime.redis.set(
                campaign_pause_key(runtime.settings.redis_prefix, campaign_id), "WA400"
            )
        log.warning(
            "campaign %s paused after %s WA400s in a row",
            campaign_id,
            streak,
            extra=ids(campaign_id, code="WA400"),
        )


def _is_wa400(result: MessageResult) -> bool:
    return result.status == MessageStatus.FAILED and result.code == "WA400"
