"""What waits in stickerq's Redis queues, read for assertions."""

from __future__ import annotations

from typing import cast

import redis

from stickerq.keys import queue_key
from stickerq.queue import worker_queues


def queued_bodies(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every task message waiting in stickerq's queues; the client must return bytes (the
    default)."""
    return [
        cast(bytes, body)
        for queue in worker_queues()
        for body in client.lrange(queue_key(prefix, queue), 0, -1)
    ]
