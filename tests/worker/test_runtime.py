"""The worker's event loop: uvloop where installed, asyncio's own where not (Windows); the
batches of a process share it."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.worker import runtime
from stickerq.worker.batches import send_batch
from stickerq.worker.runtime import DATABASE_THREADS, new_event_loop
from tests.conftest import STICKER_ID, wait_until
from tests.helpers import Db


def test_the_loop_is_uvloop_where_it_is_installed() -> None:
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_without_uvloop_the_worker_runs_on_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()


def test_batches_at_once_run_on_one_loop_and_the_few_database_threads(
    settings: Settings, sandbox: SandboxServer
) -> None:
    """A batch is a coroutine, not a thread: three batches sending at once add no thread to
    the runtime's loop, its DATABASE_THREADS and its thread for the evidence of what may
    leave, and every message still settles."""
    sandbox.configure(latency_ms=300)  # the batches overlap for a while
    settings = settings.model_copy(update={"batch_size": 10, "batches_per_process": 4})
    recipients = ",".join(f"+91981234{n:04d}" for n in range(30))
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
    ).campaign_id
    db = Db(settings)
    pks = [message.id for message in db.messages(campaign_id)]
    before = set(threading.enumerate())
    runtime.configure(settings)
    try:
        worker_runtime = runtime.current_runtime()
        for start in range(0, 30, 10):  # a task's work: claim, hand over, return
            assert worker_runtime.run(
                send_batch(worker_runtime, campaign_id, pks[start : start + 10])
            )
        assert worker_runtime.batches.running() == {campaign_id: 3}
        added = set(threading.enumerate()) - before
        assert len(added) <= 2 + DATABASE_THREADS, sorted(thread.name for thread in added)
        wait_until(lambda: db.settled(campaign_id), timeout=30)
    finally:
        runtime.shutdown()
    assert {message.status for message in db.messages(campaign_id)} == {MessageStatus.SENT}
    db.close()
