"""Our own infrastructure failing is never a message's failure: wait for it and go on.

While PostgreSQL or Redis cannot be reached the worker sends nothing new, retries with
capped exponential backoff, and resumes by itself; results already in hand are kept and
written once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import psycopg
import redis
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_after_delay,
)

from stickerq.worker.backoff import backoff

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTAGE_LIMIT_SECONDS = 30 * 60  # then the task fails and the sweeper takes over


def _database_unreachable(exc: BaseException) -> bool:
    # psycopg's own: the leaving thread's connection (worker/leaving.py)
    return isinstance(exc, OperationalError | psycopg.OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _redis_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError)


def outage_retry(kind: str, predicate: Callable[[BaseException], bool]) -> Callable[[T], T]:
    return retry(  # type: ignore[return-value]
        retry=retry_if_exception(predicate),
        wait=backoff(0.2, 15),
        stop=stop_after_delay(OUTAGE_LIMIT_SECONDS),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


until_database_is_back = outage_retry("database", _database_unreachable)
until_redis_is_back = outage_retry("redis", _redis_unreachable)
