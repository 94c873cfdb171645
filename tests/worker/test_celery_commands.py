"""Celery's own commands on the app that configures itself from the STICKERQ_* settings:
`celery -A stickerq.worker.celery_app worker|inspect|events|flower`, as real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.queue import SEND_BATCH, worker_queues
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import STICKER_ID, make_settings, wait_until
from tests.helpers import Db

APP = "stickerq.worker.celery_app"


@pytest.fixture
def settings(sqlite_database: str, redis_prefix: str, sandbox: SandboxServer) -> Settings:
    return make_settings(sqlite_database, redis_prefix, sandbox.url)


@pytest.fixture
def celery(settings: Settings, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """`celery -A APP` and the environment holding these settings; stops what it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STICKERQ_")}
    env |= settings.as_environment() | {"PYTHONWARNINGS": "ignore:::celery.platforms"}
    env["PYTHONUNBUFFERED"] = "1"  # the events dump is read while it runs
    yield [sys.executable, "-m", "celery", "-A", APP], env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def inspect(celery: tuple[list[str], dict[str, str]], what: str) -> object:
    """`celery inspect WHAT` as JSON; None while no worker answered within a second."""
    command, env = celery
    done = subprocess.run(
        [*command, "inspect", what, "--json", "--timeout", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workers_flower_sees(port: int) -> list[str] | None:
    """The worker names Flower's API lists (it asks the workers through the broker)."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=5)
    except httpx.HTTPError:
        return None
    return sorted(answer.json()) if answer.status_code == 200 and answer.json() else None


def test_celery_worker_inspect_and_events_work_on_the_stickerq_settings(
    settings: Settings, celery: tuple[list[str], dict[str, str]], tmp_path: Path
) -> None:
    command, env = celery
    worker = start(
        [*command, "worker", "--pool", "solo", "-E", "-n", "probe@%h", "-l", "INFO"],
        env,
        tmp_path / "w.log",
    )
    events = start([*command, "events", "--dump"], env, tmp_path / "events.log")
    flower_port = free_port()
    flower = start(
        [*command, "flower", f"--port={flower_port}", "--address=127.0.0.1"],
        env | {"FLOWER_UNAUTHENTICATED_API": "true"},
        tmp_path / "flower.log",
    )
    try:
        pong = wait_until(lambda: inspect(celery, "ping"), timeout=60, interval=0.5)
        assert isinstance(pong, dict) and list(pong.values()) == [{"ok": "pong"}]
        flower_workers = wait_until(
            lambda: workers_flower_sees(flower_port), timeout=60, interval=0.5
        )
        assert isinstance(flower_workers, list) and flower_workers[0].startswith("probe@")
        queues = wait_until(lambda: inspect(celery, "active_queues"), timeout=30, interval=0.5)
        assert isinstance(queues, dict)
        assert {queue["name"] for queue in next(iter(queues.values()))} == set(worker_queues())

        campaign_id = enqueue_campaign(
            settings,
            CampaignRequest(
                sticker_id=STICKER_ID, to=",".join(f"+91981234{n:04d}" for n in range(5))
            ),
        ).campaign_id
        db = Db(settings)
        wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)
        assert {m.status for m in db.messages(campaign_id)} == {"sent"}
        db.close()
        succeeded = f"task succeeded: {SEND_BATCH}"
        wait_until(lambda: succeeded in (tmp_path / "events.log").read_text(), timeout=20)
    finally:
        for process in (flower, events, worker):
            process.terminate()
        for process in (flower, events, worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert settings.kaleyra_api_key.get_secret_value() not in (tmp_path / "w.log").read_text()
