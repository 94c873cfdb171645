"""Per-sender rates: a business number's own messages per second, every worker together.

Meta gives each number a throughput tier (80 to 1,000 messages per second); a number also
used in the WhatsApp Business app (coexistence) gets 20. A number without a stored rate sends
at STICKERQ_RATE_PER_SECOND. The database holds the rate (claims read it); a Redis mirror,
read by the limiter on every ask, makes a change reach batches already sending at once.
"""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

import redis
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, record
from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError, excerpt
from stickerq.keys import sender_rate_key
from stickerq.models import SenderRate, utcnow
from stickerq.producer.phones import InvalidPhone, check_region, normalise_phone
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings

MAX_RATE = 10_000.0  # far above Meta's highest tier (1,000/s): a typo, not a tier
TIERS = (
    "Meta gives each number a tier of 80 to 1,000 messages per second; a number also used in "
    "the WhatsApp Business app gets 20"
)


class SenderRateError(StickerqError):
    """A sender number or rate that cannot be used."""


@dataclass(frozen=True, slots=True)
class SenderRateInfo:
    sender: str  # E.164
    rate_per_second: float
    stored: bool  # False: the default (STICKERQ_RATE_PER_SECOND)
    updated_at: datetime | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SenderRates:
    default_rate_per_second: float
    senders: list[SenderRateInfo]


def set_rate(
    settings: Settings,
    number: str,
    rate_per_second: float,
    *,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> SenderRateInfo:
    """Store the number's rate; every worker uses it from its next request on. Recorded in
    the audit log under `actor`."""
    sender = _sender(number, settings)
    rate = checked_rate(rate_per_second)
    now = utcnow()
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {"sender": sender, "rate_per_second": rate, "updated_at": now}
        statement = insert(SenderRate).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["sender"], set_={"rate_per_second": rate, "updated_at": now}
            )
        )
        record(session, actor, Action.SENDER_RATE_SET, f"sender:{sender}", rate_per_second=rate)
    return SenderRateInfo(sender, rate, True, now, _mirror(settings, sender, rate))


def reset_rate(
    settings: Settings,
    number: str,
    *,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> SenderRateInfo:
    """Forget the number's rate: it sends at STICKERQ_RATE_PER_SECOND again. Recorded in
    the audit log under `actor` when the number had a rate of its own."""
    sender = _sender(number, settings)
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        if rows_changed(session.execute(delete(SenderRate).where(SenderRate.sender == sender))):
            record(session, actor, Action.SENDER_RATE_RESET, f"sender:{sender}")
    default = settings.rate_per_second
    return SenderRateInfo(sender, default, False, None, _mirror(settings, sender, default))


def list_rates(settings: Settings, *, sessions: sessionmaker[Session] | None = None) -> SenderRates:
    """The stored rates in number order, and the default for every other number."""
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        rows = session.scalars(select(SenderRate).order_by(SenderRate.sender)).all()
        senders = [SenderRateInfo(r.sender, r.rate_per_second, True, r.updated_at) for r in rows]
    return SenderRates(settings.rate_per_second, senders)


def checked_rate(rate_per_second: float) -> float:
    """A rate in messages per second, or a clear refusal."""
    rate = float(rate_per_second)
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise SenderRateError(
            f"the rate must be more than 0 and at most {MAX_RATE:,.0f} messages per second, "
            f"got {rate_per_second!r}: {TIERS}"
        )
    return rate


def _sender(number: str, settings: Settings) -> str:
    try:
        return normalise_phone(number, check_region(settings.default_region))
    except InvalidPhone as exc:
        raise SenderRateError(
            f"{excerpt(number)!r} is no sender number: {exc} (E.164, e.g. +919812345678)"
        ) from None


def _mirror(settings: Settings, sender: str, rate: float) -> list[str]:
    """Tell the limiters at once; without Redis, each worker's next claim reads it."""
    client = make_redis(settings.redis_target, purpose=Purpose.COMMAND)
    try:
        with closing(client):
            client.set(sender_rate_key(settings.redis_prefix, sender), repr(rate))
    except redis.RedisError as exc:
        return [
            f"Redis is unreachable ({exc}): batches already sending keep their rate; "
            "each new batch reads the new one"
        ]
    return []
