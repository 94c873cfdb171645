"""Idempotency-Key: a request retried with the same key returns the campaign it first made.

The key is reserved (inserted, campaign_id null) before anything is stored: the primary key
lets one of several concurrent requests win. The winner stores and dispatches the campaign,
then writes its id on the key; if storing fails the reservation is deleted, so nothing is
half-stored and a corrected retry may use the key. A loser waits for the winner's id.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import IdempotencyKey
from stickerq.producer.api import EnqueueResult
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import ScheduledCampaign
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings

WAIT_FOR_WINNER_SECONDS = 30.0  # a loser waits this long for the first request to be stored
MAX_KEY_LENGTH = 255


class IdempotencyConflict(StickerqError):
    """The key was used for a different request, or its first request is still being stored."""


@dataclass(frozen=True, slots=True)
class IdempotentSend:
    campaign_id: int
    created: bool  # False: an earlier request with this key made the campaign
    result: EnqueueResult | None = None  # what was stored, when created
    scheduled: ScheduledCampaign | None = None


def request_sha256(request: CampaignRequest, timing: Timing) -> str:
    """A hash of the request as the producer reads it (a CSV by its contents, not its path)."""
    fields = {**asdict(request), **{f"timing_{k}": v for k, v in asdict(timing).items()}}
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
) -> IdempotentSend:
    """send_campaign, unless a request with this key already made a campaign: then that one.

    Raises IdempotencyConflict when the key was used with a different request.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyConflict(f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters")
    sha = request_sha256(request, timing)
    with open_sessions(settings.database_url, sessions) as factory:
        if not _reserve(factory, key, sha):
            return IdempotentSend(_wait_for_winner(factory, key, sha), created=False)
        try:
            result, scheduled = send_campaign(settings, request, timing, sessions=factory)
        except BaseException:
            with factory.begin() as session:
                session.execute(delete(IdempotencyKey).where(IdempotencyKey.key == key))
            raise
        with factory.begin() as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(campaign_id=result.campaign_id)
            )
    return IdempotentSend(result.campaign_id, created=True, result=result, scheduled=scheduled)


def _reserve(sessions: sessionmaker[Session], key: str, sha: str) -> bool:
    try:
        with sessions.begin() as session:
            session.add(IdempotencyKey(key=key, request_sha256=sha))
    except IntegrityError:
        return False
    return True


def _wait_for_winner(sessions: sessionmaker[Session], key: str, sha: str) -> int:
    deadline = time.monotonic() + WAIT_FOR_WINNER_SECONDS
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
                f"the first request with key {key!r} is still being stored; retry later"
            )
        time.sleep(0.05)
