"""Idempotency-Key: a request retried with the same key returns the campaign it first made.

The key is reserved (a row without a campaign, naming its owner) before anything is stored:
the primary key lets one of several concurrent requests win. The winner stores the campaign,
and the store's own transaction writes the campaign's id on the key just before it commits,
where the key still names the winner's token: a campaign is never committed without its key,
whenever the process dies. If storing fails the reservation is deleted, so nothing is
half-stored and a corrected retry may use the key.

A request that finds the key reserved never waits for it (a waiting request would hold a
server thread): while the owner lives it is refused at once with IdempotencyInProgress (the
HTTP API's 409 with Retry-After); once the owner is known dead (producer/key_owners.py: an
advisory lock on PostgreSQL, the owner's process on SQLite) it takes the key over, by an
UPDATE conditional on the dead owner's token, so of two racing retries one wins. Should an
owner thought dead still be storing after all, its commit finds its token gone and stores
nothing: a key never makes two campaigns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError
from stickerq.models import Campaign, IdempotencyKey, utcnow
from stickerq.producer.api import EnqueueResult
from stickerq.producer.key_owners import OwnerProof, owner_proof
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import ScheduledCampaign
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings

MAX_KEY_LENGTH = 255
# What a request refused while its key's first request stores is told to wait: most stores
# take well under a second, a million recipients under a minute.
RETRY_AFTER_SECONDS = 1
# Reads of the key before giving up: the row changed under us each time (inserted, given
# back or taken over by a racing request), which a few rounds settle.
RESERVE_ROUNDS = 3


class IdempotencyConflict(StickerqError):
    """The key was used for a different request, or cannot be used by this one now."""


class IdempotencyInProgress(IdempotencyConflict):
    """The key's first request is still being stored by a live process: retry after
    `retry_after` seconds (the same request then answers the campaign it made)."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# The hash of a request whose recipient was erased (producer/erasure.py): a hash of a body
# holding the number is the number, to anyone who tries every number. The key still answers
# its campaign, to a retry of any body: it can no longer be compared, and a retry must not
# make a second campaign.
ERASED_SHA256 = "erased"

# Request fields added after keys were first stored: left out of the hash at their defaults.
LATER_FIELDS = (
    "no_check",
    "valid_for",
    "valid_until",
    "account",
    "in_window",
    "to_window",
    "window_since",
)


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
    actor: str | None = None,
) -> IdempotentSend:
    """send_campaign, unless a request with this key already made a campaign: then that one.

    Raises IdempotencyInProgress at once when a live request is storing the key, and
    IdempotencyConflict when the key was used with a different request. A replay stores
    nothing, so the audit log has the first request's entry only (under `actor`).
    """
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise IdempotencyConflict(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters, without NUL"
        )
    sha = request_sha256(request, timing)
    with (
        open_sessions(settings.database_url, sessions) as factory,
        owner_proof(factory, key) as proof,
    ):
        made = _reserve(factory, key, sha, proof)
        if made is not None:
            return IdempotentSend(made, created=False)
        try:
            result, scheduled = send_campaign(
                settings,
                request,
                timing,
                sessions=stamping_sessions(factory, key, proof.token),
                actor=actor,
            )
        except BaseException:
            _give_back(factory, key, proof.token)
            raise
    return IdempotentSend(result.campaign_id, created=True, result=result, scheduled=scheduled)


def _reserve(sessions: sessionmaker[Session], key: str, sha: str, proof: OwnerProof) -> int | None:
    """Reserve the key for this request (None), or the campaign its first request made."""
    for _ in range(RESERVE_ROUNDS):
        with sessions() as session:
            row = session.execute(
                select(
                    IdempotencyKey.request_sha256,
                    IdempotencyKey.campaign_id,
                    IdempotencyKey.owner_token,
                    IdempotencyKey.owner_process,
                ).where(IdempotencyKey.key == key)
            ).first()
        if row is not None and (
            row.campaign_id is not None or proof.owner_alive(row.owner_process, row.owner_token)
        ):
            if row.request_sha256 not in (sha, ERASED_SHA256):
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was used for a different request: use a new key"
                )
            if row.campaign_id is not None:
                return int(row.campaign_id)
            break
        if not proof.held:  # a live request holds the key, about to reserve or take it over
            break
        mine = {
            "request_sha256": sha,
            "created_at": utcnow(),
            "owner_token": proof.token,
            "owner_process": proof.process,
        }
        if row is None:
            reserved = _insert(sessions, key, mine)
        else:  # its owner is dead: it stored nothing, and stores nothing now
            reserved = _take_over(sessions, key, mine, row.owner_token)
        if reserved:
            return None
    raise IdempotencyInProgress(
        f"the first request with idempotency key {key!r} is still being stored; retry in "
        f"{RETRY_AFTER_SECONDS} s, when the same request answers the campaign it made"
    )


def _insert(sessions: sessionmaker[Session], key: str, mine: dict[str, Any]) -> bool:
    """Reserve a key no request has; False when another request reserved it first."""
    try:
        with sessions.begin() as session:
            session.add(IdempotencyKey(key=key, **mine))
    except IntegrityError:
        return False
    return True


def _take_over(
    sessions: sessionmaker[Session], key: str, mine: dict[str, Any], dead_token: str | None
) -> bool:
    """Take over the reservation of a dead owner; False when another request took it first."""
    with sessions.begin() as session:
        taken = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.key == key,
                IdempotencyKey.campaign_id.is_(None),
                # null: reserved before owners were recorded (migration 0012)
                IdempotencyKey.owner_token.is_not_distinct_from(dead_token),
            )
            .values(**mine)
        )
        return rows_changed(taken) == 1


def stamping_sessions(
    factory: sessionmaker[Session], key: str, token: str
) -> sessionmaker[Session]:
    """`factory`'s sessions, whose transaction that stores a campaign also writes its id on
    the key reserved under `token`, or fails (nothing stored) if that reservation is gone."""
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
                IdempotencyKey.owner_token == token,
            )
            .values(campaign_id=made[0])
        )
        if not rows_changed(written):
            raise IdempotencyConflict(
                f"a retry of idempotency key {key!r} took its reservation over (this request "
                "was thought dead); this request stored nothing"
            )
        stamped.append(made[0])

    event.listen(stamping, "before_commit", stamp)
    return stamping


def _give_back(sessions: sessionmaker[Session], key: str, token: str) -> None:
    with sessions.begin() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.key == key,
                IdempotencyKey.campaign_id.is_(None),
                IdempotencyKey.owner_token == token,
            )
        )
