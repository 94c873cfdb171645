"""GET /accounts and a campaign's `account` in the HTTP API, on both backends: the accounts
without their keys; an unknown account or a foreign sender refused with nothing stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.models import Campaign, Message
from tests.api.conftest import BAD_AUTH, BODY, READ, READ_ONLY, TOKEN, WRITE, count
from tests.conftest import SENDER
from tests.two_accounts import KEY_A, KEY_B, SENDER_B, SID_A, SID_B, two_account_settings


@pytest.fixture
def client(database_url: str, redis_prefix: str) -> TestClient:
    settings = two_account_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=f"{TOKEN},{READ_ONLY}:ro"
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.database_url = database_url  # type: ignore[attr-defined]
    return client


def test_a_read_only_token_lists_the_accounts_without_their_keys(client: TestClient) -> None:
    answer = client.get("/accounts", headers=READ)
    assert answer.status_code == 200
    assert KEY_A not in answer.text and KEY_B not in answer.text
    body = answer.json()
    assert body["source"] == "STICKERQ_ACCOUNTS"
    assert [(a["sid"], a["pod"], a["api_key_set"], a["senders"]) for a in body["accounts"]] == [
        (SID_A, "in", True, [SENDER]),
        (SID_B, "eu", True, [SENDER_B]),
    ]
    for headers in BAD_AUTH:
        assert client.get("/accounts", headers=headers).status_code == 401


def test_a_campaign_names_its_account(client: TestClient) -> None:
    answer = client.post("/campaigns", json={**BODY, "account": SID_B}, headers=WRITE)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["sid"], answer.json()["sender"]) == (SID_B, SENDER_B)


@pytest.mark.parametrize(
    ("fields", "code", "says"),
    [
        ({"account": "HXNOPE"}, "unknown_account", f"known: {SID_A}, {SID_B}"),
        ({}, "unknown_account", "--account SID (`account` in the HTTP API)"),
        ({"account": SID_A, "sender": SENDER_B}, "sender_not_on_account", "not a business number"),
    ],
    ids=["unknown", "unnamed", "foreign-sender"],
)
def test_an_unknown_account_or_foreign_sender_is_refused_and_nothing_is_stored(
    client: TestClient, fields: dict[str, str], code: str, says: str
) -> None:
    answer = client.post("/campaigns", json={**BODY, **fields}, headers=WRITE)
    assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text
    assert says in answer.json()["detail"]
    db = client.database_url  # type: ignore[attr-defined]
    assert (count(db, Campaign), count(db, Message)) == (0, 0)
