"""The producer's way to the queue: is the broker there, and publish a campaign's messages
(through stickerq.queue, the interface producers and workers share)."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from sqlalchemy.orm import Session, sessionmaker

from stickerq.errors import ServiceUnavailable
from stickerq.masking import redact_url
from stickerq.producer.store import iter_pending_ids
from stickerq.queue import configure_celery, dispatch_messages
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings


def check_broker(settings: Settings) -> None:
    """Fail before storing anything if the queue cannot be reached."""
    try:
        with make_redis(settings.redis_target, purpose=Purpose.COMMAND) as client:
            client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"Redis is not reachable at {redact_url(settings.redis_url)} ({exc}). Start it (e.g. "
            "`redis-server --daemonize yes`) or set STICKERQ_REDIS_URL."
        ) from exc


def dispatch_campaign(settings: Settings, sessions: sessionmaker[Session], campaign_id: int) -> int:
    """Publish every pending message of the campaign in batches."""
    with sessions() as session:
        return dispatch_ids(settings, campaign_id, iter_pending_ids(session, campaign_id))


def dispatch_ids(settings: Settings, campaign_id: int, message_pks: Iterable[int]) -> int:
    """Publish these messages of the campaign in batches; returns how many tasks."""
    configure_celery(settings)
    return dispatch_messages(campaign_id, message_pks, settings.batch_size)
