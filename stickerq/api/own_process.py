"""A large campaign stored in a process of its own, beside the API rather than inside it.

Parsing, storing and dispatching a million rows is about a minute of Python. In a thread of
the API's process it holds the GIL most of that time, and every other request waits for it
at each step: `GET /campaigns/{id}` took p99 192 ms during a 1,000,000-row upload against 25
ms idle (bench/api_upload.py). A child process has an interpreter of its own, so the API's
event loop and threads answer as if nothing were being stored. Small campaigns stay in the
API's threads: handing one to the child costs a few milliseconds, and the child's start (a
second or two, once) is paid only by the first large one.

One child at most: two large uploads are stored one after the other, while their requests
wait without holding a thread. The child ends with the API, even one killed with SIGKILL
(worker/parent_death.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from stickerq.api.common import problem_of
from stickerq.api.problems import Problem
from stickerq.errors import StickerqError
from stickerq.logs import setup_logging
from stickerq.producer.idempotency import send_campaign_once
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings
from stickerq.worker.parent_death import end_with_parent

# A JSON recipient takes about 50 bytes of a CSV: a JSON campaign of a fiftieth as many
# recipients as STICKERQ_API_OWN_PROCESS_BYTES goes to the child too (1 MiB: ~20,000).
BYTES_PER_RECIPIENT = 50


def store(
    settings: Settings, campaign: CampaignRequest, timing: Timing, key: str | None, actor: str
) -> tuple[int, bool]:
    """Store and dispatch (or schedule) the campaign, once per Idempotency-Key: its id, and
    whether this call made it (`actor`'s change, in the audit log). Raises the producer's
    StickerqError."""
    if key is None:
        result, _ = send_campaign(settings, campaign, timing, actor=actor)
        return result.campaign_id, True
    once = send_campaign_once(settings, key, campaign, timing, actor=actor)
    return once.campaign_id, once.created


def _start_child(settings: Settings, parent: int) -> None:
    end_with_parent(parent)
    setup_logging(settings, "info")


def _store_in_child(
    settings: Settings, campaign: CampaignRequest, timing: Timing, key: str | None, actor: str
) -> tuple[tuple[int, bool] | None, dict[str, Any] | None]:
    """Runs in the child: what `store` returned, or the problem document it refused with
    (plain data: the producer's errors are not all picklable)."""
    try:
        return store(settings, campaign, timing, key, actor), None
    except StickerqError as exc:
        problem = problem_of(exc)
        return None, {
            "status": problem.status,
            "code": problem.code,
            "title": problem.title,
            "detail": problem.detail,
            "headers": problem.headers,
            **problem.extra,
        }


class OwnProcess:
    """The API's child for large stores, started at its first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._bytes = settings.api_own_process_bytes

    def wants_upload(self, size: int) -> bool:
        """Whether an uploaded CSV of `size` bytes is stored in the child."""
        return size >= self._bytes

    def wants_recipients(self, count: int) -> bool:
        """Whether a JSON campaign of `count` recipients is stored in the child."""
        return count * BYTES_PER_RECIPIENT >= self._bytes

    async def store(
        self, campaign: CampaignRequest, timing: Timing, key: str | None, actor: str
    ) -> tuple[int, bool]:
        """As `store`, in the child; a refusal is raised as its Problem."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),  # no copy of our threads
                initializer=_start_child,
                initargs=(self._settings, os.getpid()),
            )
        loop = asyncio.get_running_loop()
        stored, problem = await loop.run_in_executor(
            self._pool, _store_in_child, self._settings, campaign, timing, key, actor
        )
        if problem is not None:
            raise Problem(**problem)
        assert stored is not None
        return stored

    @property
    def started(self) -> bool:
        """Whether the child was started (by a large store)."""
        return self._pool is not None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
