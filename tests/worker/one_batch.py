"""One batch from claim to settled results, for tests that drive a worker's runtime directly."""

from __future__ import annotations

from collections.abc import Sequence

from stickerq.worker.batches import finish_batch, start_batch
from stickerq.worker.runtime import Runtime
from stickerq.worker.sending import BatchOutcome


def process_batch(runtime: Runtime, campaign_id: int, message_pks: Sequence[int]) -> BatchOutcome:
    """Claim, send and write one batch, waited for by the calling thread (the worker's own
    `send_batch` returns once the batch is started)."""

    async def claim_send_and_write() -> BatchOutcome:
        batch = await start_batch(runtime, campaign_id, message_pks)
        return await finish_batch(runtime, batch) if batch is not None else BatchOutcome()

    return runtime.run(claim_send_and_write())
