"""The sandbox calls back as Kaleyra does: a v2 status callback per status of each accepted
send, POSTed to `callback_url`, with fault injection (delays, duplicates, shuffled order,
failures with Meta's 131047). A send outside the recipient's 24-hour window (sandbox/windows.py)
is called back `sent`, then `failed` with 131047, never `delivered` or `read`.

A callback answered 5xx or not at all is posted again (a few times, with backoff), as a
webhook sender does; a 4xx is given up at once. What happened is counted
(`GET /_sandbox/callbacks`). Incoming-message callbacks (sandbox/inbound.py) go through a
`CallbackPoster` of their own, with the same retries, counted apart (`GET /_sandbox/windows`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp

from stickerq.sandbox.config import SandboxConfig
from stickerq.sandbox.payload import StickerSend

OUTSIDE_WINDOW = {
    "code": 131047,
    "title": "Re-engagement message",
    "message": "More than 24 hours have passed since the recipient last replied",
}
ATTEMPTS = 6  # per callback: the first post and 5 more after 0.1, 0.2, 0.4, 0.8, 1.6 s
FIRST_BACKOFF_SECONDS = 0.1
CONNECTIONS = 64
TIMEOUT_SECONDS = 30.0

_T = TypeVar("_T")


def callback_payload(
    message_id: str, status: str, send: StickerSend, at: float, error: dict[str, Any] | None
) -> dict[str, Any]:
    """A Kaleyra v2 status callback: ours at the top and under extra_info, Meta's under
    meta_object.value.statuses[]."""
    meta_status: dict[str, Any] = {
        "id": f"wamid.{message_id}",
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": send.recipient.lstrip("+"),
    }
    if error is not None:
        meta_status["errors"] = [error]
    return {
        "status": status,
        "message_id": message_id,
        "extra_info": {
            "message_id": message_id,
            "ref": send.ref,
            "ref1": send.ref1,
            "ref2": send.ref2,
        },
        "meta_object": {
            "field": "messages",
            "value": {"messaging_product": "whatsapp", "statuses": [meta_status]},
        },
    }


def plan(config: SandboxConfig, rng: random.Random, in_window: bool = True) -> list[str]:
    """The statuses one message is called back with, in the order they will be posted.

    Outside the window it fails for certain; inside, `callback_failed_rate` fails it at random.
    """
    statuses = list(config.callback_statuses)
    rate = config.callback_failed_rate
    if not in_window or (rate and rng.random() < rate):
        statuses = ["sent", "failed"]
    if config.callback_reorder_rate and rng.random() < config.callback_reorder_rate:
        rng.shuffle(statuses)
    posted = list(statuses)
    for status in statuses:  # a duplicate comes anywhere after its first
        if config.callback_duplicate_rate and rng.random() < config.callback_duplicate_rate:
            posted.insert(rng.randint(posted.index(status) + 1, len(posted)), status)
    return posted


class CallbackPoster:
    """Posts callbacks from the sandbox's event loop, at most `CONNECTIONS` at a time."""

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    def accepted(
        self, config: SandboxConfig, message_id: str, send: StickerSend, in_window: bool = True
    ) -> None:
        """Schedule the callbacks of one accepted send (when callbacks are configured)."""
        if config.callback_url is None:
            return
        statuses = plan(config, self.rng, in_window)
        self._track(self._post_all(config, config.callback_url, message_id, send, statuses))

    def post(self, url: str, payload: dict[str, Any]) -> asyncio.Task[str]:
        """Schedule one post; the task ends with `posted`, `refused` or `gave_up`."""
        return self._track(self._post(url, payload))

    def _track(self, work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stats(self) -> dict[str, int]:
        """`posted` (answered 2xx), `refused` (4xx), `retried`, `gave_up`, `pending`."""
        return {
            **{k: self.counts[k] for k in ("posted", "refused", "retried", "gave_up")},
            "pending": len(self._tasks),
        }

    def reset(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self.counts.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    async def _post_all(
        self,
        config: SandboxConfig,
        url: str,
        message_id: str,
        send: StickerSend,
        statuses: list[str],
    ) -> None:
        for status in statuses:
            if config.callback_delay_ms:
                await asyncio.sleep(config.callback_delay_ms / 1000)
            error = OUTSIDE_WINDOW if status in ("failed", "not-sent") else None
            payload = callback_payload(message_id, status, send, time.time(), error)
            await self._post(url, payload)

    async def _post(self, url: str, payload: dict[str, Any]) -> str:
        """Post until answered; returns the counter it added to."""
        if self._session is None or self._slots is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            )
            # aiohttp's timeout counts the wait for a pooled connection too: with thousands
            # queued, posts would time out unsent. Waiting here is outside the timeout.
            self._slots = asyncio.Semaphore(CONNECTIONS)
        delay = FIRST_BACKOFF_SECONDS
        for attempt in range(ATTEMPTS):
            if attempt:
                self.counts["retried"] += 1
                await asyncio.sleep(delay)
                delay *= 2
            try:
                async with self._slots, self._session.post(url, json=payload) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            outcome = "posted" if response.status < 300 else "refused"
            if response.status < 500:
                self.counts[outcome] += 1
                return outcome
        self.counts["gave_up"] += 1
        return "gave_up"
