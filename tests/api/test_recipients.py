"""DELETE /recipients/{number} over a real database (SQLite and PostgreSQL): a token that may
change things erases; a read-only one gets 403; a bad number 422; an unknown one 404; a
suppressed one without the erasure key 409, with nothing changed."""

from __future__ import annotations

from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.models import Message
from tests.api.conftest import BODY, READ, WRITE, count
from tests.conftest import make_settings

A = BODY["recipients"][0]


def test_delete_erases_the_number_and_read_only_tokens_may_not(client: TestClient) -> None:
    assert client.post("/campaigns", json=BODY, headers=WRITE).status_code == 201
    database_url = client.database_url  # type: ignore[attr-defined]

    refused = client.delete(f"/recipients/{A}", headers=READ)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    dry = client.delete(f"/recipients/{A}", params={"dry_run": True}, headers=WRITE)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert count(database_url, Message) == 2

    erased = client.delete(f"/recipients/{A}", headers=WRITE)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["phone"] == "+91******5678" and A not in erased.text
    assert (body["removed"]["messages"], body["complete"], body["found"]) == (1, True, True)
    assert count(database_url, Message) == 1

    gone = client.delete(f"/recipients/{A}", headers=WRITE)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    bad = client.delete("/recipients/not-a-number", headers=WRITE)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_number")


def test_a_suppressed_number_without_the_key_is_a_409(client: TestClient) -> None:
    assert client.post("/suppressions", json={"numbers": [A]}, headers=WRITE).status_code == 200
    answer = client.delete(f"/recipients/{A}", headers=WRITE)
    assert (answer.status_code, answer.json()["code"]) == (409, "erasure_key_missing")
    assert "STICKERQ_ERASURE_KEY" in answer.json()["detail"]
    assert client.get(f"/suppressions/{A}", headers=READ).status_code == 200

    keyed = make_settings(
        client.database_url,  # type: ignore[attr-defined]
        client.settings.redis_prefix,  # type: ignore[attr-defined]
        "http://127.0.0.1:9",
        api_tokens=client.settings.api_tokens.get_secret_value(),  # type: ignore[attr-defined]
        erasure_key="erasure-key-0123456789abcdef",
    )
    with_key = TestClient(create_app(keyed), raise_server_exceptions=False)
    erased = with_key.delete(f"/recipients/{A}", headers=WRITE)
    assert erased.status_code == 200 and erased.json()["removed"]["suppressions"] == 1
    assert "erasure-key" not in erased.text
    assert with_key.get(f"/suppressions/{A}", headers=READ).status_code == 200  # still on it
