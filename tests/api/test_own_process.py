"""A large campaign is stored in the API's child process (stickerq/api/own_process.py): the
same answers as in the API's threads, refusals and Idempotency-Key included."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.models import Campaign, Message
from tests.api.conftest import TOKEN, WRITE, count
from tests.api.test_api_logs import free_port
from tests.conftest import make_settings, wait_until

ROWS = 300  # a phone and a ref each: past OWN_PROCESS_BYTES
OWN_PROCESS_BYTES = 4_096


def csv_of(rows: int, bad_line: int | None = None) -> bytes:
    lines = [f"+9198{10_000_000 + n:08d},row{n}" for n in range(rows)]
    if bad_line is not None:
        lines[bad_line - 2] = "call me,maybe"
    return ("phone,ref\n" + "\n".join(lines) + "\n").encode()


@pytest.fixture
def served(database_url: str, redis_prefix: str) -> Iterator[TestClient]:
    settings = make_settings(
        database_url,
        redis_prefix,
        "http://127.0.0.1:9",
        api_tokens=TOKEN,
        api_own_process_bytes=OWN_PROCESS_BYTES,
    )
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
    answer = upload(served, csv_of(ROWS, bad_line=200))
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_recipients"
    assert [row["line"] for row in problem["invalid"]] == [200]
    assert "stickerq-upload-" not in answer.text
    assert count(database_url, Campaign) == 0


def test_a_small_upload_stays_in_the_apis_threads(served: TestClient) -> None:
    assert upload(served, csv_of(10)).status_code == 201
    assert not served.app.state.own_process.started  # type: ignore[attr-defined]


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(child) for child in text.split()}
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_ends_with_an_api_killed_by_sigkill(
    sqlite_database: str, redis_prefix: str
) -> None:
    settings = make_settings(
        sqlite_database,
        redis_prefix,
        "http://127.0.0.1:9",
        api_tokens=TOKEN,
        api_own_process_bytes=OWN_PROCESS_BYTES,
    )
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "stickerq", "api", "--port", str(port)],
        env={**os.environ, **settings.as_environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def answered() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(answered, timeout=20, interval=0.1)
        answer = httpx.post(
            f"{base}/campaigns",
            data={"sticker_id": "media-1"},
            files={"recipients": ("audience.csv", csv_of(ROWS), "text/csv")},
            headers=WRITE,
            timeout=120,
        )
        assert answer.status_code == 201, answer.text
        children = children_of(api.pid)  # the one that stored it (and spawn's resource tracker)
        assert children
        api.kill()
        api.wait(timeout=10)
        wait_until(lambda: not any(alive(child) for child in children), timeout=10, interval=0.1)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait(timeout=10)


def test_a_json_campaign_of_many_recipients_goes_to_the_child_too(served: TestClient) -> None:
    recipients = [f"+9198{10_000_000 + n:08d}" for n in range(100)]  # 100 x 50 >= 4,096
    answer = served.post(
        "/campaigns", json={"sticker_id": "media-1", "recipients": recipients}, headers=WRITE
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["recipients"] == 100
    assert served.app.state.own_process.started  # type: ignore[attr-defined]
