"""The Celery app: Redis broker, late acks, no result backend.

Configured at the edge (`stickerq worker`, the producer) with `configure_celery(settings)`;
nothing here reads the environment on import.
"""

from __future__ import annotations

import redis
from celery import Celery

from stickerq.settings import Settings

QUEUE = "stickerq"  # beat's periodic tasks
# send_batch tasks go to one of these by campaign: kombu's Redis transport reads its queues
# round robin, so a big campaign cannot hold every worker while another sender's waits.
SEND_SHARDS = 8


def send_queue(campaign_id: int) -> str:
    return f"{QUEUE}.send.{campaign_id % SEND_SHARDS}"


def worker_queues() -> list[str]:
    return [QUEUE, *(f"{QUEUE}.send.{shard}" for shard in range(SEND_SHARDS))]


def queued_bodies(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every task message waiting in stickerq's queues (for the sweeper and tests)."""
    return [body for queue in worker_queues() for body in client.lrange(prefix + queue, 0, -1)]


def queued_tasks(client: redis.Redis, prefix: str) -> int:
    return sum(client.llen(prefix + queue) for queue in worker_queues())


app = Celery("stickerq", include=["worker.tasks"])


def configure_celery(settings: Settings) -> Celery:
    """Point the app at these settings' broker; a no-op when it already is."""
    broker = (
        settings.redis_url,
        settings.redis_prefix,
        settings.dispatch_interval_seconds,
        settings.sweep_interval_seconds,
    )
    if app.conf.get("stickerq_broker") == broker:
        return app
    _drop_connections()
    app.conf.update(
        stickerq_broker=broker,
        broker_url=settings.redis_url,
        broker_transport_options={
            "global_keyprefix": settings.redis_prefix,
            # An unacked task comes back after this long; a batch never takes close to it.
            "visibility_timeout": 3600,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        result_backend=None,
        task_ignore_result=True,
        # A task may run twice (acks_late + reject_on_worker_lost): claims make that harmless,
        # and it is what brings a batch back when its worker dies mid-send.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        beat_schedule={
            "dispatch-due-retries": {
                "task": "stickerq.dispatch_due",
                "schedule": settings.dispatch_interval_seconds,
            },
            "sweep": {"task": "stickerq.sweep", "schedule": settings.sweep_interval_seconds},
            "dispatch-due-campaigns": {
                "task": "stickerq.dispatch_due_campaigns",
                "schedule": settings.dispatch_interval_seconds,
            },
        },
    )
    return app


def _drop_connections() -> None:
    """Forget pooled broker connections made with older settings (tests re-configure)."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
