"""The HTTP API over a real database (SQLite and PostgreSQL) and Redis: auth, problems,
/campaigns and its Idempotency-Key."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.models import Campaign, IdempotencyKey, Message
from tests.api.conftest import BODY, READ, TOKEN, WRITE, count
from tests.conftest import make_settings


def _count(database_url: str, model: type) -> int:
    return count(database_url, model)


def test_post_campaign_stores_it_and_answers_its_view(client: TestClient) -> None:
    answer = client.post("/campaigns", json=BODY, headers=WRITE)
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert view["recipients"] == 2
    assert view["status"] == "queued"
    shown = client.get(f"/campaigns/{view['campaign_id']}", headers=READ)
    assert shown.status_code == 200
    assert shown.json()["progress"]["by_status"]["pending"] == 2


def test_recipients_as_a_comma_separated_string(client: TestClient) -> None:
    body = {**BODY, "recipients": "+919812345678, +919812345679"}
    answer = client.post("/campaigns", json=body, headers=WRITE)
    assert answer.status_code == 201
    assert answer.json()["recipients"] == 2


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_every_campaign_route_needs_a_valid_token(client: TestClient, headers: dict) -> None:
    for method, path in (("get", "/campaigns"), ("get", "/campaigns/1"), ("post", "/campaigns")):
        answer = client.request(method, path, headers=headers, json=BODY)
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"
        assert TOKEN not in answer.text
    assert _count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]


def test_a_read_only_token_reads_but_cannot_post(client: TestClient) -> None:
    assert client.get("/campaigns", headers=READ).status_code == 200
    for path in ("/campaigns", "/campaigns/1/pause", "/campaigns/1/cancel"):
        answer = client.post(path, json=BODY, headers=READ)
        assert answer.status_code == 403
        assert answer.json()["code"] == "insufficient_scope"


def test_invalid_recipients_are_listed_with_their_positions_and_nothing_is_stored(
    client: TestClient,
) -> None:
    body = {**BODY, "recipients": ["+919812345678", "not-a-phone", "+91123"]}
    answer = client.post("/campaigns", json=body, headers=WRITE)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_recipients"
    assert [(row["line"], row["value"]) for row in problem["invalid"]] == [
        (2, "not-a-phone"),
        (3, "+91123"),
    ]
    assert all(row["reason"] for row in problem["invalid"])
    assert _count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]
    assert _count(client.database_url, Message) == 0  # type: ignore[attr-defined]


def test_a_bad_spec_and_a_malformed_body_are_422_problems(client: TestClient) -> None:
    both = {**BODY, "sticker_link": "https://example.com/s.webp"}
    answer = client.post("/campaigns", json=both, headers=WRITE)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_campaign"
    answer = client.post("/campaigns", json={"sticker_id": "x"}, headers=WRITE)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_retry_with_the_same_key_returns_the_first_campaign(client: TestClient) -> None:
    headers = {**WRITE, "Idempotency-Key": "crm-42"}
    first = client.post("/campaigns", json=BODY, headers=headers)
    again = client.post("/campaigns", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["campaign_id"] == first.json()["campaign_id"]
    assert _count(client.database_url, Campaign) == 1  # type: ignore[attr-defined]


def test_the_same_key_with_another_body_is_a_409(client: TestClient) -> None:
    headers = {**WRITE, "Idempotency-Key": "crm-43"}
    assert client.post("/campaigns", json=BODY, headers=headers).status_code == 201
    other = client.post("/campaigns", json={**BODY, "ref": "other"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"


def test_a_refused_request_gives_its_key_back(client: TestClient) -> None:
    headers = {**WRITE, "Idempotency-Key": "crm-44"}
    bad = {**BODY, "recipients": ["nope"]}
    assert client.post("/campaigns", json=bad, headers=headers).status_code == 422
    assert _count(client.database_url, IdempotencyKey) == 0  # type: ignore[attr-defined]
    assert client.post("/campaigns", json=BODY, headers=headers).status_code == 201


def test_concurrent_retries_of_one_key_create_one_campaign(client: TestClient) -> None:
    """One makes it; the others answer it (200), or are told at once to retry (409 with
    Retry-After) while it is being stored."""
    headers = {**WRITE, "Idempotency-Key": "crm-45"}
    answers: list[tuple[int, Any]] = []

    def post() -> None:
        answer = client.post("/campaigns", json=BODY, headers=headers)
        body = answer.json()
        if answer.status_code == 409:
            assert int(answer.headers["Retry-After"]) >= 1
        answers.append((answer.status_code, body.get("campaign_id") or body["code"]))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [(_, made)] = [answer for answer in answers if answer[0] == 201]
    assert set(answers) <= {(201, made), (200, made), (409, "idempotency_key_in_use")}
    again = client.post("/campaigns", json=BODY, headers=headers)
    assert (again.status_code, again.json()["campaign_id"]) == (200, made)
    assert _count(client.database_url, Campaign) == 1  # type: ignore[attr-defined]


def test_list_filters_by_status_and_pages(client: TestClient) -> None:
    made = [
        client.post("/campaigns", json=BODY, headers=WRITE).json()["campaign_id"] for _ in "abc"
    ]
    client.post(f"/campaigns/{made[0]}/pause", headers=WRITE)
    page = client.get("/campaigns", params={"limit": 2}, headers=READ).json()["campaigns"]
    assert [c["campaign_id"] for c in page] == made[:0:-1]
    rest = client.get("/campaigns", params={"limit": 2, "offset": 2}, headers=READ).json()
    assert [c["campaign_id"] for c in rest["campaigns"]] == [made[0]]
    paused = client.get("/campaigns", params={"status": "paused"}, headers=READ).json()
    assert [c["campaign_id"] for c in paused["campaigns"]] == [made[0]]
    bad = client.get("/campaigns", params={"status": "asleep"}, headers=READ)
    assert bad.status_code == 422


def test_pause_resume_cancel_and_unknown_ids(client: TestClient) -> None:
    campaign_id = client.post("/campaigns", json=BODY, headers=WRITE).json()["campaign_id"]
    paused = client.post(f"/campaigns/{campaign_id}/pause", json={"reason": "x"}, headers=WRITE)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    resumed = client.post(f"/campaigns/{campaign_id}/resume", headers=WRITE)
    assert resumed.json()["status"] in ("queued", "running")
    cancelled = client.post(f"/campaigns/{campaign_id}/cancel", headers=WRITE)
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_messages"] == 2
    for method, path in (("get", "/campaigns/999"), ("post", "/campaigns/999/pause")):
        answer = client.request(method, path, headers=WRITE)
        assert answer.status_code == 404
        assert answer.json()["code"] == "campaign_not_found"


def test_health_needs_no_token_and_readyz_checks_the_schema(
    client: TestClient, tmp_path: Path, redis_prefix: str
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    empty = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", redis_prefix, "http://x")
    answer = TestClient(create_app(empty)).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["migrations"].startswith("at none")


def test_an_unexpected_error_is_a_500_problem_without_details(redis_prefix: str) -> None:
    url = "postgresql+psycopg://stickerq:hunter2-secret@127.0.0.1:1/nowhere"
    settings = make_settings(url, redis_prefix, "http://x", api_tokens=TOKEN)
    answer = TestClient(create_app(settings), raise_server_exceptions=False).get(
        "/campaigns", headers=WRITE
    )
    assert answer.status_code == 500
    assert answer.json() == {
        "type": "about:blank#internal_error",
        "title": "internal error",
        "status": 500,
        "code": "internal_error",
    }


def test_an_unknown_field_is_refused_not_ignored(client: TestClient) -> None:
    answer = client.post("/campaigns", json={**BODY, "to": "+919812345670"}, headers=WRITE)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["location"] == "body.to"
    assert _count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]


def test_readyz_names_redis_when_it_is_down(sqlite_database: str, redis_prefix: str) -> None:
    settings = make_settings(
        sqlite_database, redis_prefix, "http://x", redis_url="redis://127.0.0.1:1/0"
    )
    answer = TestClient(create_app(settings)).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"database": "ok", "redis": "unreachable", "migrations": "ok"}


def test_openapi_is_served_at_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/campaigns", "/campaigns/{campaign_id}", "/campaigns/{campaign_id}/cancel"} <= set(
        paths
    )


def test_scheduled_at_and_every_go_as_the_clis_at_and_every(client: TestClient) -> None:
    later = {**BODY, "scheduled_at": "2099-01-01T09:00", "tz": "Asia/Kolkata"}
    answer = client.post("/campaigns", json=later, headers=WRITE)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "scheduled"
    assert answer.json()["scheduled_at_utc"].startswith("2099-01-01T03:30:00")
    weekly = client.post("/campaigns", json={**BODY, "every": "0 9 * * 1"}, headers=WRITE)
    assert weekly.status_code == 422
    assert "--tz" in weekly.json()["detail"]
