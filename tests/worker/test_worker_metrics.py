"""The worker's own /metrics (a prefork pool: every child's counts added up) and its JSON
log lines, from a real `stickerq worker` sending a small campaign to the sandbox."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, make_settings, wait_until
from tests.helpers import Db

METRICS_TOKEN = "scrape-t0ken-42"
RECIPIENTS = [f"+91981234{n:04d}" for n in range(30)]
FAULTS = {RECIPIENTS[0]: ["WA400"], RECIPIENTS[1]: ["WA500", "WA202"], RECIPIENTS[2]: ["WA500"] * 9}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=5,
    )
    answer.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def sent(port: int) -> float:
    try:
        return scrape(port).get(
            ("stickerq_messages_total", (("code", "WA202"), ("outcome", "sent"))), 0
        )
    except httpx.HTTPError:
        return 0  # not listening yet


def test_prefork_worker_metrics_and_json_logs(
    sqlite_database: str, redis_prefix: str, spawn_worker: Callable[..., Path]
) -> None:
    # Six batches of 5 that take a while, one at a time per process: both pool processes
    # send some, and /metrics shows their sum.
    config = SandboxConfig(
        api_key=TEST_API_KEY, senders=frozenset({SENDER}), timeout_seconds=2, latency_ms=50
    )
    with SandboxServer(config) as sandbox:
        check_worker(sqlite_database, redis_prefix, sandbox, spawn_worker)


def check_worker(
    sqlite_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    spawn_worker: Callable[..., Path],
) -> None:
    settings = make_settings(
        sqlite_database,
        redis_prefix,
        sandbox.url,
        batch_size=5,
        batches_per_process=1,
        log_format="json",
        metrics_token=METRICS_TOKEN,
        retry_delays_seconds=[60.0],
    )
    sandbox.script(FAULTS)
    port = free_port()
    log_file = spawn_worker(settings, "--concurrency", "2", "--metrics-port", str(port), "--quiet")
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(RECIPIENTS))
    ).campaign_id
    db = Db(settings)
    wait_until(lambda: sent(port) == 28, timeout=30, interval=0.2)

    samples = scrape(port)
    assert samples[("stickerq_messages_total", (("code", "WA400"), ("outcome", "failed")))] == 1
    assert samples[("stickerq_messages_total", (("code", "WA500"), ("outcome", "pending")))] == 1
    # 30 messages, 28 + 1 + 1 attempts and two quick WA500 retries... as the sandbox counted
    requests = sandbox.stats()["requests"]
    assert samples[("stickerq_kaleyra_request_seconds_count", ())] == requests
    assert samples[("stickerq_kaleyra_request_seconds_bucket", (("le", "+Inf"),))] == requests
    assert samples[("stickerq_kaleyra_request_seconds_sum", ())] > 0
    assert samples[("stickerq_limiter_wait_seconds_count", ())] == requests
    assert samples[("stickerq_claims_in_flight", ())] == 0
    unauthorized = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert unauthorized.status_code == 401

    # both pool processes sent: the counts above are the sum of two processes' files
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    pids = {
        line["pid"]
        for line in lines
        if line["logger"] == "celery.app.trace" and "send_batch" in line["message"]
    }
    assert len(pids) == 2, lines
    failed = [line for line in lines if line.get("code") == "WA400" and "message_pk" in line]
    assert failed, lines
    assert failed[0]["campaign_id"] == campaign_id
    assert failed[0]["message_pk"] == db.message(campaign_id, RECIPIENTS[0]).id
    assert failed[0]["recipient"] == "+91******0000"
    assert failed[0]["level"] == "INFO" and failed[0]["logger"] == "stickerq.worker.sending"
    text = log_file.read_text()
    assert TEST_API_KEY not in text and METRICS_TOKEN not in text
    assert not any(number in text for number in RECIPIENTS)
    db.close()
