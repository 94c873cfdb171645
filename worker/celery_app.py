"""The app as Celery's own commands load it: `celery -A stickerq.worker.celery_app worker`,
`beat`, `inspect ping|active|stats`, `events`, Flower.

Importing this module configures the app (stickerq.queue.app) from the STICKERQ_* settings
(environment, .env) as `stickerq worker` does: broker, key prefix, queues, beat schedule,
and this process's runtime. Nothing else imports it: tests and producers configure the app
with settings of their own.
"""

from __future__ import annotations

from celery import Celery

from stickerq.queue import app, configure_celery
from stickerq.settings import Settings
from stickerq.worker import runtime
from stickerq.worker.parent_death import end_children_with_worker
from stickerq.worker.quiet_logs import quiet_periodic_tasks

__all__ = ["app", "start"]


def start(settings: Settings) -> Celery:
    """Configure the app and this process's worker runtime from `settings`."""
    configure_celery(settings)
    quiet_periodic_tasks(entry["task"] for entry in app.conf.beat_schedule.values())
    runtime.configure(settings)
    end_children_with_worker()
    return app


start(Settings())
