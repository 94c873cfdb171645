"""The dashboard with `stickerq keys` keys: a login with a database key, buttons by scope, an
account-restricted key's board, sessions that end with their key, and a cookie every API
process accepts."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from stickerq.api.key_cache import TTL_SECONDS, KeyCache
from stickerq.producer.api_keys import create_key, revoke_key
from stickerq.settings import Settings
from tests.api.test_dashboard import _client, _log_in, _nonce, _status
from tests.conftest import REDIS_URL
from tests.two_accounts import SID_A, SID_B, two_account_settings

TOKEN = "dash-rw-token-8c41e2-7d"
WRITE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(pg_database: str, redis_prefix: str) -> Settings:
    return two_account_settings(pg_database, redis_prefix, "http://127.0.0.1:9", api_tokens=TOKEN)


def _campaign(client: TestClient, account: str) -> int:
    body = {"sticker_id": "media-1", "recipients": ["+919812345678"], "account": account}
    answer = client.post("/campaigns", json={**body, "name": f"of {account}"}, headers=WRITE)
    assert answer.status_code == 201, answer.text
    campaign_id: int = answer.json()["campaign_id"]
    return campaign_id


def test_an_operate_key_logs_in_acts_and_its_session_ends_when_it_is_revoked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(settings)
    campaign_id = _campaign(client, SID_A)
    key = create_key(settings, "test", "ops", "operate").key
    cache: KeyCache = client.app.state.keys  # type: ignore[attr-defined]
    now = [1000.0]
    monkeypatch.setattr(cache, "_clock", lambda: now[0])

    csrf = _log_in(client, key)
    assert "data-action" in client.get("/").text
    paused = client.post(
        f"/dashboard/campaigns/{campaign_id}/pause", headers={"X-CSRF-Token": csrf}
    )
    assert paused.status_code == 200, paused.text
    assert _status(settings, campaign_id) == "paused"

    revoke_key(settings, "test", "ops")
    now[0] += TTL_SECONDS  # the cache's bound: every process sees it by then
    assert client.get("/dashboard/board").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303
    path = f"/dashboard/campaigns/{campaign_id}/resume"
    assert client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_a_revoked_or_unknown_key_cannot_log_in(settings: Settings) -> None:
    client = _client(settings)
    key = create_key(settings, "test", "gone", "admin").key
    revoke_key(settings, "test", "gone")

    for given in (key, "sq_" + "x" * 43):
        answer = client.post("/login", data={"token": given, "csrf": _nonce(client)})
        assert answer.status_code == 401 and given not in answer.text


@pytest.mark.parametrize("scope", ["read", "send"])
def test_a_key_below_operate_sees_the_board_with_no_button_and_cannot_act(
    settings: Settings, scope: str
) -> None:
    client = _client(settings)
    campaign_id = _campaign(client, SID_A)
    csrf = _log_in(client, create_key(settings, "test", "viewer", scope).key)

    page = client.get("/").text
    assert f"of {SID_A}" in page and "data-action" not in page
    answer = client.post(
        f"/dashboard/campaigns/{campaign_id}/cancel", headers={"X-CSRF-Token": csrf}
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "insufficient_scope")
    assert _status(settings, campaign_id) == "queued"


def test_an_account_restricted_key_sees_and_acts_on_its_account_only(settings: Settings) -> None:
    client = _client(settings)
    of_a, of_b = _campaign(client, SID_A), _campaign(client, SID_B)
    csrf = _log_in(client, create_key(settings, "test", "crm-a", "operate", account=SID_A).key)

    for path in ("/", "/dashboard/board"):
        shown = client.get(path).text
        assert f"of {SID_A}" in shown and f"of {SID_B}" not in shown
    headers = {"X-CSRF-Token": csrf}
    refused = client.post(f"/dashboard/campaigns/{of_b}/pause", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "campaign_not_found")
    assert _status(settings, of_b) == "queued"
    lift = client.post("/dashboard/pauses/resume", data={"sid": SID_B}, headers=headers)
    assert (lift.status_code, lift.json()["code"]) == (403, "other_account")
    assert client.post(f"/dashboard/campaigns/{of_a}/pause", headers=headers).status_code == 200


def test_a_session_opened_on_one_api_process_is_good_on_another(settings: Settings) -> None:
    first, second = _client(settings), _client(settings)
    _log_in(first, create_key(settings, "test", "ops", "operate").key)

    second.cookies.set("stickerq_session", first.cookies["stickerq_session"])
    assert second.get("/dashboard/board").status_code == 200
    store = redis.Redis.from_url(REDIS_URL)
    [kept] = store.keys(f"{settings.redis_prefix}session:*")
    assert b"sq_" not in store.get(kept)  # the key's hash, never the key
    store.close()


def test_after_redis_lost_the_secret_a_new_login_is_good_on_every_process(
    settings: Settings,
) -> None:
    first, second = _client(settings), _client(settings)
    key = create_key(settings, "test", "ops", "operate").key
    _log_in(first, key)
    _log_in(second, key)  # both processes know the secret of now
    store = redis.Redis.from_url(REDIS_URL)
    store.delete(*store.keys(f"{settings.redis_prefix}*"))  # Redis lost: secret and sessions
    store.close()

    _log_in(first, key)  # a new secret, made by the first process to need it

    second.cookies.set("stickerq_session", first.cookies["stickerq_session"])
    assert second.get("/dashboard/board").status_code == 200
