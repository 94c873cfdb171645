"""The batches one worker process runs at once, on its event loop.

A `send_batch` task returns as soon as its batch is under way; the batch goes on as a task
of the process's loop (worker/batches.py). Up to `total` batches run here at once, at most
`per_campaign` of one campaign (the runtime uses total - 1): a process always keeps room for
another campaign, whose sender may be free to send while this one's waits for its budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BatchRoom:
    def __init__(self, total: int, per_campaign: int) -> None:
        if not 1 <= per_campaign <= total:
            raise ValueError(f"need 1 <= per_campaign <= total, got {per_campaign}, {total}")
        self.total = total
        self.per_campaign = per_campaign
        self._running: Counter[int] = Counter()  # campaign id -> its batches running here
        self._waiting: set[asyncio.Future[None]] = set()  # woken whenever a place is freed
        self._batches: dict[asyncio.Task[Any], Callable[[], None]] = {}  # each with its halt

    async def enter(self, campaign_id: int, patience: float) -> bool:
        """Take a place for one batch of this campaign; False when none came free within
        `patience` seconds (the process is full, or the campaign has its `per_campaign`
        batches here): the caller gives the batch back to the queue, for a worker with room.
        So a task never waits long, and a warm shutdown does not wait for a place."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while sum(self._running.values()) >= self.total or (
            self._running[campaign_id] >= self.per_campaign
        ):
            freed = loop.create_future()
            self._waiting.add(freed)
            try:
                await asyncio.wait_for(freed, max(0.0, deadline - loop.time()))
            except TimeoutError:
                return False
            finally:
                self._waiting.discard(freed)
        self._running[campaign_id] += 1
        return True

    def leave(self, campaign_id: int) -> None:
        self._running[campaign_id] -= 1
        if not self._running[campaign_id]:
            del self._running[campaign_id]
        for freed in self._waiting:
            if not freed.done():
                freed.set_result(None)

    def hand_over(
        self, campaign_id: int, finish: Coroutine[Any, Any, object], halt: Callable[[], None]
    ) -> None:
        """Run `finish` as a task of the loop; its place is freed when it returns. `halt`
        stops the batch early (a warm shutdown)."""
        task = asyncio.get_running_loop().create_task(finish)
        self._batches[task] = halt

        def done(task: asyncio.Task[Any]) -> None:
            self._batches.pop(task, None)
            if not task.cancelled() and task.exception() is not None:
                log.error(
                    "a batch failed while finishing; the sweeper settles what it left",
                    exc_info=task.exception(),
                )
            self.leave(campaign_id)

        task.add_done_callback(done)

    def running(self) -> dict[int, int]:
        return dict(self._running)

    async def halt_and_wait(self, timeout: float) -> None:
        """Stop every batch still running before its next request, and wait until their
        results are written."""
        batches = dict(self._batches)
        for halt in batches.values():
            halt()
        if batches:
            await asyncio.wait(batches, timeout=timeout)
