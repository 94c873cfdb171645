"""The queue between producers and workers: the Celery app, its queues, task names and the
one way to publish a campaign's messages.

Producers and workers both use this module and nothing of each other. A producer publishes
`send_batch` tasks by name; a worker loads the task bodies through the app's `include`
(stickerq.worker.tasks) when it starts. Tasks carry message pks, never payloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from typing import TYPE_CHECKING, TypeVar

from celery import Celery
from kombu import pools as kombu_pools
from kombu.entity import Exchange, Queue

from stickerq.keys import queue_key
from stickerq.redis_client import celery_transport_options

if TYPE_CHECKING:
    import redis

    from stickerq.settings import Settings

SEND_BATCH = "stickerq.send_batch"
SWEEP = "stickerq.sweep"
DISPATCH_DUE_RETRIES = "stickerq.dispatch_due"
DISPATCH_DUE_CAMPAIGNS = "stickerq.dispatch_due_campaigns"
PURGE_UNKNOWN_CALLBACKS = "stickerq.purge_unknown_callbacks"
PURGE_MESSAGES = "stickerq.purge_messages"
DELIVER_WEBHOOKS = "stickerq.deliver_webhooks"
PURGE_WEBHOOK_EVENTS = "stickerq.purge_webhook_events"
# Unknown callbacks are kept for days: a purge a minute holds them near their cap; and a
# minute's batches of old messages keep up with any day's sending (worker/purge.py).
PURGE_INTERVAL_SECONDS = 60.0

QUEUE = "stickerq"  # beat's periodic tasks
# send_batch tasks go to one of these by campaign: kombu's Redis transport reads its queues
# round robin, so a big campaign cannot hold every worker while another sender's waits.
SEND_SHARDS = 8
# Beat keeps its schedule in memory: every entry runs every few seconds and scheduled work
# lives in the database, so the default PersistentScheduler's shelve files kept nothing.
BEAT_SCHEDULER = "celery.beat:Scheduler"
T = TypeVar("T")

app = Celery("stickerq", include=["stickerq.worker.tasks"])


def send_queue(campaign_id: int) -> str:
    return f"{QUEUE}.send.{campaign_id % SEND_SHARDS}"


def send_queues() -> list[str]:
    return [f"{QUEUE}.send.{shard}" for shard in range(SEND_SHARDS)]


def worker_queues() -> list[str]:
    return [QUEUE, *send_queues()]


def queued_tasks(client: redis.Redis, prefix: str) -> int:
    """The `send_batch` tasks waiting in the send queues. Beat's periodic tasks wait in a
    queue of their own and cover no message: counting them, the sweeper that runs beside
    them saw a queue that was never empty and re-dispatched nothing for minutes."""
    return sum(client.llen(queue_key(prefix, queue)) for queue in send_queues())


def configure_celery(settings: Settings) -> Celery:
    """Point the app at these settings' broker; a no-op when it already is."""
    broker = (
        settings.redis_target,
        settings.redis_prefix,
        settings.dispatch_interval_seconds,
        settings.sweep_interval_seconds,
        settings.webhook_interval_seconds,
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
            # sentinel://: the master's name and the Sentinels' password
            **celery_transport_options(settings.redis_target),
        },
        broker_connection_retry_on_startup=True,
        # A worker started without -Q (`celery -A stickerq.worker.celery_app worker`)
        # consumes every stickerq queue; each queue has its own exchange and routing key, as
        # Celery makes them for a queue it was not told of.
        task_queues=[
            Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]
            for name in worker_queues()
        ],
        task_default_queue=QUEUE,
        result_backend=None,
        task_ignore_result=True,
        # A task may run twice (acks_late + reject_on_worker_lost): claims make that
        # harmless. send_batch returns once its batch is claimed (see worker/tasks.py): what
        # brings back a batch whose worker died after that is the sweeper, not the broker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        beat_scheduler=BEAT_SCHEDULER,
        beat_schedule={
            "dispatch-due-retries": {
                "task": DISPATCH_DUE_RETRIES,
                "schedule": settings.dispatch_interval_seconds,
            },
            "sweep": {"task": SWEEP, "schedule": settings.sweep_interval_seconds},
            "dispatch-due-campaigns": {
                "task": DISPATCH_DUE_CAMPAIGNS,
                "schedule": settings.dispatch_interval_seconds,
            },
            "purge-unknown-callbacks": {
                "task": PURGE_UNKNOWN_CALLBACKS,
                "schedule": PURGE_INTERVAL_SECONDS,
            },
            "purge-messages": {"task": PURGE_MESSAGES, "schedule": PURGE_INTERVAL_SECONDS},
            "deliver-webhooks": {
                "task": DELIVER_WEBHOOKS,
                "schedule": settings.webhook_interval_seconds,
                # a round behind by more than an interval adds nothing the next one won't do
                "options": {"expires": max(5.0, 5 * settings.webhook_interval_seconds)},
            },
            "purge-webhook-events": {
                "task": PURGE_WEBHOOK_EVENTS,
                "schedule": PURGE_INTERVAL_SECONDS,
            },
        },
    )
    return app


def _drop_connections() -> None:
    """Forget pooled broker connections made with older settings (tests and benches
    re-configure). kombu keeps one pool per broker URL in a registry of its own: closing only
    the app's would hand that closed pool back when an earlier URL comes again."""
    kombu_pools.reset()  # type: ignore[no-untyped-call]
    app._pool = None
    app.amqp._producer_pool = None


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dispatch_messages(campaign_id: int, message_pks: Iterable[int], batch_size: int) -> int:
    """Publish the pks in `send_batch` tasks of `batch_size`; returns how many tasks."""
    published = 0
    with app.producer_or_acquire() as producer:
        for chunk in chunks(message_pks, batch_size):
            app.send_task(
                SEND_BATCH,
                args=(campaign_id, chunk),
                # what logs and `celery inspect` show; Celery's own repr of 200 ids costs
                # more than the rest of the publish
                argsrepr=f"({campaign_id}, <{len(chunk)} message pks>)",
                producer=producer,
                queue=send_queue(campaign_id),
            )
            published += 1
    return published


def dispatch_grouped(rows: Iterable[tuple[int, int]], batch_size: int) -> int:
    """Publish (campaign_id, message pk) rows sorted by campaign."""
    published = 0
    for campaign_id, group in groupby(rows, key=lambda row: row[0]):
        published += dispatch_messages(campaign_id, (pk for _, pk in group), batch_size)
    return published
