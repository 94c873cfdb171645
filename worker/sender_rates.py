"""A sender's rate at claim time: its stored rate (`stickerq senders set-rate`) or the default.

The claim reads it by primary key and refreshes its Redis mirror, which the limiter reads on
every ask (worker/limiter.py): a mirror lost with Redis's state heals at the next claim.
"""

from __future__ import annotations

import redis
from sqlalchemy.orm import Session

from stickerq.keys import sender_rate_key
from stickerq.models import SenderRate


def sender_rate(session: Session, sender: str, default: float) -> float:
    """The sender's stored rate, else `default` (STICKERQ_RATE_PER_SECOND)."""
    row = session.get(SenderRate, sender)
    return row.rate_per_second if row is not None else default


def mirror_rate(client: redis.Redis, prefix: str, sender: str, rate: float) -> None:
    """Write the rate the limiter's script reads for this sender."""
    client.set(sender_rate_key(prefix, sender), repr(rate))
