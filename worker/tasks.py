"""Celery tasks: a few lines each, calling plain functions."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import redis
from celery import signals

from stickerq.beat import mark_beat_seen
from stickerq.db import UPGRADE_ADVICE, lacks_schema
from stickerq.models import utcnow
from stickerq.queue import (
    DELIVER_WEBHOOKS,
    DISPATCH_DUE_CAMPAIGNS,
    DISPATCH_DUE_RETRIES,
    PURGE_MESSAGES,
    PURGE_UNKNOWN_CALLBACKS,
    PURGE_WEBHOOK_EVENTS,
    SEND_BATCH,
    SWEEP,
    app,
    dispatch_messages,
)
from stickerq.worker import batches, purge, retention, runtime, scheduling, sweeper
from stickerq.worker.due_retries import dispatch_due_retries
from stickerq.worker.expiry import expire_overdue
from stickerq.worker.runtime import current_runtime
from stickerq.worker.webhook_delivery import DeliveryPolicy, deliver_due
from stickerq.worker.webhook_retention import purge_webhook_events

log = logging.getLogger(__name__)


@app.task(name=SEND_BATCH)
def send_batch(campaign_id: int, message_pks: list[int]) -> None:
    """Claim the batch and hand it to this process's send loop (docs/architecture.md, the
    send path, says what a task's success means); a batch this process has no room for goes
    back to the queue."""
    runtime = current_runtime()
    if not runtime.run(batches.send_batch(runtime, campaign_id, message_pks)):
        dispatch_messages(campaign_id, message_pks, len(message_pks))  # back to the queue


@signals.worker_process_shutdown.connect  # a prefork child
@signals.worker_shutdown.connect  # the worker itself (threads and solo pools run tasks there)
def _finish_batches(**_: Any) -> None:
    """A send_batch task returns before its batch is done: a warm shutdown waits for the
    batches still running here (stopped before their next request) and writes their results."""
    runtime.shutdown()


@contextlib.contextmanager
def _needs_schema(task: str) -> Iterator[None]:
    """A periodic task on a database that was never upgraded says so in one line (every few
    seconds), not with a traceback; so does one that met a SQLite file locked by another
    process (two workers opening a new file at once), which the next beat tries again."""
    try:
        yield
    except Exception as exc:
        if lacks_schema(exc):
            log.error("%s skipped: %s", task, UPGRADE_ADVICE)
        elif "database is locked" in str(exc):
            log.warning("%s skipped: the SQLite database is locked; trying again", task)
        else:
            raise


@app.task(name=SWEEP)
def sweep() -> None:
    with _needs_schema("sweep"):
        runtime = current_runtime()
        settings = runtime.settings
        sweeper.sweep(
            runtime.sessions,
            runtime.redis,
            settings.redis_prefix,
            settings.batch_size,
            grace_seconds=settings.claim_heartbeat_seconds,
        )


@app.task(name=DISPATCH_DUE_RETRIES)
def dispatch_due() -> None:
    with _needs_schema("dispatch of due retries"):
        runtime = current_runtime()
        settings = runtime.settings
        expire_overdue(runtime.sessions)
        dispatch_due_retries(runtime.sessions, settings.batch_size)
        with contextlib.suppress(redis.RedisError):  # only a hint for `stickerq status`
            mark_beat_seen(runtime.redis, settings.redis_prefix, settings.dispatch_interval_seconds)


@app.task(name=DISPATCH_DUE_CAMPAIGNS)
def dispatch_due_campaigns() -> None:
    """Start the recurring runs whose time has come, then queue every due scheduled campaign."""
    with _needs_schema("dispatch of due campaigns"):
        runtime = current_runtime()
        scheduling.run_due_schedules(runtime.sessions)
        scheduling.dispatch_due_campaigns(runtime.sessions, runtime.settings.batch_size)


@app.task(name=PURGE_UNKNOWN_CALLBACKS)
def purge_unknown_callbacks() -> None:
    """Delete the callbacks of no known message past their retention, and beyond the cap."""
    with _needs_schema("purge of unknown callbacks"):
        runtime = current_runtime()
        settings = runtime.settings
        retention.purge_unknown_callbacks(
            runtime.sessions,
            days=settings.unknown_callback_days,
            max_rows=settings.unknown_callback_max_rows,
        )


@app.task(name=PURGE_MESSAGES)
def purge_messages() -> None:
    """Delete the messages of finished campaigns past their retention, a bounded run at a time."""
    with _needs_schema("purge of old messages"):
        runtime = current_runtime()
        settings = runtime.settings
        kept = purge.Retention.of(settings.retention_days, settings.all_accounts())
        purge.purge(runtime.sessions, kept.past(utcnow()), archive_dir=settings.archive_dir)


@app.task(name=DELIVER_WEBHOOKS)
def deliver_webhooks() -> None:
    """POST the due webhook events (worker/webhook_delivery.py)."""
    with _needs_schema("delivery of webhook events"):
        runtime = current_runtime()
        # no proxy from the environment: the URL's checked address is what is reached
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            deliver_due(runtime.sessions, client, DeliveryPolicy.of(runtime.settings))


@app.task(name=PURGE_WEBHOOK_EVENTS)
def purge_webhook_events_task() -> None:
    """Delete delivered and failed webhook events past their retention."""
    with _needs_schema("purge of webhook events"):
        runtime = current_runtime()
        purge_webhook_events(runtime.sessions, runtime.settings.webhook_retention_days)
