"""The dashboard in-process (TestClient) over a real database and Redis: login and its cookie,
CSRF, read-only sessions, escaping, and its buttons calling the producer's functions.
The browser test (test_dashboard_browser.py) watches it live against a real worker."""

from __future__ import annotations

import base64
import re
import time

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from stickerq.api import create_app
from stickerq.db import open_sessions
from stickerq.models import Campaign, Message, Pause, WebhookEndpoint, utcnow
from stickerq.settings import Settings
from tests.conftest import REDIS_URL, make_settings

TOKEN = "dash-rw-token-8c41e2-7d"
READ_ONLY = "dash-ro-token-5f0b9a-3e"
TOKENS = f"{TOKEN},{READ_ONLY}:ro"
WRITE = {"Authorization": f"Bearer {TOKEN}"}
NAME = '<img src=x onerror="alert(1)">'
DETAIL = "<script>alert(2)</script> & more"


def _settings(database_url: str, redis_prefix: str, tokens: str = TOKENS) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=tokens)


def _client(settings: Settings, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(settings), base_url=base_url, raise_server_exceptions=False)


@pytest.fixture
def settings(pg_database: str, redis_prefix: str) -> Settings:
    return _settings(pg_database, redis_prefix)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return _client(settings)


def _nonce(client: TestClient) -> str:
    form = client.get("/login")
    assert form.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None
    return found.group(1)


def _log_in(client: TestClient, token: str = TOKEN) -> str:
    """Log in through the form; returns the session's CSRF value from the page."""
    answer = client.post(
        "/login", data={"token": token, "csrf": _nonce(client)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


def _campaign(client: TestClient, name: str = "spring") -> int:
    body = {"sticker_id": "media-1", "recipients": ["+919812345678", "+919812345679"]}
    answer = client.post("/campaigns", json={**body, "name": name}, headers=WRITE)
    assert answer.status_code == 201, answer.text
    campaign_id: int = answer.json()["campaign_id"]
    return campaign_id


def _status(settings: Settings, campaign_id: int) -> str | None:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))


def _fail_messages(settings: Settings, campaign_id: int, detail: str = DETAIL) -> None:
    with open_sessions(settings.database_url) as sessions, sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id)
            .values(status="failed", last_error_code="WA400", last_error_detail=detail)
        )


def test_without_a_session_the_page_sends_to_login_and_the_board_is_401(
    client: TestClient,
) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    board = client.get("/dashboard/board")
    assert board.status_code == 401
    assert board.json()["code"] == "not_logged_in"
    assert client.post("/dashboard/campaigns/1/pause").status_code == 401


def test_a_wrong_token_or_a_missing_nonce_gets_no_session(client: TestClient) -> None:
    wrong = client.post("/login", data={"token": "nope", "csrf": _nonce(client)})
    assert wrong.status_code == 401
    assert "that token is not valid" in wrong.text
    fresh = TestClient(client.app, raise_server_exceptions=False)  # no nonce cookie
    forged = fresh.post("/login", data={"token": TOKEN, "csrf": "made-up"})
    assert forged.status_code == 403
    for tried in (client, fresh):
        assert "stickerq_session" not in tried.cookies
        assert tried.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_http_only_strict_secure_on_https_and_holds_no_token(
    settings: Settings,
) -> None:
    for base_url, secure in (("http://testserver", False), ("https://testserver", True)):
        client = _client(settings, base_url)
        answer = client.post(
            "/login", data={"token": TOKEN, "csrf": _nonce(client)}, follow_redirects=False
        )
        cookie = next(
            value
            for name, value in answer.headers.multi_items()
            if name == "set-cookie" and value.startswith("stickerq_session=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert ("Secure" in cookie) is secure
        value = cookie.split(";")[0].split("=", 1)[1]
        payload = value.split(".")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert TOKEN not in value
        assert TOKEN.encode() not in decoded


def test_a_tampered_session_or_one_whose_token_was_removed_is_refused(
    settings: Settings, redis_prefix: str
) -> None:
    client = _client(settings)
    _log_in(client)
    cookie = client.cookies["stickerq_session"]
    tampered = _client(settings)
    tampered.cookies.set("stickerq_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert tampered.get("/", follow_redirects=False).status_code == 303
    rotated = _client(
        _settings(settings.database_url, redis_prefix, tokens="another-token-0123456789")
    )
    rotated.cookies.set("stickerq_session", cookie)
    assert rotated.get("/", follow_redirects=False).status_code == 303


def test_buttons_need_the_sessions_csrf_token(client: TestClient, settings: Settings) -> None:
    campaign_id = _campaign(client)
    csrf = _log_in(client)
    path = f"/dashboard/campaigns/{campaign_id}/pause"
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        answer = client.post(path, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["code"] == "csrf_failed"
    assert _status(settings, campaign_id) == "queued"
    assert client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert _status(settings, campaign_id) == "paused"


def test_a_read_only_session_sees_everything_but_no_button_and_cannot_act(
    client: TestClient, settings: Settings
) -> None:
    campaign_id = _campaign(client, name="read me")
    _fail_messages(settings, campaign_id)
    csrf = _log_in(client, READ_ONLY)
    page = client.get("/")
    assert "read me" in page.text
    assert "read-only" in page.text
    assert "WA400" in page.text
    assert "data-action" not in page.text
    assert 'class="act"' not in page.text
    answer = client.post(
        f"/dashboard/campaigns/{campaign_id}/requeue",
        data={"status": "failed"},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "insufficient_scope"


def test_names_and_error_details_are_escaped_and_the_page_forbids_inline_scripts(
    client: TestClient, settings: Settings
) -> None:
    campaign_id = _campaign(client, name=NAME)
    _fail_messages(settings, campaign_id)
    _log_in(client)
    for path in ("/", "/dashboard/board"):
        answer = client.get(path)
        assert NAME not in answer.text
        assert "<script>alert(2)" not in answer.text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in answer.text
        assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; more" in answer.text
        assert "+919812345678" not in answer.text  # recipients are masked
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy


def test_pause_resume_and_cancel_from_the_dashboard(database_url: str, redis_prefix: str) -> None:
    settings = _settings(database_url, redis_prefix)
    client = _client(settings)
    campaign_id = _campaign(client)
    headers = {"X-CSRF-Token": _log_in(client)}
    base = f"/dashboard/campaigns/{campaign_id}"
    paused = client.post(f"{base}/pause", headers=headers)
    assert paused.json()["message"] == f"campaign {campaign_id} paused: paused from the dashboard"
    assert _status(settings, campaign_id) == "paused"
    assert f'data-campaign="{campaign_id}" data-status="paused"' in client.get("/").text
    assert client.post(f"{base}/resume", headers=headers).status_code == 200
    assert _status(settings, campaign_id) == "queued"
    assert client.post(f"{base}/cancel", headers=headers).status_code == 200
    assert _status(settings, campaign_id) == "cancelled"
    refused = client.post(f"{base}/resume", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "campaign_state"
    missing = client.post("/dashboard/campaigns/999/pause", headers=headers)
    assert missing.status_code == 404


def test_requeue_from_the_dashboard_moves_failures_back_to_pending(
    client: TestClient, settings: Settings
) -> None:
    campaign_id = _campaign(client)
    _fail_messages(settings, campaign_id, detail="Refer to correct payload format")
    headers = {"X-CSRF-Token": _log_in(client)}
    board = client.get("/dashboard/board").text
    assert 'data-failure="failed:WA400"' in board
    answer = client.post(
        f"/dashboard/campaigns/{campaign_id}/requeue",
        data={"status": "failed", "code": "WA400"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"].startswith(f"campaign {campaign_id}: 2 failed WA400")
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        pending = session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id, Message.status == "pending"
            )
        )
    assert pending == 2
    assert 'data-failure="failed:WA400"' not in client.get("/dashboard/board").text


def test_a_pause_in_force_is_listed_and_lifted_from_the_dashboard(
    client: TestClient, settings: Settings
) -> None:
    with open_sessions(settings.database_url) as sessions, sessions.begin() as session:
        session.add(
            Pause(scope="account", sid=settings.kaleyra_sid, code="E110", reason="<b>low</b>")
        )
    headers = {"X-CSRF-Token": _log_in(client)}
    board = client.get("/dashboard/board").text
    assert f'data-pause="account:{settings.kaleyra_sid}:"' in board
    assert "&lt;b&gt;low&lt;/b&gt;" in board
    answer = client.post(
        "/dashboard/pauses/resume", data={"sid": settings.kaleyra_sid}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert "1 pause(s) lifted" in answer.json()["message"]
    assert "data-pause=" not in client.get("/dashboard/board").text


def test_logout_ends_the_session_on_the_server_not_only_its_cookie(client: TestClient) -> None:
    csrf = _log_in(client)
    kept = client.cookies["stickerq_session"]
    assert client.post("/logout").status_code == 403  # no CSRF value
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("stickerq_session", kept)  # the cookie kept and sent again
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/dashboard/board").status_code == 401
    path = "/dashboard/pauses/resume"
    assert client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_a_session_ends_after_its_idle_time_and_each_use_renews_it(
    database_url: str, redis_prefix: str
) -> None:
    settings = _settings(database_url, redis_prefix).model_copy(update={"session_idle_minutes": 5})
    client = _client(settings)
    _log_in(client)
    store = redis.Redis.from_url(REDIS_URL)
    [key] = store.keys(f"{redis_prefix}session:*")
    assert TOKEN.encode() not in store.get(key)  # a fingerprint, never the token
    store.pexpire(key, 60_000)  # as if it had been idle 4 of its 5 minutes
    assert client.get("/dashboard/board").status_code == 200
    assert 299 <= store.ttl(key) <= 300  # the use renewed it
    store.pexpire(key, 1)  # its idle time runs out
    time.sleep(0.01)
    assert client.get("/dashboard/board").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303
    store.close()


def test_failed_logins_are_throttled_per_address(client: TestClient) -> None:
    for _ in range(10):
        answer = client.post("/login", data={"token": "guess-guess-guess", "csrf": _nonce(client)})
        assert answer.status_code == 401
    answer = client.post("/login", data={"token": TOKEN, "csrf": _nonce(client)})
    assert answer.status_code == 429 and "Retry-After" in answer.headers
    assert 'stickerq_api_auth_failures_total{kind="login"}' in client.get("/metrics").text


def test_an_active_campaign_older_than_the_newest_twenty_is_still_shown(
    client: TestClient, settings: Settings
) -> None:
    oldest = _campaign(client, name="old but running")
    for n in range(20):
        made = _campaign(client, name=f"newer {n}")
        client.post(f"/campaigns/{made}/cancel", headers=WRITE)
    _log_in(client)
    board = client.get("/dashboard/board").text
    assert board.count("<article") == 21
    assert f'data-campaign="{oldest}" data-status="queued"' in board


def test_a_disabled_webhook_is_shown_on_the_board(client: TestClient, settings: Settings) -> None:
    with open_sessions(settings.database_url) as sessions, sessions.begin() as session:
        session.add(
            WebhookEndpoint(
                url="https://crm.example/<hook>",
                secret="whsec_never_shown_on_the_board",
                events="message.failed",
                disabled_at=utcnow(),
                disabled_reason="every POST failed for 3 days; last: HTTP 503",
            )
        )
    _log_in(client)
    board = client.get("/dashboard/board").text
    assert 'data-webhook="1"' in board and "HTTP 503" in board
    assert "https://crm.example/&lt;hook&gt;" in board
    assert "whsec_never_shown_on_the_board" not in board
