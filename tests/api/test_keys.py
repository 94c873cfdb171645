"""/keys and database keys on every request, on both backends: the key answered once, its
use, revocation and expiry within the cache's bound, audit entries, and no key in any log,
error or row."""

from __future__ import annotations

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stickerq.api import create_app
from stickerq.api.key_cache import TTL_SECONDS, KeyCache
from stickerq.db import open_sessions
from stickerq.models import ApiKey, AuditEntry, utcnow
from stickerq.producer.api_keys import create_key, hash_key, revoke_key
from stickerq.settings import Settings
from tests.api.conftest import TOKEN, WRITE
from tests.conftest import make_settings
from tests.two_accounts import SID_A, SID_B, two_account_settings


@pytest.fixture
def client(database_url: str, redis_prefix: str) -> TestClient:
    settings = two_account_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens="rw-token-1234-abcd"
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.settings = settings  # type: ignore[attr-defined]
    return client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audit_entries(settings: Settings) -> list[tuple[str, str, str, dict[str, object]]]:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target, json.loads(r.params)) for r in rows]


def test_a_key_made_over_http_works_at_once_and_is_listed_without_its_value(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = client.post(
        "/keys", json={"name": "crm", "scope": "operate", "expires": "90d"}, headers=WRITE
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("sq_") and made.json()["scope"] == "operate"

    assert client.get("/campaigns", headers=bearer(key)).status_code == 200
    listed = client.get("/keys", headers=WRITE)
    assert [k["name"] for k in listed.json()] == ["crm"] and key not in listed.text
    assert listed.json()[0]["last_used_at"] is not None
    assert key not in caplog.text
    settings = client.settings  # type: ignore[attr-defined]
    [(actor, action, target, params)] = audit_entries(settings)
    assert (actor, action, target) == ("env:1", "key.created", "key:crm")
    assert params["scope"] == "operate" and params["account"] is None and params["expires_at"]
    assert key not in json.dumps(params) and hash_key(key) not in json.dumps(params)


def test_an_admin_key_is_refused_the_keys_once_revoked_over_http(client: TestClient) -> None:
    admin = client.post("/keys", json={"name": "ops", "scope": "admin"}, headers=WRITE).json()
    assert client.get("/keys", headers=bearer(admin["key"])).status_code == 200

    revoked = client.delete("/keys/ops", headers=bearer(admin["key"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    settings = client.settings  # type: ignore[attr-defined]
    assert [e[:3] for e in audit_entries(settings)] == [
        ("env:1", "key.created", "key:ops"),
        ("ops", "key.revoked", "key:ops"),  # the key revoked itself: its name is the actor
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Bad Name", "scope": "read"}, 422, "invalid_key"),
        ({"name": "ok", "scope": "root"}, 422, "invalid_request"),
        ({"name": "ok", "scope": "read", "account": "HXNOPE"}, 422, "unknown_account"),
        ({"name": "ok", "scope": "read", "expires": "soon"}, 422, "invalid_expiry"),
        ({"name": "taken", "scope": "read"}, 409, "key_name_taken"),
    ],
)
def test_a_bad_key_request_is_a_problem_and_stores_nothing(
    client: TestClient, body: dict[str, str], status: int, code: str
) -> None:
    assert client.post("/keys", json={"name": "taken", "scope": "read"}, headers=WRITE).is_success

    answer = client.post("/keys", json=body, headers=WRITE)

    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert [k["name"] for k in client.get("/keys", headers=WRITE).json()] == ["taken"]


def test_a_revoked_or_expired_key_is_refused_within_the_caches_time(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = client.settings  # type: ignore[attr-defined]
    cache: KeyCache = client.app.state.keys  # type: ignore[attr-defined]
    now = [1000.0]
    monkeypatch.setattr(cache, "_clock", lambda: now[0])
    revoked = create_key(settings, "test", "soon-revoked", "read").key
    expiring = create_key(settings, "test", "soon-expired", "read", expires="1s")
    for key in (revoked, expiring.key):
        assert client.get("/pauses", headers=bearer(key)).status_code == 200

    revoke_key(settings, "test", "soon-revoked")
    expires_at = expiring.info.expires_at
    assert expires_at is not None
    time.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.05)

    # expiry is checked on every hit; a revocation is seen when the entry is read again
    assert client.get("/pauses", headers=bearer(expiring.key)).status_code == 401
    assert client.get("/pauses", headers=bearer(revoked)).status_code == 200
    now[0] += TTL_SECONDS
    assert client.get("/pauses", headers=bearer(revoked)).status_code == 401


def test_wrong_keys_count_as_failures_and_no_key_is_in_a_row_or_an_answer(
    client: TestClient,
) -> None:
    settings = client.settings  # type: ignore[attr-defined]
    key = create_key(settings, "test", "crm", "read").key
    wrong = key[:-2] + ("AA" if not key.endswith("AA") else "BB")

    for _ in range(3):
        answer = client.get("/pauses", headers=bearer(wrong))
        assert answer.status_code == 401 and wrong not in answer.text
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        [row] = session.scalars(select(ApiKey))
        assert row.key_hash == hash_key(key)
        assert key not in " ".join(str(v) for v in vars(row).values())
    assert "sq_" not in repr(client.app.state.keys._entries)  # type: ignore[attr-defined]


def test_a_key_of_one_account_manages_keys_of_that_account_only(client: TestClient) -> None:
    settings = client.settings  # type: ignore[attr-defined]
    create_key(settings, "test", "of-b", "read", account=SID_B)
    admin_a = create_key(settings, "test", "admin-a", "admin", account=SID_A).key

    foreign = client.post(
        "/keys", json={"name": "x", "scope": "admin", "account": SID_B}, headers=bearer(admin_a)
    )
    assert (foreign.status_code, foreign.json()["code"]) == (403, "other_account")
    made = client.post("/keys", json={"name": "y", "scope": "read"}, headers=bearer(admin_a))
    assert made.status_code == 201 and made.json()["account"] == SID_A
    listed = client.get("/keys", headers=bearer(admin_a)).json()
    assert sorted(k["name"] for k in listed) == ["admin-a", "y"]
    assert client.delete("/keys/of-b", headers=bearer(admin_a)).status_code == 404


def test_a_database_key_meets_a_503_while_the_database_is_down_and_a_token_does_not(
    redis_prefix: str,
) -> None:
    down = "postgresql://postgres@127.0.0.1:9/stickerq"  # nothing listens there
    settings = make_settings(down, redis_prefix, "http://127.0.0.1:9", api_tokens=TOKEN)
    client = TestClient(create_app(settings), raise_server_exceptions=False)

    answer = client.get("/keys", headers=bearer("sq_" + "x" * 43))

    assert (answer.status_code, answer.json()["code"]) == (503, "service_unavailable")
    assert client.get("/accounts", headers=WRITE).status_code == 200  # reads no database
