"""Nothing is read before it is allowed (stickerq/api/guard.py): the token before the body,
every body capped as it arrives, JSON campaigns of bounded size, and guessing throttled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.api.callbacks import PREFIX as CALLBACKS
from stickerq.api.guard import ANONYMOUS_MAX_BODY_BYTES
from stickerq.api.throttle import FAILURES_ALLOWED
from stickerq.errors import ConfigurationError
from stickerq.models import Campaign
from stickerq.settings import Settings
from tests.api.conftest import BODY, TOKEN, WRITE, count
from tests.conftest import make_settings

CHUNK = b"x" * 65_536
# What a path parameter of a changing route stands for in these calls.
SAMPLE_PARAMETERS = {
    "campaign_id": "1",
    "number": "+919000000001",
    "name": "crm",
    "webhook_id": "1",
}
# The dashboard's form posts, which the OpenAPI schema leaves out.
DASHBOARD_ROUTES = [("POST", "/dashboard/campaigns/1/pause")]


def changing_routes() -> list[tuple[str, str]]:
    """Every route that changes something, read from the app's own schema (a new route is
    checked without being listed here), but the callbacks', which answer to their secret
    (tests/api/test_callback_refusals.py), and the dashboard's form posts."""
    app = create_app(
        make_settings("sqlite:///:memory:", "guard:", "http://127.0.0.1:9", api_tokens=TOKEN)
    )
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(CALLBACKS):
            continue
        for method in sorted(set(operations) & {"post", "put", "patch", "delete"}):
            routes.append((method.upper(), path.format(**SAMPLE_PARAMETERS)))
    return routes + DASHBOARD_ROUTES


# A hostile client sent 96 MB to such routes with no token; each read the whole body first.
CHANGING_ROUTES = changing_routes()


def small_caps(database_url: str, redis_prefix: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        redis_prefix,
        "http://127.0.0.1:9",
        api_tokens=TOKEN,
        api_max_body_bytes=4_096,
        api_max_upload_bytes=8_192,
        **overrides,
    )


class Caller:
    """Calls the ASGI app as a server would, counting the body chunks the app pulls."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def call(
        self, method: str, path: str, headers: dict[str, str], chunks: int
    ) -> tuple[int, int, dict[str, Any]]:
        return asyncio.run(self._call(method, path, headers, chunks))

    async def _call(
        self, method: str, path: str, headers: dict[str, str], chunks: int
    ) -> tuple[int, int, dict[str, Any]]:
        pulled = 0
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": CHUNK, "more_body": pulled < chunks}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = dict(message["headers"])
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("203.0.113.9", 50_000),
            "server": ("testserver", 80),
            "state": {},
        }
        await self.app(scope, receive, send)
        body = json.loads(answer["body"]) if answer["body"] else {}
        return answer["status"], pulled, body


@pytest.fixture
def caller(database_url: str, redis_prefix: str) -> Iterator[Caller]:
    yield Caller(create_app(small_caps(database_url, redis_prefix)))


@pytest.mark.parametrize(("method", "path"), CHANGING_ROUTES)
def test_without_a_token_no_body_byte_is_read(caller: Caller, method: str, path: str) -> None:
    """1,600 chunks (100 MB) offered, chunked: not one is pulled before the 401."""
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}):
        headers = {**headers, "content-type": "application/json"}
        status, pulled, problem = caller.call(method, path, headers, chunks=1_600)
        assert (status, pulled) == (401, 0), problem
        assert problem["code"] in ("unauthorized", "not_logged_in")


def test_an_open_route_reads_at_most_the_anonymous_cap(caller: Caller) -> None:
    status, pulled, problem = caller.call(
        "POST", "/login", {"content-type": "application/x-www-form-urlencoded"}, chunks=1_600
    )
    assert status == 413 and problem["code"] == "body_too_large"
    assert pulled * len(CHUNK) <= ANONYMOUS_MAX_BODY_BYTES + len(CHUNK)


def test_a_streamed_json_body_past_its_cap_is_cut_off_with_413(caller: Caller) -> None:
    headers = {**WRITE, "content-type": "application/json"}
    status, pulled, problem = caller.call("POST", "/campaigns", headers, chunks=1_600)
    assert status == 413 and pulled == 1  # 65,536 bytes already pass 4,096
    assert problem["code"] == "body_too_large"
    assert "STICKERQ_API_MAX_BODY_BYTES" in problem["detail"]
    assert problem["limit_bytes"] == 4_096


def test_a_declared_length_past_the_cap_is_refused_before_reading(caller: Caller) -> None:
    headers = {**WRITE, "content-type": "text/csv", "content-length": str(10**9)}
    status, pulled, problem = caller.call("POST", "/suppressions/import", headers, chunks=1)
    assert (status, pulled) == (413, 0)
    assert "STICKERQ_API_MAX_UPLOAD_BYTES" in problem["detail"]


def test_caps_hold_through_the_server_for_json_and_csv_uploads(
    database_url: str, redis_prefix: str
) -> None:
    client = TestClient(create_app(small_caps(database_url, redis_prefix)))
    big_json = {**BODY, "name": "n" * 5_000}
    answer = client.post("/campaigns", json=big_json, headers=WRITE)
    assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    rows = "phone\n" + "".join(f"+9198123{n:05d}\n" for n in range(700))  # ~10 KB
    answer = client.post(
        "/campaigns",
        data={"sticker_id": "media-1"},
        files={"recipients": ("r.csv", rows, "text/csv")},
        headers=WRITE,
    )
    assert answer.status_code == 413
    assert "STICKERQ_API_MAX_UPLOAD_BYTES" in answer.json()["detail"]
    assert count(database_url, Campaign) == 0
    small = "phone\n" + "".join(f"+9198123{n:05d}\n" for n in range(300))  # ~4.5 KB
    answer = client.post(
        "/campaigns",
        data={"sticker_id": "media-1"},
        files={"recipients": ("r.csv", small, "text/csv")},
        headers=WRITE,
    )
    assert answer.status_code == 201, answer.text  # past the JSON cap, within the upload's


def test_a_json_campaign_over_its_recipient_cap_says_to_upload_a_csv(
    database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(
        database_url,
        redis_prefix,
        "http://127.0.0.1:9",
        api_tokens=TOKEN,
        api_max_json_recipients=3,
    )
    client = TestClient(create_app(settings))
    four = [f"+91981234567{n}" for n in range(4)]
    for recipients in (four, ",".join(four)):
        answer = client.post("/campaigns", json={**BODY, "recipients": recipients}, headers=WRITE)
        assert answer.status_code == 422
        problem = answer.json()
        assert problem["code"] == "too_many_recipients"
        assert "at most 3 recipients" in problem["detail"]
        assert "multipart/form-data" in problem["detail"]
    assert count(database_url, Campaign) == 0
    answer = client.post("/campaigns", json={**BODY, "recipients": four[:3]}, headers=WRITE)
    assert answer.status_code == 201


def test_wrong_bearer_tokens_are_throttled_per_address_and_counted(client: TestClient) -> None:
    wrong = {"Authorization": "Bearer not-the-token-at-all-0000"}
    for _ in range(FAILURES_ALLOWED):
        assert client.get("/campaigns", headers=wrong).status_code == 401
    throttled = client.get("/campaigns", headers=WRITE)  # the right one too, from there
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_failures"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200  # no credential offered: not throttled
    metrics = client.get("/metrics").text
    assert 'stickerq_api_auth_failures_total{kind="bearer"}' in metrics
    assert "stickerq_api_throttled_total" in metrics


def test_a_token_shorter_than_16_characters_is_refused_at_start(
    database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(database_url, redis_prefix, "http://x", api_tokens=f"{TOKEN},short:ro")
    with pytest.raises(ConfigurationError, match="token 2 is shorter than 16 characters") as got:
        create_app(settings)
    assert "short" not in str(got.value).replace("shorter", "")


def test_stickerq_api_refuses_a_short_token_with_exit_2_and_no_traceback(
    database_url: str, redis_prefix: str
) -> None:
    from tests.test_cli import assert_clean_exit, run

    settings = make_settings(database_url, redis_prefix, "http://x", api_tokens="short-one")
    result = run(settings, "api", "--port", "9")
    assert_clean_exit(result, 2)
    assert "token 1 is shorter than 16 characters" in result.output
    assert "short-one" not in result.output
