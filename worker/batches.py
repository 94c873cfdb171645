"""One `send_batch` task's work, as a plain function: claim, send, write, settle.

Claim in one short transaction, send with no transaction open, then write every result in
bulk; a pause stops the batch and puts its unsent messages back to `pending`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from stickerq.errors import ConfigurationError
from stickerq.models import Campaign
from worker.claims import claim, complete_if_settled, release, write_results
from worker.pauses import active_pause, record_pause, sync_mirror
from worker.runtime import Runtime
from worker.sending import BatchOutcome, BatchSender, SendContext

log = logging.getLogger(__name__)


def process_batch(runtime: Runtime, campaign_id: int, message_ids: Sequence[int]) -> BatchOutcome:
    settings = runtime.settings
    with runtime.sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            log.warning("campaign %s does not exist; batch dropped", campaign_id)
            return BatchOutcome()
        if campaign.sid != settings.kaleyra_sid:
            raise ConfigurationError(
                f"campaign {campaign_id} belongs to account {campaign.sid} but this worker "
                f"holds the key of {settings.kaleyra_sid}"
            )
        pause = active_pause(session, campaign.sid, campaign.sender)
        sync_mirror(runtime.redis, settings.redis_prefix, campaign.sid, campaign.sender, pause)
        if pause is not None:
            return BatchOutcome()
        claimed = claim(session, campaign_id, message_ids)
        ctx = SendContext(
            sid=campaign.sid,
            sender=campaign.sender,
            sticker={"id": campaign.sticker_id}
            if campaign.sticker_id
            else {"link": campaign.sticker_link or ""},
            wa_source=campaign.wa_source,
            rate_per_second=settings.rate_per_second,
            in_flight=settings.in_flight,
            policy=runtime.policy,
            connect_retry_seconds=settings.connect_retry_seconds,
            redis_prefix=settings.redis_prefix,
        )
    if not claimed:
        return BatchOutcome()

    sender = BatchSender(ctx, runtime.client, runtime.limiter, runtime.aredis)
    outcome = runtime.run(sender.send(claimed))

    with runtime.sessions.begin() as session:
        write_results(session, outcome.results)
        release(session, outcome.unsent)
        if outcome.pause is not None:
            record_pause(session, outcome.pause, ctx.sid, ctx.sender, campaign_id)
    with runtime.sessions.begin() as session:
        complete_if_settled(session, campaign_id)
    return outcome
