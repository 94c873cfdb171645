"""A large campaign is stored in the API's child process (stickerq/api/own_process.py): the
same answers as in the API's threads, refusals and Idempotency-Key included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.api.own_process import OWN_PROCESS_BYTES
from stickerq.models import Campaign, Message
from tests.api.conftest import TOKEN, WRITE, count
from tests.conftest import make_settings

ROWS = 48_000  # a phone and a ref each: past OWN_PROCESS_BYTES


def csv_of(rows: int, bad_line: int | None = None) -> bytes:
    lines = [f"+9198{10_000_000 + n:08d},row{n}" for n in range(rows)]
    if bad_line is not None:
        lines[bad_line - 2] = "call me,maybe"
    return ("phone,ref\n" + "\n".join(lines) + "\n").encode()


@pytest.fixture
def served(database_url: str, redis_prefix: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=TOKEN)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client  # the lifespan closes the child


def upload(client: TestClient, body: bytes, headers: dict[str, str] | None = None):
    return client.post(
        "/campaigns",
        data={"sticker_id": "media-1"},
        files={"recipients": ("audience.csv", body, "text/csv")},
        headers={**WRITE, **(headers or {})},
    )


def test_a_large_upload_is_stored_by_the_child_and_answered_as_any(
    served: TestClient, database_url: str
) -> None:
    body = csv_of(ROWS)
    assert len(body) >= OWN_PROCESS_BYTES
    answer = upload(served, body, {"Idempotency-Key": "big-1"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["recipients"] == ROWS
    assert served.app.state.own_process.started  # type: ignore[attr-defined]
    assert count(database_url, Message) == ROWS
    again = upload(served, body, {"Idempotency-Key": "big-1"})
    assert again.status_code == 200
    assert again.json()["campaign_id"] == answer.json()["campaign_id"]
    assert count(database_url, Campaign) == 1


def test_a_large_upload_refused_by_the_child_names_the_clients_file_and_stores_nothing(
    served: TestClient, database_url: str
) -> None:
    answer = upload(served, csv_of(ROWS, bad_line=30_000))
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_recipients"
    assert [row["line"] for row in problem["invalid"]] == [30_000]
    assert "stickerq-upload-" not in answer.text
    assert count(database_url, Campaign) == 0


def test_a_small_upload_stays_in_the_apis_threads(served: TestClient) -> None:
    assert upload(served, csv_of(10)).status_code == 201
    assert not served.app.state.own_process.started  # type: ignore[attr-defined]
