"""/senders over a real database (SQLite and PostgreSQL) and Redis: list, set and reset a
sender's rate with a token; read-only tokens only read; bad numbers and rates are 422."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from stickerq.keys import sender_rate_key
from tests.api.conftest import BAD_AUTH, READ, WRITE
from tests.conftest import REDIS_URL

A, B = "+919812345678", "+919812345679"


def test_set_list_and_reset_a_senders_rate(client: TestClient) -> None:
    stored = client.put(
        "/senders/+91 98123 45678/rate", json={"rate_per_second": 20}, headers=WRITE
    )
    assert stored.status_code == 200, stored.text
    answer = stored.json()
    assert answer | {"updated_at": None} == {
        "sender": A,
        "rate_per_second": 20.0,
        "stored": True,
        "updated_at": None,
        "warnings": [],
    }
    prefix = client.settings.redis_prefix  # type: ignore[attr-defined]
    assert redis.Redis.from_url(REDIS_URL).get(sender_rate_key(prefix, A)) == b"20.0"
    client.put(f"/senders/{B}/rate", json={"rate_per_second": 1000}, headers=WRITE)

    listed = client.get("/senders", headers=READ).json()
    assert listed["default_rate_per_second"] == 1000.0
    assert [(s["sender"], s["rate_per_second"]) for s in listed["senders"]] == [
        (A, 20.0),
        (B, 1000.0),
    ]
    reset = client.delete(f"/senders/{A}/rate", headers=WRITE)
    assert reset.status_code == 200 and reset.json()["stored"] is False
    assert [s["sender"] for s in client.get("/senders", headers=READ).json()["senders"]] == [B]


@pytest.mark.parametrize(
    ("number", "body"),
    [
        ("+91123", {"rate_per_second": 20}),
        (A, {"rate_per_second": 0}),
        (A, {"rate_per_second": -1}),
        (A, {"rate_per_second": 20_000}),
        (A, {"rate_per_second": "fast"}),
        (A, {}),
        (A, {"rate_per_second": 20, "sender": B}),
    ],
)
def test_bad_numbers_and_rates_are_a_422_problem(
    client: TestClient, number: str, body: dict[str, object]
) -> None:
    answer = client.put(f"/senders/{number}/rate", json=body, headers=WRITE)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] in ("invalid_sender_rate", "invalid_request")
    assert client.get("/senders", headers=READ).json()["senders"] == []


def test_read_only_tokens_may_only_list_and_no_token_gets_nothing(client: TestClient) -> None:
    body = {"rate_per_second": 20}
    assert client.put(f"/senders/{A}/rate", json=body, headers=READ).status_code == 403
    assert client.delete(f"/senders/{A}/rate", headers=READ).json()["code"] == "insufficient_scope"
    for headers in BAD_AUTH:
        assert client.get("/senders", headers=headers).status_code == 401
        assert client.put(f"/senders/{A}/rate", json=body, headers=headers).status_code == 401
    assert client.get("/senders", headers=READ).json()["senders"] == []
