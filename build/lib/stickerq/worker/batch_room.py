"""The batches one worker process runs at once.

A `send_batch` task returns as soon as its batch is under way and a thread per batch writes
its results (worker/batches.py). Up to `total` batches run here at once, at most
`per_campaign` of one campaign (the runtime uses total - 1): a process always keeps room for
another campaign, whose sender may be free to send while this one's waits for its budget.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

# finish_later(finish, halt): run `finish` in a thread of its own; `halt` stops the batch early.
FinishLater = Callable[[Callable[[], object], Callable[[], None]], None]


class BatchRoom:
    def __init__(self, total: int, per_campaign: int) -> None:
        if not 1 <= per_campaign <= total:
            raise ValueError(f"need 1 <= per_campaign <= total, got {per_campaign}, {total}")
        self.total = total
        self.per_campaign = per_campaign
        self._running: Counter[int] = Counter()  # campaign id -> its batches running here
        self._changed = threading.Condition()
        self._finishing: dict[threading.Thread, Callable[[], None]] = {}

    @contextlib.contextmanager
    def place(self, campaign_id: int, patience: float) -> Iterator[FinishLater | None]:
        """Hold a place for one batch of this campaign while the block runs.

        Yields None when no place came free within `patience` seconds (the process is full,
        or the campaign has its `per_campaign` batches here): the caller gives the batch back
        to the queue, for a worker with room. So a task never waits long, and a warm
        shutdown does not wait for a place. The block may hand its place on with
        `finish_later`; the place is then freed when `finish` returns.
        """
        if not self._enter(campaign_id, patience):
            yield None
            return
        handed_over = False

        def finish_later(finish: Callable[[], object], halt: Callable[[], None]) -> None:
            nonlocal handed_over
            thread = threading.Thread(
                target=self._finish, args=(campaign_id, finish), name="batch-writer", daemon=True
            )
            with self._changed:
                self._finishing[thread] = halt
            handed_over = True
            thread.start()

        try:
            yield finish_later
        finally:
            if not handed_over:
                self._leave(campaign_id)

    def running(self) -> dict[int, int]:
        with self._changed:
            return dict(self._running)

    def halt_and_wait(
        self, halt_with: Callable[[Callable[[], None]], object], timeout: float
    ) -> None:
        """Stop every batch still running (`halt_with(halt)` runs a halt where it must run)
        and wait until their results are written."""
        with self._changed:
            finishing = dict(self._finishing)
        for halt in finishing.values():
            halt_with(halt)
        deadline = time.monotonic() + timeout
        for thread in finishing:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _enter(self, campaign_id: int, patience: float) -> bool:
        deadline = time.monotonic() + patience
        with self._changed:
            while True:
                full = sum(self._running.values()) >= self.total
                if not full and self._running[campaign_id] < self.per_campaign:
                    self._running[campaign_id] += 1
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def _leave(self, campaign_id: int) -> None:
        with self._changed:
            self._running[campaign_id] -= 1
            if not self._running[campaign_id]:
                del self._running[campaign_id]
            self._changed.notify_all()

    def _finish(self, campaign_id: int, finish: Callable[[], object]) -> None:
        try:
            finish()
        except Exception:
            log.exception("a batch failed while finishing; the sweeper settles what it left")
        finally:
            with self._changed:
                self._finishing.pop(threading.current_thread(), None)
            self._leave(campaign_id)
