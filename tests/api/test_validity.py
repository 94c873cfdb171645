"""Validity periods over HTTP: POST /campaigns (JSON and multipart) takes a deadline, and
POST /requeue sends expired messages again only with a new one."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from stickerq.db import open_sessions
from stickerq.models import Campaign, utcnow
from stickerq.worker.expiry import expire_overdue
from tests.api.conftest import BODY, WRITE
from tests.api.test_uploads import post


def test_json_and_multipart_campaigns_take_a_deadline(client: TestClient) -> None:
    answer = client.post("/campaigns", json={**BODY, "valid_for": "6h"}, headers=WRITE)
    assert answer.status_code == 201, answer.text
    until = datetime.fromisoformat(answer.json()["valid_until"])
    assert abs(until - (utcnow() + timedelta(hours=6))) < timedelta(minutes=1)

    uploaded = post(client, "phone\n+919812345678\n", valid_until="2099-06-01T18:00", tz="+05:30")
    assert uploaded.status_code == 201, uploaded.text
    assert datetime.fromisoformat(uploaded.json()["valid_until"]) == datetime.fromisoformat(
        "2099-06-01T12:30:00+00:00"
    )

    bad = client.post("/campaigns", json={**BODY, "valid_for": "soon"}, headers=WRITE)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_validity"
    assert "6h, 90m" in bad.json()["detail"]


def test_requeue_of_expired_messages_needs_a_new_deadline(client: TestClient) -> None:
    answer = client.post("/campaigns", json={**BODY, "valid_for": "1h"}, headers=WRITE)
    campaign_id = answer.json()["campaign_id"]
    with open_sessions(client.database_url) as sessions:  # type: ignore[attr-defined]
        with sessions.begin() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(valid_until=utcnow() - timedelta(seconds=1))
            )
        assert expire_overdue(sessions) == 2
    body = {"campaign_id": campaign_id, "status": "expired"}

    refused = client.post("/requeue", json=body, headers=WRITE)
    assert refused.status_code == 409
    assert refused.json()["code"] == "requeue_refused"
    assert "new deadline" in refused.json()["detail"]

    requeued = client.post("/requeue", json={**body, "valid_for": "2h"}, headers=WRITE)
    assert requeued.status_code == 200, requeued.text
    assert requeued.json()["requeued"] == 2
    shown = client.get(f"/campaigns/{campaign_id}", headers=WRITE).json()
    assert shown["progress"]["by_status"] == {"pending": 2}
    assert datetime.fromisoformat(shown["valid_until"]) > utcnow() + timedelta(minutes=119)
