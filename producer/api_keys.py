"""API keys: made, listed, revoked and verified here, for the CLI (`stickerq keys`) and the
HTTP API (`/keys`, and the guard on every request) alike.

A key is `sq_` and 32 random bytes (URL-safe base64); it is shown once, when it is made, and
only its SHA-256 is stored (stickerq/models.py, ApiKey, says why a fast hash is right).
Making and revoking a key each write an audit entry in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stickerq import audit
from stickerq.db import open_sessions
from stickerq.errors import StickerqError, excerpt
from stickerq.models import ApiKey, utcnow
from stickerq.producer.validity import parse_valid_for
from stickerq.scopes import Scope
from stickerq.settings import Settings

KEY_PREFIX = "sq_"  # tells a stickerq key from other secrets (a secret scanner's pattern)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NAME_RULE = (
    "1 to 64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter "
    "or a digit (e.g. crm-prod)"
)
# last_used_at is written when older than this: a key's use costs no write per request
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyError(StickerqError):
    """A key request that cannot be done; nothing was stored."""


class KeyNotFound(ApiKeyError):
    """No key has that name."""


class KeyNameTaken(ApiKeyError):
    """A key (live or revoked) already has that name."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is known of a key, never its value."""

    name: str
    scope: Scope
    account: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            row.name,
            Scope(row.scope),
            row.account,
            row.created_at,
            row.last_used_at,
            row.expires_at,
            row.revoked_at,
        )


@dataclass(frozen=True, slots=True, repr=False)  # repr=False: the key stays out of logs
class NewKey:
    """A key just made: its value, shown once, and what is stored of it."""

    key: str
    info: KeyInfo


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ApiKeyError(f"key name {excerpt(name)!r} is not valid: a name is {NAME_RULE}")
    return name


def create_key(
    settings: Settings,
    actor: str,
    name: str,
    scope: Scope | str,
    *,
    account: str | None = None,
    expires: str | timedelta | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> NewKey:
    """Make a key and store its hash; the value is in the answer only. Every check runs
    before anything is stored; a taken name stores nothing."""
    check_name(name)
    scope = _scope(scope)
    if account is not None:
        account = settings.account(account).sid  # UnknownAccount: names the known ones
    now = utcnow()
    expires_at = now + parse_valid_for(expires, "--expires") if expires is not None else None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        key_hash=hash_key(key),
        scope=scope.value,
        account=account,
        created_at=now,
        expires_at=expires_at,
    )
    params = {"scope": scope.value, "account": account, "expires_at": expires_at}
    try:
        with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise _taken(name)
            session.add(row)
            audit.record(session, actor, audit.Action.KEY_CREATED, f"key:{name}", **params)
    except IntegrityError:  # made meanwhile by another caller
        raise _taken(name) from None
    return NewKey(key, KeyInfo.of(row))


def list_keys(
    settings: Settings, *, sessions: sessionmaker[Session] | None = None
) -> list[KeyInfo]:
    """Every key, revoked and expired ones too, by name."""
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        return [KeyInfo.of(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.name))]


def revoke_key(
    settings: Settings, actor: str, name: str, *, sessions: sessionmaker[Session] | None = None
) -> KeyInfo:
    """Revoke the key at once in the database (the API's guard sees it within its cache's
    time, stickerq/api/key_cache.py). Revoking a revoked key changes nothing and writes no
    audit entry."""
    now = utcnow()
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.name == name).with_for_update())
        if row is None:
            raise KeyNotFound(
                f"no key is named {excerpt(name)!r}: `stickerq keys list` shows the keys"
            )
        if row.revoked_at is None:
            row.revoked_at = now
            params = {"scope": row.scope, "account": row.account, "expires_at": row.expires_at}
            audit.record(session, actor, audit.Action.KEY_REVOKED, f"key:{name}", **params)
        return KeyInfo.of(row)


def verify_key(
    settings: Settings, presented: str, *, sessions: sessionmaker[Session] | None = None
) -> KeyInfo | None:
    """The usable key `presented` is, or None (not ours, unknown, revoked or expired)."""
    if not presented.startswith(KEY_PREFIX):
        return None  # not one of ours: no lookup
    return usable_key(settings, hash_key(presented), sessions=sessions)


def usable_key(
    settings: Settings, key_hash: str, *, sessions: sessionmaker[Session] | None = None
) -> KeyInfo | None:
    """The usable key of that hash, or None. Records its use when the last record is older
    than LAST_USED_PRECISION: a conditional UPDATE, so that many processes verifying the
    same key write it about once a minute between them, not once a request."""
    now = utcnow()
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
        if row is None:
            return None
        info = KeyInfo.of(row)
        if not info.usable(now):
            return None
        stale = now - LAST_USED_PRECISION
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == row.id)
            .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale))
            .values(last_used_at=now)
        )
        return info


def _scope(value: Scope | str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        known = ", ".join(Scope)
        raise ApiKeyError(f"scope {excerpt(value)!r} is not one of {known}") from None


def _taken(name: str) -> KeyNameTaken:
    return KeyNameTaken(
        f"a key named {name!r} exists already (revoked keys keep their names, which the audit "
        "log uses): choose another name, or `stickerq keys list` to see them"
    )
