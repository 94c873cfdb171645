"""A key restricted to an account (`keys create --account SID`), on both backends: it sees
that account's campaigns only (another's answers 404 as an absent one), cannot make a
campaign for another account (403, nothing stored), and cannot change another account's
campaigns, pauses, suppressions or sender rates."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stickerq.api import create_app
from stickerq.models import Campaign, Message, Pause, WebhookEndpoint
from stickerq.producer.api_keys import create_key
from stickerq.states import CampaignStatus, MessageStatus, PauseScope
from tests.api.conftest import BODY, count
from tests.conftest import SENDER
from tests.two_accounts import SENDER_B, SID_A, SID_B, two_account_settings


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session]
) -> tuple[TestClient, dict[str, str], int, int]:
    """The API with a running campaign of each account (A's message mid-a, B's mid-b), a
    pause of each, and an operate key of A."""
    settings = two_account_settings(database_url, redis_prefix, "http://127.0.0.1:9")
    ids = []
    with sessions.begin() as session:
        for sid, sender, mid in ((SID_A, SENDER, "mid-a"), (SID_B, SENDER_B, "mid-b")):
            campaign = Campaign(
                name=sid, sid=sid, sender=sender, sticker_id="m", status=CampaignStatus.RUNNING
            )
            session.add(campaign)
            session.flush()
            session.add(
                Message(
                    campaign_id=campaign.id,
                    recipient="+919812345678",
                    status=MessageStatus.SENT,
                    message_id=mid,
                )
            )
            session.add(Pause(scope=PauseScope.ACCOUNT, sid=sid, code="E110", reason="low"))
            ids.append(campaign.id)
    key = create_key(settings, "test", "crm-a", "operate", account=SID_A).key
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.database_url = database_url  # type: ignore[attr-defined]
    return client, bearer(key), ids[0], ids[1]


def test_it_lists_and_shows_its_accounts_campaigns_only(
    world: tuple[TestClient, dict[str, str], int, int],
) -> None:
    client, key, of_a, of_b = world

    listed = client.get("/campaigns", headers=key).json()["campaigns"]
    assert [c["campaign_id"] for c in listed] == [of_a]
    assert client.get(f"/campaigns/{of_a}", headers=key).status_code == 200
    absent = client.get("/campaigns/424242", headers=key).json()
    for path in ("", "/messages", "/report", "/export.csv"):
        answer = client.get(f"/campaigns/{of_b}{path}", headers=key)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == absent["code"] == "campaign_not_found"
        assert answer.json()["detail"] == absent["detail"].replace("424242", str(of_b))
    assert client.get("/messages/mid-a", headers=key).status_code == 200
    assert client.get("/messages/mid-b", headers=key).json()["code"] == "message_not_found"
    assert [p["sid"] for p in client.get("/pauses", headers=key).json()] == [SID_A]
    assert [a["sid"] for a in client.get("/accounts", headers=key).json()["accounts"]] == [SID_A]


def test_it_cannot_change_another_accounts_campaigns(
    world: tuple[TestClient, dict[str, str], int, int],
) -> None:
    client, key, of_a, of_b = world

    for action in ("pause", "cancel", "resume"):
        answer = client.post(f"/campaigns/{of_b}/{action}", headers=key)
        assert (answer.status_code, answer.json()["code"]) == (404, "campaign_not_found")
    requeue = {"campaign_id": of_b, "status": "failed", "dry_run": True}
    assert client.post("/requeue", json=requeue, headers=key).status_code == 404
    assert client.post(f"/campaigns/{of_a}/pause", headers=key).status_code == 200


def test_its_campaigns_are_of_its_account_and_another_is_refused_with_nothing_stored(
    world: tuple[TestClient, dict[str, str], int, int],
) -> None:
    client, key, _, _ = world
    database_url = client.database_url  # type: ignore[attr-defined]
    before = count(database_url, Campaign), count(database_url, Message)

    refused = client.post("/campaigns", json={**BODY, "account": SID_B}, headers=key)
    assert (refused.status_code, refused.json()["code"]) == (403, "other_account")
    assert SID_A in refused.json()["detail"]
    assert (count(database_url, Campaign), count(database_url, Message)) == before

    made = client.post("/campaigns", json=BODY, headers=key)  # no account: the key's
    assert made.status_code == 201, made.text
    assert made.json()["sid"] == SID_A


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("post", "/pauses/resume", {"account": SID_B}, "other_account"),
        (
            "post",
            "/suppressions",
            {"numbers": ["+919812345678"], "account": SID_B},
            "other_account",
        ),
        ("get", f"/suppressions?account={SID_B}", None, "other_account"),
        ("delete", f"/suppressions/+919812345678?account={SID_B}", None, "other_account"),
        ("put", f"/senders/{SENDER_B}/rate", {"rate_per_second": 80}, "other_account"),
        ("delete", f"/senders/{SENDER_B}/rate", None, "other_account"),
        ("delete", "/recipients/+919812345678", None, "account_restricted"),
        ("get", "/windows/stats", None, "account_restricted"),
    ],
)
def test_it_is_refused_what_reaches_beyond_its_account(
    world: tuple[TestClient, dict[str, str], int, int],
    method: str,
    path: str,
    body: dict[str, object] | None,
    code: str,
) -> None:
    client, key, _, _ = world

    answer = client.request(method, path, json=body, headers=key)

    assert (answer.status_code, answer.json()["code"]) == (403, code), answer.text


def test_its_own_accounts_suppressions_and_rates_are_its_to_change(
    world: tuple[TestClient, dict[str, str], int, int],
) -> None:
    client, key, _, _ = world

    added = client.post("/suppressions", json={"numbers": ["+919812345678"]}, headers=key)
    assert added.status_code == 200, added.text
    listed = client.get("/suppressions", params={"show_numbers": True}, headers=key).json()
    assert [n["phone"] for n in listed["suppressions"]] == ["+919812345678"]
    assert client.put(
        f"/senders/{SENDER}/rate", json={"rate_per_second": 80}, headers=key
    ).is_success


def test_it_manages_its_accounts_webhooks_only(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session]
) -> None:
    """An admin key of account A: its webhooks are A's (naming B is 403), it sees and touches
    only A's (B's and every account's answer 404 as absent ones)."""
    settings = two_account_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", webhook_allow_hosts="127.0.0.1"
    )
    from stickerq.producer.webhooks import add_webhook

    of_b = add_webhook(settings, "http://127.0.0.1:9/b", ["pause.started"], "t", account=SID_B)
    of_all = add_webhook(settings, "http://127.0.0.1:9/all", ["pause.started"], "t")
    key = bearer(create_key(settings, "test", "admin-a", "admin", account=SID_A).key)
    client = TestClient(create_app(settings), raise_server_exceptions=False)

    url = "http://127.0.0.1:9/a"
    refused = client.post("/webhooks", json={"url": url, "events": ["pause.started"],
                                             "account": SID_B}, headers=key)  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (403, "other_account")
    made = client.post("/webhooks", json={"url": url, "events": ["pause.started"]}, headers=key)
    assert made.status_code == 201 and made.json()["webhook"]["account"] == SID_A
    mine = made.json()["webhook"]["id"]
    assert [w["id"] for w in client.get("/webhooks", headers=key).json()] == [mine]
    for other in (of_b.webhook["id"], of_all.webhook["id"]):
        for method, path in (("DELETE", ""), ("GET", "/deliveries"), ("POST", "/test")):
            answer = client.request(method, f"/webhooks/{other}{path}", headers=key)
            assert (answer.status_code, answer.json()["code"]) == (404, "webhook_not_found")
    assert client.post(f"/webhooks/{mine}/test", headers=key).status_code == 202
    assert client.delete(f"/webhooks/{mine}", headers=key).status_code == 200
    assert count(database_url, WebhookEndpoint) == 2  # B's and every account's stay
