"""/webhooks: admin scope; the secret answered once, never listed; the same refusals as the
CLI, as problem documents."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import READ, WRITE


def add(client: TestClient, **body: object) -> dict:
    answer = client.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:8000/x", "events": ["message.failed"], **body},
        headers=WRITE,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_added_listed_tested_and_removed_with_the_secret_answered_once(
    client: TestClient,
) -> None:
    client.settings.webhook_allow_hosts = "127.0.0.1"  # type: ignore[attr-defined]
    added = add(client)
    assert added["secret"].startswith("whsec_")
    webhook_id = added["webhook"]["id"]
    listed = client.get("/webhooks", headers=WRITE)
    assert listed.status_code == 200
    assert [w["id"] for w in listed.json()] == [webhook_id]
    assert added["secret"] not in listed.text
    tested = client.post(f"/webhooks/{webhook_id}/test", headers=WRITE)
    assert tested.status_code == 202
    shown = client.get(f"/webhooks/{webhook_id}/deliveries", headers=WRITE).json()
    assert [(d["event_id"], d["state"]) for d in shown] == [(tested.json()["event_id"], "waiting")]
    assert client.delete(f"/webhooks/{webhook_id}", headers=WRITE).status_code == 200
    gone = client.delete(f"/webhooks/{webhook_id}", headers=WRITE)
    assert gone.status_code == 404 and gone.json()["code"] == "webhook_not_found"


def test_a_given_secret_is_kept_and_an_internal_url_refused(client: TestClient) -> None:
    client.settings.webhook_allow_hosts = "127.0.0.1"  # type: ignore[attr-defined]
    assert add(client, secret="a-secret-of-our-own-1234")["secret"] == "a-secret-of-our-own-1234"
    refused = client.post(
        "/webhooks",
        json={"url": "https://10.0.0.8/x", "events": ["message.failed"]},
        headers=WRITE,
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_webhook"
    assert "internal address" in refused.json()["detail"]


def test_a_key_below_admin_may_not_see_or_change_webhooks(client: TestClient) -> None:
    assert client.get("/webhooks", headers=READ).status_code == 403
    answer = client.post(
        "/webhooks",
        json={"url": "https://hooks.example/x", "events": ["message.failed"]},
        headers=READ,
    )
    assert answer.status_code == 403
    assert client.get("/webhooks").status_code == 401
