"""Every JSON answer carries Cache-Control: no-store and every answer nosniff, successes and
problems alike, and the streamed CSV export still arrives whole."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from tests.api.conftest import BODY, READ_ONLY, TOKEN, WRITE
from tests.conftest import make_settings

ROUTES = [
    "/campaigns",
    "/campaigns/{id}",
    "/campaigns/{id}/messages",
    "/campaigns/{id}/report",
    "/pauses",
    "/suppressions",
    "/senders",
    "/accounts",
    "/campaigns/987654",  # a 404 problem document
]


@pytest.fixture
def sqlite_client(sqlite_database: str, redis_prefix: str) -> TestClient:
    """Headers do not depend on the database: SQLite only."""
    settings = make_settings(
        sqlite_database, redis_prefix, "http://127.0.0.1:9", api_tokens=f"{TOKEN},{READ_ONLY}:ro"
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def assert_private_json(answer: object) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-type"].split(";")[0] in ("application/json", "application/problem+json")
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_json_answers_are_not_stored_nor_sniffed(sqlite_client: TestClient) -> None:
    created = sqlite_client.post("/campaigns", json=BODY, headers=WRITE)
    assert created.status_code == 201
    assert_private_json(created)
    campaign_id = created.json()["campaign_id"]

    for route in ROUTES:
        answer = sqlite_client.get(route.format(id=campaign_id), headers=WRITE)
        assert answer.status_code in (200, 404), (route, answer.text)
        assert_private_json(answer)
    assert_private_json(sqlite_client.get("/campaigns"))  # 401, without a token
    assert_private_json(sqlite_client.post("/campaigns", content=b"{", headers=WRITE))  # 422


def test_the_streamed_csv_export_arrives_whole_and_is_not_sniffed(
    sqlite_client: TestClient,
) -> None:
    campaign_id = sqlite_client.post("/campaigns", json=BODY, headers=WRITE).json()["campaign_id"]

    export = sqlite_client.get(f"/campaigns/{campaign_id}/export.csv", headers=WRITE)

    assert export.status_code == 200
    assert export.headers["x-content-type-options"] == "nosniff"
    assert export.text.count("\n") == 1 + len(BODY["recipients"])  # the header and each row
