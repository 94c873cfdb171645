"""Idempotency-Key: a request retried with the same key returns the campaign it first made.

The key is reserved (inserted, campaign_id null) before anything is stored: the primary key
lets one of several concurrent requests win. The winner stores the campaign, and the store's
own transaction writes the campaign's id on the key just before it commits: a campaign is
never committed without its key, whenever the process dies. If storing fails the reservation
is deleted, so nothing is half-stored and a corrected retry may use the key. A loser waits
for the winner's id.

A reservation still without a campaign after RESERVATION_EXPIRY_SECONDS belongs to a request
that died before its store committed (nothing was stored under it): the next request with
the key takes it over. Should the first request still be alive after all, its commit finds
its reservation gone and stores nothing, so a key never makes two campaigns.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError
from stickerq.models import Campaign, IdempotencyKey, utcnow
from stickerq.producer.api import EnqueueResult
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import ScheduledCampaign
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings

WAIT_FOR_WINNER_SECONDS = 30.0  # a loser waits this long for the first request to be stored
# Far above the time a store takes (a million recipients: under a minute here).
RESERVATION_EXPIRY_SECONDS = 600.0
MAX_KEY_LENGTH = 255


class IdempotencyConflict(StickerqError):
    """The key was used for a different request, or its first request is still being stored."""


# Request fields added after keys were first stored: left out of the hash at their defaults.
LATER_FIELDS = ("no_check", "valid_for", "valid_until", "account")


@dataclass(frozen=True, slots=True)
class IdempotentSend:
    campaign_id: int
    created: bool  # False: an earlier request with this key made the campaign
    result: EnqueueResult | None = None  # what was stored, when created
    scheduled: ScheduledCampaign | None = None


def request_sha256(request: CampaignRequest, timing: Timing) -> str:
    """A hash of the request as the producer reads it (a CSV by its contents, not its path)."""
    fields = {**asdict(request), **{f"timing_{k}": v for k, v in asdict(timing).items()}}
    for later in LATER_FIELDS:  # a key stored before they existed keeps its hash
        if not fields[later]:
            del fields[later]
    if request.to_file is not None:
        digest = hashlib.sha256()
        with request.to_file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
        fields["to_file"] = digest.hexdigest()
    canonical = json.dumps(fields, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def send_campaign_once(
    settings: Settings,
    key: str,
    request: CampaignRequest,
    timing: Timing = Timing(),
    *,
    sessions: sessionmaker[Session] | None = None,
    wait_seconds: float = WAIT_FOR_WINNER_SECONDS,
    expiry_seconds: float = RESERVATION_EXPIRY_SECONDS,
) -> IdempotentSend:
    """send_campaign, unless a request with this key already made a campaign: then that one.

    Raises IdempotencyConflict when the key was used with a different request, or its first
    request is still being stored after `wait_seconds`.
    """
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise IdempotencyConflict(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters, without NUL"
        )
    sha = request_sha256(request, timing)
    with open_sessions(settings.database_url, sessions) as factory:
        reserved = _reserve(factory, key, sha, timedelta(seconds=expiry_seconds))
        if reserved is None:
            campaign_id = _wait_for_winner(factory, key, sha, wait_seconds, expiry_seconds)
            return IdempotentSend(campaign_id, created=False)
        try:
            result, scheduled = send_campaign(
                settings, request, timing, sessions=stamping_sessions(factory, key, reserved)
            )
        except BaseException:
            _give_back(factory, key, reserved)
            raise
    return IdempotentSend(result.campaign_id, created=True, result=result, scheduled=scheduled)


def _reserve(
    sessions: sessionmaker[Session], key: str, sha: str, expiry: timedelta
) -> datetime | None:
    """Reserve the key, or take over an expired reservation; returns the reservation's time
    (what tells it from a later one), None when another request holds the key."""
    now = utcnow()
    try:
        with sessions.begin() as session:
            session.add(IdempotencyKey(key=key, request_sha256=sha, created_at=now))
        return now
    except IntegrityError:
        pass
    with sessions.begin() as session:
        taken = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.key == key,
                IdempotencyKey.campaign_id.is_(None),
                IdempotencyKey.created_at < now - expiry,
            )
            .values(request_sha256=sha, created_at=now)
        )
        return now if rows_changed(taken) else None


def stamping_sessions(
    factory: sessionmaker[Session], key: str, reserved: datetime
) -> sessionmaker[Session]:
    """`factory`'s sessions, whose transaction that stores a campaign also writes its id on
    the key reserved at `reserved`, or fails (nothing stored) if that reservation is gone."""
    stamping = sessionmaker(class_=factory.class_, **factory.kw)
    stamped: list[int] = []

    def stamp(session: Session) -> None:
        if stamped:
            return
        made = [row.id for row in session.identity_map.values() if isinstance(row, Campaign)]
        if not made:
            return
        written = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.key == key,
                IdempotencyKey.campaign_id.is_(None),
                IdempotencyKey.created_at == reserved,
            )
            .values(campaign_id=made[0])
        )
        if not rows_changed(written):
            raise IdempotencyConflict(
                f"the reservation of idempotency key {key!r} expired and a retry took it "
                "over; this request stored nothing"
            )
        stamped.append(made[0])

    event.listen(stamping, "before_commit", stamp)
    return stamping


def _give_back(sessions: sessionmaker[Session], key: str, reserved: datetime) -> None:
    with sessions.begin() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.key == key,
                IdempotencyKey.campaign_id.is_(None),
                IdempotencyKey.created_at == reserved,
            )
        )


def _wait_for_winner(
    sessions: sessionmaker[Session], key: str, sha: str, wait_seconds: float, expiry: float
) -> int:
    deadline = time.monotonic() + wait_seconds
    while True:
        with sessions() as session:
            row = session.execute(
                select(IdempotencyKey.request_sha256, IdempotencyKey.campaign_id).where(
                    IdempotencyKey.key == key
                )
            ).first()
        if row is not None and row.request_sha256 != sha:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was used for a different request: use a new key"
            )
        if row is not None and row.campaign_id is not None:
            return row.campaign_id
        if row is None:  # the first request was refused and gave the key back
            raise IdempotencyConflict(
                f"the first request with key {key!r} was refused; retry to send it again"
            )
        if time.monotonic() > deadline:
            raise IdempotencyConflict(
                f"the first request with key {key!r} is still being stored; retry later (a "
                f"request that died before storing frees its key after {expiry:.0f} s)"
            )
        time.sleep(0.05)
