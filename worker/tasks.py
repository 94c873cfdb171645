"""Celery tasks: a few lines each, calling plain functions."""

from __future__ import annotations

from typing import Any

from celery import signals

from worker import batches, runtime, scheduling, sweeper
from worker.celery_app import app
from worker.dispatch import dispatch_due_retries, dispatch_messages
from worker.runtime import current_runtime


@app.task(name="stickerq.send_batch")
def send_batch(campaign_id: int, message_ids: list[int]) -> None:
    if not batches.send_batch(current_runtime(), campaign_id, message_ids):
        dispatch_messages(campaign_id, message_ids, len(message_ids))  # back to the queue


@signals.worker_process_shutdown.connect  # a prefork child
@signals.worker_shutdown.connect  # the worker itself (threads and solo pools run tasks there)
def _finish_batches(**_: Any) -> None:
    """A send_batch task returns before its batch is done: a warm shutdown waits for the
    batches still running here (stopped before their next request) and writes their results."""
    runtime.shutdown()


@app.task(name="stickerq.sweep")
def sweep() -> None:
    runtime = current_runtime()
    settings = runtime.settings
    sweeper.sweep(
        runtime.sessions,
        runtime.redis,
        settings.redis_prefix,
        settings.batch_size,
        grace_seconds=settings.claim_heartbeat_seconds,
    )


@app.task(name="stickerq.dispatch_due")
def dispatch_due() -> None:
    runtime = current_runtime()
    dispatch_due_retries(runtime.sessions, runtime.settings.batch_size)


@app.task(name="stickerq.dispatch_due_campaigns")
def dispatch_due_campaigns() -> None:
    """Start the recurring runs whose time has come, then queue every due scheduled campaign."""
    runtime = current_runtime()
    scheduling.run_due_schedules(runtime.sessions)
    scheduling.dispatch_due_campaigns(runtime.sessions, runtime.settings.batch_size)
