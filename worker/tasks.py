"""Celery tasks: a few lines each, calling plain functions."""

from __future__ import annotations

from worker.batches import process_batch
from worker.celery_app import app
from worker.dispatch import dispatch_due_retries
from worker.runtime import current_runtime


@app.task(name="stickerq.send_batch")
def send_batch(campaign_id: int, message_ids: list[int]) -> None:
    process_batch(current_runtime(), campaign_id, message_ids)


@app.task(name="stickerq.dispatch_due")
def dispatch_due() -> None:
    runtime = current_runtime()
    dispatch_due_retries(runtime.sessions, runtime.settings.batch_size)
