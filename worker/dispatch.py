"""Publishing work: `send_batch` tasks of a few hundred message ids each (ids, never payloads).

The Celery app is imported when something is first published, not with this module: the
producer's commands that only read import this module and should not pay for Celery.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from stickerq.settings import Settings
from worker.claims import take_due_retries

SEND_BATCH = "stickerq.send_batch"
T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def use_settings(settings: Settings) -> None:
    """Publish to these settings' broker and queues (a producer's first step)."""
    from worker.celery_app import configure_celery

    configure_celery(settings)


def dispatch_messages(campaign_id: int, message_ids: Iterable[int], batch_size: int) -> int:
    """Publish the ids in batches; returns how many tasks were published."""
    from worker.celery_app import app, send_queue

    published = 0
    with app.producer_or_acquire() as producer:
        for chunk in chunks(message_ids, batch_size):
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


def dispatch_due_retries(sessions: sessionmaker[Session], batch_size: int) -> int:
    """Publish the WA500 retries (and connection-failure resends) whose time has come."""
    with sessions.begin() as session:
        due = take_due_retries(session)
    return dispatch_grouped(due, batch_size)
