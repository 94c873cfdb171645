"""/metrics on the HTTP API: the families, the gauges read from the database and Redis at
scrape time, the optional metrics token, and labels that stay bounded."""

from __future__ import annotations

import time

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stickerq.api import create_app
from stickerq.beat import mark_beat_seen
from stickerq.db import open_sessions
from stickerq.metrics import CALLBACKS, OTHER, bounded, count_callback
from stickerq.pauses import PauseRequest, record_pause
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.states import PauseScope
from tests.conftest import REDIS_URL, SENDER, STICKER_ID, make_settings

FAMILIES = {
    "stickerq_messages",
    "stickerq_kaleyra_request_seconds",
    "stickerq_limiter_wait_seconds",
    "stickerq_claims_in_flight",
    "stickerq_callbacks",
    "stickerq_callbacks_refused",
    "stickerq_callback_times_replaced",
    "stickerq_unknown_callbacks_dropped",
    "stickerq_queue_depth",
    "stickerq_pauses_in_force",
    "stickerq_campaigns",
    "stickerq_beat_last_run_timestamp_seconds",
    "stickerq_state_up",
}


def scrape(
    client: TestClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def families(client: TestClient) -> set[str]:
    answer = client.get("/metrics")
    return {family.name for family in text_string_to_metric_families(answer.text)}


def test_metrics_shows_every_family_without_a_token(database_url: str, redis_prefix: str) -> None:
    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens="t0k3n-t0k3n-t0k3n"
    )
    client = TestClient(create_app(settings))
    assert families(client) >= FAMILIES
    assert scrape(client)[("stickerq_state_up", (("source", "database"),))] == 1
    assert scrape(client)[("stickerq_state_up", (("source", "redis"),))] == 1


def test_state_gauges_are_read_at_scrape_time(database_url: str, redis_prefix: str) -> None:
    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", batch_size=2, dispatch_interval_seconds=2
    )
    client = TestClient(create_app(settings))
    before = scrape(client)
    assert before[("stickerq_queue_depth", ())] == 0
    assert before[("stickerq_beat_last_run_timestamp_seconds", ())] == 0
    assert not any(name == "stickerq_pauses_in_force" for name, _ in before)

    enqueue_campaign(
        settings,
        CampaignRequest(sticker_id=STICKER_ID, to="+919812345678,+919812345679,+919812345670"),
    )
    with open_sessions(database_url) as sessions, sessions.begin() as session:
        record_pause(
            session, PauseRequest(PauseScope.ACCOUNT, "E110", "balance"), "HXAP", SENDER, None
        )
    mark_beat_seen(redis.Redis.from_url(REDIS_URL), redis_prefix, 2)

    after = scrape(client)
    assert after[("stickerq_queue_depth", ())] == 2  # 3 recipients in batches of 2
    assert after[("stickerq_campaigns", (("status", "queued"),))] == 1
    assert after[("stickerq_pauses_in_force", (("code", "E110"), ("scope", "account")))] == 1
    assert time.time() - after[("stickerq_beat_last_run_timestamp_seconds", ())] < 60


def test_redis_down_is_reported_not_a_failed_scrape(
    sqlite_database: str, redis_prefix: str
) -> None:
    settings = make_settings(sqlite_database, redis_prefix, "http://127.0.0.1:9")
    settings = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    samples = scrape(TestClient(create_app(settings)))
    assert samples[("stickerq_state_up", (("source", "redis"),))] == 0
    assert samples[("stickerq_state_up", (("source", "database"),))] == 1
    assert ("stickerq_queue_depth", ()) not in samples


@pytest.mark.parametrize("given", [None, "Bearer wrong", "m3tr1cs-t0ken"])
def test_a_metrics_token_when_set_is_asked_for(
    sqlite_database: str, redis_prefix: str, given: str | None
) -> None:
    settings = make_settings(
        sqlite_database, redis_prefix, "http://127.0.0.1:9", metrics_token="m3tr1cs-t0ken"
    )
    client = TestClient(create_app(settings))
    answer = client.get("/metrics", headers={"Authorization": given} if given else {})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"
    assert "m3tr1cs" not in answer.text
    assert (
        scrape(client, Authorization="Bearer m3tr1cs-t0ken")[
            ("stickerq_state_up", (("source", "redis"),))
        ]
        == 1
    )


def test_callbacks_are_counted_by_a_bounded_status() -> None:
    def counted(status: str) -> float:
        return CALLBACKS.labels(status)._value.get()

    delivered, other = counted("delivered"), counted(OTHER)
    count_callback("delivered")
    count_callback("+919812345678")  # whatever a caller passes, no new series per value
    count_callback("delivered", 3)
    assert counted("delivered") == delivered + 4
    assert counted(OTHER) == other + 1
    assert bounded(None, {"a"}) == "" and bounded("b", {"a"}) == OTHER
