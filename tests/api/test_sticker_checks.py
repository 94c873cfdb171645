"""POST /campaigns checks a sticker_link as `send` does (refusal: a 422 `sticker_refused`
listing each problem, nothing stored) and takes `no_check` as `send --no-check`."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.models import Campaign
from stickerq.sandbox import SandboxServer
from tests.api.conftest import BODY, TOKEN, WRITE, count
from tests.conftest import SENDER, TEST_API_KEY, make_settings
from tests.webp import webp

LINK = {"recipients": BODY["recipients"]}


def served(sandbox: SandboxServer, data: bytes) -> str:
    """Upload a file to the sandbox as it is (no check) and return the link it serves it at."""
    answer = httpx.post(
        f"{sandbox.url}/v2/{sandbox.config.sid}/whatsapp/{SENDER}/media",
        headers={"api-key": TEST_API_KEY},
        files={"file": ("s.webp", data, "image/webp")},
        data={"type": "image/webp"},
    )
    return f"{sandbox.url}/_sandbox/media/{answer.json()['data']['media_id']}"


@pytest.fixture
def local_client(database_url: str, redis_prefix: str, sandbox: SandboxServer) -> TestClient:
    """The API with the sandbox's loopback address allowed for sticker checks."""
    settings = make_settings(
        database_url, redis_prefix, sandbox.url, api_tokens=TOKEN,
        sticker_check_allow_hosts="127.0.0.1",
    )  # fmt: skip
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.database_url = database_url  # type: ignore[attr-defined]
    return client


def test_a_good_link_is_stored_and_a_bad_one_is_refused_with_each_problem(
    local_client: TestClient, sandbox: SandboxServer
) -> None:
    good = local_client.post(
        "/campaigns", json={**LINK, "sticker_link": served(sandbox, webp())}, headers=WRITE
    )
    assert good.status_code == 201, good.text
    bad_link = served(sandbox, webp((256, 256), noise=True, lossless=True))
    bad = local_client.post("/campaigns", json={**LINK, "sticker_link": bad_link}, headers=WRITE)
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["code"] == "sticker_refused"
    first, second = problem["problems"]
    assert first.startswith("256 x 256 pixels") and "a static sticker is at most" in second
    assert count(local_client.database_url, Campaign) == 1  # type: ignore[attr-defined]


def test_a_loopback_link_is_refused_by_default_and_no_check_stores_it(client: TestClient) -> None:
    body = {**LINK, "sticker_link": "https://127.0.0.1:9/s.webp"}
    refused = client.post("/campaigns", json=body, headers=WRITE)
    assert refused.status_code == 422
    assert "a loopback address" in refused.json()["problems"][0]
    assert (
        client.post("/campaigns", json={**body, "no_check": True}, headers=WRITE).status_code == 201
    )
    form = {"sticker_link": body["sticker_link"], "no_check": "true"}
    files = {"recipients": ("r.csv", b"phone\n+919812345678\n", "text/csv")}
    assert client.post("/campaigns", data=form, files=files, headers=WRITE).status_code == 201
    assert count(client.database_url, Campaign) == 2  # type: ignore[attr-defined]
