"""Whether beat's periodic tasks ran lately on this Redis and prefix.

Scheduled campaigns, recurring runs and WA500 retries go only when beat sends its periodic
tasks and a worker runs them. Each run of `dispatch_due` leaves a key that lives a minute (or
ten of its intervals); `send`, `status` and `campaigns list` warn while it is missing, since
that work would otherwise wait in silence.
"""

from __future__ import annotations

import math
import time

import redis

from stickerq.keys import beat_seen_key
from stickerq.redis_client import Purpose, RedisTarget, make_redis

SEEN_FOR_SECONDS = 60
NO_BEAT = (
    "no beat has run on this Redis and prefix in the last {seconds} s: scheduled campaigns "
    "and WA500 retries wait until one does (`stickerq worker --beat`, or `stickerq beat` "
    "beside the workers)"
)


def seen_for(dispatch_interval_seconds: float) -> int:
    return max(SEEN_FOR_SECONDS, math.ceil(10 * dispatch_interval_seconds))


def mark_beat_seen(client: redis.Redis, prefix: str, dispatch_interval_seconds: float) -> None:
    """A periodic task ran now (called from beat's `dispatch_due`)."""
    seconds = seen_for(dispatch_interval_seconds)
    client.set(beat_seen_key(prefix), f"{time.time():.0f}", ex=seconds)


def missing_beat(
    target: RedisTarget | str, prefix: str, dispatch_interval_seconds: float
) -> str | None:
    """What to tell the user when no periodic task ran lately; None when one did, or when
    Redis cannot be asked (the command says so itself if it needs Redis)."""
    try:
        client = make_redis(target, purpose=Purpose.GLANCE)
        with client:
            seen = client.exists(beat_seen_key(prefix))
    except redis.RedisError:
        return None
    if seen:
        return None
    return NO_BEAT.format(seconds=seen_for(dispatch_interval_seconds))
