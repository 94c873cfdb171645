"""The app as Celery's own commands load it: `celery -A stickerq.worker.celery_app worker`,
`beat`, `inspect ping|active|stats`, `events`, Flower.

Importing this module configures the app (stickerq.queue.app) from the STICKERQ_* settings
(environment, .env) as `stickerq worker` does: broker, key prefix, queues, beat schedule,
and this process's runtime. Nothing else imports it: tests and producers configure the app
with settings of their own.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from stickerq.logs import setup_logging
from stickerq.queue import app, configure_celery
from stickerq.settings import Settings
from stickerq.worker import metrics_server, runtime
from stickerq.worker.parent_death import end_children_with_worker
from stickerq.worker.quiet_logs import quiet_periodic_tasks

__all__ = ["app", "start"]


def start(settings: Settings) -> Celery:
    """Configure the app and this process's worker runtime from `settings`."""
    configure_celery(settings)
    quiet_periodic_tasks(entry["task"] for entry in app.conf.beat_schedule.values())
    runtime.configure(settings)
    end_children_with_worker()
    metrics_server.serve_when_ready(settings)

    def log_in_our_format(loglevel: str | int | None = None, **_: Any) -> None:
        setup_logging(settings, loglevel)  # in place of Celery's own setup (text or JSON)

    # start() runs again with other settings (the CLI's): the last settings are the ones used
    signals.setup_logging.disconnect(dispatch_uid=__name__)
    signals.setup_logging.connect(log_in_our_format, weak=False, dispatch_uid=__name__)
    return app


start(Settings())
