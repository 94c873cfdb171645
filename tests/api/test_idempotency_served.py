"""Idempotency-Key over real HTTP (uvicorn on a loopback port, in a thread), its first request
held by another process: retries of a key being stored hold no server thread, and a key whose
owner was SIGKILLed is taken over by the next retry, once, however many race for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from stickerq.api import create_app
from stickerq.api.served import ServedApi
from stickerq.db import open_sessions
from stickerq.models import Campaign, IdempotencyKey
from stickerq.settings import Settings
from tests.api.conftest import BODY, TOKEN, WRITE
from tests.conftest import make_settings
from tests.key_holder import KeyHolder

RETRIES = 45  # more than the server's 40 threads
NORMAL_SECONDS = 2.0  # a generous bound on an answer that takes ~0.06 s (held threads: > 20 s)


@pytest.fixture
def api_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=TOKEN)


@pytest.fixture
def api(api_settings: Settings) -> Iterator[httpx.Client]:
    with ServedApi(create_app(api_settings)) as served:
        limits = httpx.Limits(max_connections=RETRIES + 5)
        with httpx.Client(base_url=served.url, timeout=30, limits=limits) as client:
            yield client


def holder(settings: Settings, key: str) -> KeyHolder:
    """A process that reserved `key` for BODY and stopped before storing."""
    return KeyHolder(settings.database_url, settings.redis_prefix, key, BODY)


def post(api: httpx.Client, key: str) -> httpx.Response:
    return api.post("/campaigns", json=BODY, headers={**WRITE, "Idempotency-Key": key})


def keyed_campaign(settings: Settings, key: str) -> int | None:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return session.scalar(select(IdempotencyKey.campaign_id).where(IdempotencyKey.key == key))


def test_retries_of_a_key_being_stored_hold_no_thread(
    api: httpx.Client, api_settings: Settings
) -> None:
    other = api.post("/campaigns", json=BODY, headers=WRITE)
    assert other.status_code == 201, other.text
    shown = f"/campaigns/{other.json()['campaign_id']}"
    with (
        holder(api_settings, "stuck-1") as first,
        ThreadPoolExecutor(RETRIES) as pool,
    ):
        retries = [pool.submit(post, api, "stuck-1") for _ in range(RETRIES)]
        time.sleep(0.5)  # the retries are in the server (the old code polled in 40 threads)
        began = time.monotonic()
        answer = api.get(shown, headers=WRITE, timeout=10)
        took = time.monotonic() - began
        answers = [retry.result() for retry in retries]
        made = first.store()
    assert answer.status_code == 200 and took < NORMAL_SECONDS, took
    for refused in answers:
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "idempotency_key_in_use"
        assert "still being stored" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.elapsed.total_seconds() < NORMAL_SECONDS
    again = post(api, "stuck-1")
    assert (again.status_code, again.json()["campaign_id"]) == (200, made)


def test_a_key_whose_owner_was_killed_is_taken_over_by_the_next_retry(
    api: httpx.Client, api_settings: Settings
) -> None:
    with holder(api_settings, "killed-1") as first:
        assert post(api, "killed-1").status_code == 409  # alive: still being stored
        first.kill()
    taken = post(api, "killed-1")
    assert taken.status_code == 201, taken.text
    made = taken.json()["campaign_id"]
    again = post(api, "killed-1")
    assert (again.status_code, again.json()["campaign_id"]) == (200, made)
    assert keyed_campaign(api_settings, "killed-1") == made


def test_concurrent_takeovers_of_a_killed_owner_make_one_campaign(
    api: httpx.Client, api_settings: Settings
) -> None:
    with holder(api_settings, "killed-2") as first:
        first.kill()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: post(api, "killed-2"), range(12)))
    made = [answer.json()["campaign_id"] for answer in answers if answer.status_code == 201]
    assert len(made) == 1, [answer.text for answer in answers]
    for answer in answers:
        if answer.status_code == 200:
            assert answer.json()["campaign_id"] == made[0]
        elif answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_use"
        else:
            assert answer.status_code == 201
    again = post(api, "killed-2")
    assert (again.status_code, again.json()["campaign_id"]) == (200, made[0])
    with open_sessions(api_settings.database_url) as sessions, sessions() as session:
        stored = session.scalars(select(Campaign.id)).all()
    assert stored == [made[0]]  # the dead owner stored nothing; the racing retries one
