"""/suppressions over a real database (SQLite and PostgreSQL): add, show, list, import and
remove with a token; read-only tokens only read; POST /campaigns counts what it dropped; a
131050 callback through the receiver adds its recipient."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.producer.suppressions import MARKETING_OPT_OUT_REASON
from tests.api.conftest import BAD_AUTH, BODY, READ, WRITE
from tests.api.test_callbacks import URL, sent_messages, settings_for
from tests.producer.test_callbacks import callback

A, B, C = "+919812345678", "+919812345679", "+919812345670"


def test_add_show_list_and_remove_numbers(client: TestClient) -> None:
    added = client.post(
        "/suppressions", json={"numbers": ["+91 98123 45678", B], "reason": "STOP"}, headers=WRITE
    )
    assert added.status_code == 200, added.text
    assert added.json() | {"invalid": []} == {
        "sid": client.settings.kaleyra_sid,  # type: ignore[attr-defined]
        "added": 2,
        "already": 0,
        "invalid_count": 0,
        "invalid": [],
        "warnings": [],
    }
    shown = client.get(f"/suppressions/{A}", headers=READ)
    assert shown.status_code == 200 and shown.json()["reason"] == "STOP"

    listed = client.get("/suppressions", params={"limit": 1, "show_numbers": True}, headers=READ)
    page = listed.json()
    assert (page["total"], page["next_after"]) == (2, A)
    assert [n["phone"] for n in page["suppressions"]] == [A]
    rest = client.get("/suppressions", params={"after": A}, headers=READ).json()
    assert [n["phone"] for n in rest["suppressions"]] == ["+91******5679"]  # masked by default

    removed = client.delete(f"/suppressions/{A}", headers=WRITE)
    assert removed.json() | {"sid": ""} == {"sid": "", "removed": 1, "not_found": 0}
    gone = client.get(f"/suppressions/{A}", headers=READ)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_suppressed")


def test_invalid_numbers_are_a_422_problem_and_nothing_is_stored(client: TestClient) -> None:
    answer = client.post("/suppressions", json={"numbers": [A, "+91123"]}, headers=WRITE)
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_suppression")
    assert "+91123" in answer.json()["detail"]
    assert client.get("/suppressions", headers=READ).json()["total"] == 0


def test_import_takes_a_csv_body_and_lists_bad_rows_by_line(client: TestClient) -> None:
    body = f"phone\n{A}\nnope\n{B}\n{A}\n".encode()
    answer = client.post(
        "/suppressions/import",
        params={"reason": "CRM export"},
        content=body,
        headers={**WRITE, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["added"], result["already"], result["invalid_count"]) == (2, 1, 1)
    assert [(row["line"], row["value"]) for row in result["invalid"]] == [(3, "nope")]
    unusable = client.post(
        "/suppressions/import", content=b"name\nx\n", headers={**WRITE, "Content-Type": "text/csv"}
    )
    assert unusable.status_code == 422
    assert "the CSV body" in unusable.json()["detail"] and "/tmp" not in unusable.text


@pytest.mark.parametrize("headers", BAD_AUTH)
def test_every_route_needs_a_token(client: TestClient, headers: dict) -> None:
    for method, path in (
        ("get", "/suppressions"),
        ("get", f"/suppressions/{A}"),
        ("post", "/suppressions"),
        ("post", "/suppressions/import"),
        ("delete", f"/suppressions/{A}"),
    ):
        answer = client.request(method, path, headers=headers, json={"numbers": [A]})
        assert answer.status_code == 401, (method, path)


def test_a_read_only_token_may_only_read(client: TestClient) -> None:
    client.post("/suppressions", json={"numbers": [A]}, headers=WRITE)
    assert client.get("/suppressions", headers=READ).status_code == 200
    for method, path in (
        ("post", "/suppressions"),
        ("post", "/suppressions/import"),
        ("delete", f"/suppressions/{A}"),
    ):
        answer = client.request(method, path, headers=READ, json={"numbers": [B]})
        assert (answer.status_code, answer.json()["code"]) == (403, "insufficient_scope")
    assert client.get("/suppressions", headers=READ).json()["total"] == 1


def test_post_campaigns_counts_the_suppressed_recipients_it_dropped(client: TestClient) -> None:
    client.post("/suppressions", json={"numbers": [A]}, headers=WRITE)
    answer = client.post("/campaigns", json={**BODY, "recipients": [A, B, C]}, headers=WRITE)
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert (view["recipients"], view["suppressed_at_enqueue"]) == (2, 1)


def test_a_131050_callback_through_the_receiver_suppresses_the_number(
    database_url: str, redis_prefix: str
) -> None:
    settings = settings_for(database_url, redis_prefix, api_tokens="tok-tok-tok-tok-tok")
    sent_messages(database_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        opted_out = {"errors": [{"code": 131050, "title": "User has stopped marketing"}]}
        answer = client.post(URL, json=callback("M1", "failed", **opted_out))
        assert answer.status_code == 200, answer.text
        listed = client.get(
            "/suppressions",
            params={"account": "SID", "show_numbers": True},
            headers={"Authorization": "Bearer tok-tok-tok-tok-tok"},
        ).json()
    assert [(n["phone"], n["reason"]) for n in listed["suppressions"]] == [
        ("+919812345601", MARKETING_OPT_OUT_REASON)
    ]
