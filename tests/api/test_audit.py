"""The audit log through the HTTP API and the dashboard, on SQLite and PostgreSQL: each route
that changes something records its entry under the token's name (`env:N`), each dashboard
button under the viewer's; a refusal or an idempotent retry records nothing; `GET /audit`
answers admin keys only, filtered."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from stickerq.db import open_sessions
from stickerq.models import Message, Pause
from stickerq.settings import Settings
from tests.api.conftest import BODY, READ, WRITE
from tests.api.test_dashboard import TOKEN as DASHBOARD_TOKEN
from tests.api.test_dashboard import WRITE as DASHBOARD_WRITE
from tests.api.test_dashboard import _client, _log_in, _settings
from tests.conftest import SENDER

A, B = BODY["recipients"]
VIEWER_TOKEN = "dash-rw-viewer-2b7e91-0c"  # env:2, the one the dashboard is logged in with


def audit(
    client: TestClient, headers: dict[str, str] = WRITE, **params: Any
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The entries GET /audit answers, oldest first, numbers in full."""
    answer = client.get("/audit", params={"show_numbers": True, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    found = [(e["actor"], e["action"], e["target"], e["params"]) for e in answer.json()["entries"]]
    return found[::-1]


def settings_of(client: TestClient) -> Settings:
    settings: Settings = client.settings  # type: ignore[attr-defined]
    return settings


def fail_messages(settings: Settings) -> None:
    with open_sessions(settings.database_url) as sessions, sessions.begin() as session:
        session.execute(update(Message).values(status="failed", last_error_code="WA400"))


def test_each_route_records_its_change_under_the_tokens_name(client: TestClient) -> None:
    settings, sid = settings_of(client), settings_of(client).kaleyra_sid
    keyed = {**WRITE, "Idempotency-Key": "order-17"}
    made = client.post("/campaigns", json=BODY, headers=keyed).json()["campaign_id"]
    assert client.post("/campaigns", json=BODY, headers=keyed).status_code == 200  # a retry
    assert client.post(
        f"/campaigns/{made}/pause", json={"reason": "typo"}, headers=WRITE
    ).is_success
    assert client.post(f"/campaigns/{made}/resume", headers=WRITE).is_success
    fail_messages(settings)
    requeue = {"campaign_id": made, "status": "failed", "code": "WA400"}
    assert client.post("/requeue", json=requeue, headers=WRITE).is_success
    assert client.post(f"/campaigns/{made}/cancel", headers=WRITE).is_success
    assert client.post(f"/campaigns/{made}/pause", headers=WRITE).status_code == 409  # refused
    assert client.post("/suppressions", json={"numbers": [A]}, headers=WRITE).is_success
    imported = client.post("/suppressions/import", content=f"phone\n{B}\n".encode(), headers=WRITE)
    assert imported.is_success
    assert client.delete(f"/suppressions/{B}", headers=WRITE).is_success
    rate = client.put(f"/senders/{SENDER}/rate", json={"rate_per_second": 40}, headers=WRITE)
    assert rate.is_success
    assert client.delete(f"/senders/{SENDER}/rate", headers=WRITE).is_success
    with open_sessions(settings.database_url) as sessions, sessions.begin() as session:
        session.add(Pause(scope="sender", sid=sid, sender=SENDER, code="WA401", reason="x"))
    assert client.post("/pauses/resume", json={"sender": SENDER}, headers=WRITE).is_success
    assert client.delete(f"/recipients/{B}", params={"dry_run": True}, headers=WRITE).is_success
    assert client.delete(f"/recipients/{B}", headers=WRITE).is_success

    entries = audit(client)
    campaign = f"campaign:{made}"
    erased = entries[-1][2]
    assert [(actor, action, target) for actor, action, target, _ in entries] == [
        ("env:1", "campaign.created", campaign),
        ("env:1", "campaign.paused", campaign),
        ("env:1", "campaign.resumed", campaign),
        ("env:1", "campaign.requeued", campaign),
        ("env:1", "campaign.cancelled", campaign),
        ("env:1", "suppression.added", f"suppression:{A}"),
        ("env:1", "suppressions.imported", f"account:{sid}"),
        ("env:1", "suppression.removed", erased.replace("number:", "suppression:")),
        ("env:1", "sender_rate.set", f"sender:{SENDER}"),
        ("env:1", "sender_rate.reset", f"sender:{SENDER}"),
        ("env:1", "pause.lifted", f"sender:{SENDER}"),
        ("env:1", "number.erased", erased),
    ]
    assert erased.startswith("number:") and B not in str(entries)
    assert entries[1][3] == {"reason": "typo"}
    assert entries[3][3] == {"status": "failed", "code": "WA400", "requeued": 2}
    assert entries[6][3] == {"added": 1, "already": 0, "invalid": 0, "reason": "opted out"}
    assert entries[8][3] == {"rate_per_second": 40.0}


def test_reading_the_audit_log_needs_an_admin_key_and_takes_filters(client: TestClient) -> None:
    client.post("/suppressions", json={"numbers": [A, B]}, headers=WRITE)

    assert client.get("/audit", headers=READ).json()["code"] == "insufficient_scope"
    assert client.get("/audit").status_code == 401
    page = client.get("/audit", params={"limit": 1}, headers=WRITE).json()
    assert page["more"] is True and page["limit"] == 1
    assert [e["target"] for e in page["entries"]] == ["suppression:+91******5679"]  # masked
    assert audit(client, actor="env:2") == []
    assert audit(client, since="2030-01-01T00:00:00Z") == []
    assert len(audit(client, since="5m", actor="env:1")) == 2
    bad = client.get("/audit", params={"since": "soon"}, headers=WRITE)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_request")
    assert client.get("/audit", params={"limit": 1001}, headers=WRITE).status_code == 422


@pytest.fixture
def dashboard(pg_database: str, redis_prefix: str) -> TestClient:
    settings = _settings(pg_database, redis_prefix, f"{DASHBOARD_TOKEN},{VIEWER_TOKEN}")
    client = _client(settings)
    client.settings = settings  # type: ignore[attr-defined]
    return client


def test_dashboard_buttons_record_under_the_viewers_name(dashboard: TestClient) -> None:
    made = dashboard.post("/campaigns", json=BODY, headers=DASHBOARD_WRITE).json()["campaign_id"]
    headers = {"X-CSRF-Token": _log_in(dashboard, VIEWER_TOKEN)}
    for button in ("pause", "resume"):
        assert dashboard.post(f"/dashboard/campaigns/{made}/{button}", headers=headers).is_success
    fail_messages(settings_of(dashboard))
    requeued = dashboard.post(
        f"/dashboard/campaigns/{made}/requeue", data={"status": "failed"}, headers=headers
    )
    assert requeued.is_success, requeued.text
    assert dashboard.post(f"/dashboard/campaigns/{made}/cancel", headers=headers).is_success
    sid = settings_of(dashboard).kaleyra_sid
    with open_sessions(settings_of(dashboard).database_url) as sessions, sessions.begin() as s:
        s.add(Pause(scope="account", sid=sid, code="E110", reason="balance"))
    lifted = dashboard.post("/dashboard/pauses/resume", data={"sid": sid}, headers=headers)
    assert lifted.is_success, lifted.text

    entries = audit(dashboard, DASHBOARD_WRITE)
    actions = [(actor, action) for actor, action, _, _ in entries]
    assert actions == [
        ("env:1", "campaign.created"),  # by the API, with the first token
        ("env:2", "campaign.paused"),
        ("env:2", "campaign.resumed"),
        ("env:2", "campaign.requeued"),
        ("env:2", "campaign.cancelled"),
        ("env:2", "pause.lifted"),
    ]
    assert entries[1][3] == {"reason": "paused from the dashboard"}
