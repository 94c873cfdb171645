"""API keys in the database, on SQLite and PostgreSQL: made with only a hash stored, refused
when named badly or twice (nothing stored), revoked, expired, and audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import UnknownAccount
from stickerq.models import ApiKey, AuditEntry, utcnow
from stickerq.producer.api_keys import (
    KEY_PREFIX,
    LAST_USED_PRECISION,
    ApiKeyError,
    KeyNameTaken,
    KeyNotFound,
    create_key,
    hash_key,
    list_keys,
    revoke_key,
    verify_key,
)
from stickerq.producer.validity import ValidityError
from stickerq.scopes import Scope
from stickerq.settings import Settings
from tests.conftest import make_settings

ACTOR = "cli:tester@host"


@pytest.fixture
def key_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9")


def _rows(sessions: sessionmaker[Session]) -> list[ApiKey]:
    with sessions() as session:
        return list(session.scalars(select(ApiKey)))


def _audit(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_a_key_is_shown_once_and_only_its_hash_is_stored(
    key_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    made = create_key(key_settings, ACTOR, "crm-prod", "send", expires="90d")

    assert made.key.startswith(KEY_PREFIX) and len(made.key) > 40
    [row] = _rows(sessions)
    assert row.key_hash == hash_key(made.key) != made.key
    stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert not any(made.key in value for value in stored)
    assert made.key not in repr(made) and made.key not in repr(made.info)
    assert row.scope == "send" and row.account is None
    assert row.expires_at is not None
    assert abs(row.expires_at - row.created_at - timedelta(days=90)) < timedelta(seconds=1)


def test_making_and_revoking_a_key_are_audited_without_the_key(
    key_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    sid = key_settings.account().sid
    made = create_key(key_settings, ACTOR, "crm", Scope.OPERATE, account=sid)
    revoke_key(key_settings, "env:1", "crm")
    revoke_key(key_settings, "env:1", "crm")  # again: nothing changes, nothing audited

    entries = _audit(sessions)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        (ACTOR, "key.created", "key:crm"),
        ("env:1", "key.revoked", "key:crm"),
    ]
    params = json.loads(entries[0].params)
    assert params == {"scope": "operate", "account": sid, "expires_at": None}
    assert all(made.key not in e.params and hash_key(made.key) not in e.params for e in entries)


@pytest.mark.parametrize(
    ("name", "scope", "account", "expires", "error", "says"),
    [
        ("Has Space", "read", None, None, ApiKeyError, "lower-case letters"),
        ("env:1", "read", None, None, ApiKeyError, "is not valid"),
        ("", "read", None, None, ApiKeyError, "is not valid"),
        ("x" * 65, "read", None, None, ApiKeyError, "1 to 64 characters"),
        ("ok", "root", None, None, ApiKeyError, "read, send, operate, admin"),
        ("ok", "read", "NOSUCHSID", None, UnknownAccount, "no Kaleyra account"),
        ("ok", "read", None, "90 days", ValidityError, "--expires"),
        ("ok", "read", None, "0d", ValidityError, "at least one second"),
    ],
)
def test_a_bad_key_request_says_what_is_wrong_and_stores_nothing(
    key_settings: Settings,
    sessions: sessionmaker[Session],
    name: str,
    scope: str,
    account: str | None,
    expires: str | None,
    error: type[Exception],
    says: str,
) -> None:
    with pytest.raises(error, match=says):
        create_key(key_settings, ACTOR, name, scope, account=account, expires=expires)

    assert _rows(sessions) == [] and _audit(sessions) == []


def test_a_taken_name_is_refused_even_once_revoked_and_nothing_more_is_stored(
    key_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    create_key(key_settings, ACTOR, "crm", "read")
    revoke_key(key_settings, ACTOR, "crm")

    with pytest.raises(KeyNameTaken, match="choose another name"):
        create_key(key_settings, ACTOR, "crm", "admin")

    assert len(_rows(sessions)) == 1 and len(_audit(sessions)) == 2


def test_revoking_an_unknown_key_says_where_to_look(key_settings: Settings) -> None:
    with pytest.raises(KeyNotFound, match="stickerq keys list"):
        revoke_key(key_settings, ACTOR, "nope")


def test_a_key_verifies_until_revoked(key_settings: Settings) -> None:
    made = create_key(key_settings, ACTOR, "crm", "operate")

    found = verify_key(key_settings, made.key)
    assert found is not None and (found.name, found.scope) == ("crm", Scope.OPERATE)
    assert verify_key(key_settings, made.key + "x") is None
    assert verify_key(key_settings, "not-a-stickerq-key") is None

    revoke_key(key_settings, ACTOR, "crm")
    assert verify_key(key_settings, made.key) is None


def test_an_expired_key_does_not_verify(
    key_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    made = create_key(key_settings, ACTOR, "crm", "read", expires="1h")
    assert verify_key(key_settings, made.key) is not None
    with sessions.begin() as session:
        session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))

    assert verify_key(key_settings, made.key) is None


def test_last_used_is_written_at_most_once_a_minute(
    key_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    made = create_key(key_settings, ACTOR, "crm", "read")
    [fresh] = list_keys(key_settings)
    assert fresh.last_used_at is None

    verify_key(key_settings, made.key)
    [first] = _rows(sessions)
    verify_key(key_settings, made.key)
    [second] = _rows(sessions)
    assert first.last_used_at is not None and second.last_used_at == first.last_used_at

    long_ago = utcnow() - LAST_USED_PRECISION - timedelta(seconds=1)
    with sessions.begin() as session:
        session.execute(update(ApiKey).values(last_used_at=long_ago))
    verify_key(key_settings, made.key)
    [third] = _rows(sessions)
    assert third.last_used_at is not None and third.last_used_at > long_ago
