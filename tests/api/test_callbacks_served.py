"""The callback loop on real servers: the sandbox calls back a served API (uvicorn on a
loopback port) while a real worker sends; and a callback answered 200 is stored even when
the database went away meanwhile."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from stickerq.api import callbacks as callbacks_module
from stickerq.api import create_app
from stickerq.api.served import ServedApi
from stickerq.db import open_sessions
from stickerq.models import Message, UnknownCallback
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxConfig, SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.api.test_callbacks import URL, sent_messages, settings_for
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, wait_until
from tests.producer.test_callbacks import callback
from tests.relay import TcpRelay


def served(app: FastAPI) -> ServedApi:
    """The app behind uvicorn on a loopback port, in a thread."""
    return ServedApi(app)


def statuses(database_url: str, campaign_id: int | None = None) -> Counter[str]:
    with open_sessions(database_url) as sessions, sessions() as session:
        query = select(Message.status, Message.last_error_code)
        if campaign_id is not None:
            query = query.where(Message.campaign_id == campaign_id)
        return Counter(f"{status}:{code or ''}" for status, code in session.execute(query))


def unknown_callbacks(database_url: str) -> int:
    with open_sessions(database_url) as sessions, sessions() as session:
        return len(session.scalars(select(UnknownCallback.id)).all())


def test_the_sandbox_calls_back_a_served_api_and_messages_reach_read(
    pg_database: str, redis_prefix: str, run_worker: Callable[[Settings], None]
) -> None:
    settings = settings_for(pg_database, redis_prefix)
    with served(create_app(settings)) as api:
        api_url = api.url
        config = SandboxConfig(
            api_key=TEST_API_KEY,
            senders=frozenset({SENDER}),
            seed=7,
            callback_url=api_url + URL,
            callback_delay_ms=2,
            callback_duplicate_rate=0.3,
            callback_reorder_rate=0.5,
            callback_failed_rate=0.15,
        )
        with SandboxServer(config) as sandbox:
            worker_settings = settings.model_copy(update={"kaleyra_base_url": sandbox.url})
            run_worker(worker_settings)
            recipients = ",".join(f"+9198765{n:05d}" for n in range(60))
            campaign_id = enqueue_campaign(
                worker_settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
            ).campaign_id

            def settled() -> bool:
                counts = statuses(pg_database, campaign_id)
                return counts["read:"] + counts["failed:131047"] == 60

            # early callbacks (before the worker wrote the message_id) land within seconds
            wait_until(settled, timeout=40, interval=0.2)
            wait_until(lambda: sandbox.callbacks()["pending"] == 0, timeout=10)
            posted = sandbox.callbacks()
            # a callback that beat its message_id stays unknown until the writer's next
            # recheck (every RECHECK_SECONDS), even when later ones already moved the message
            wait_until(lambda: unknown_callbacks(pg_database) == 0, timeout=10)
    counts = statuses(pg_database, campaign_id)
    assert counts["read:"] and counts["failed:131047"], counts
    assert posted["refused"] == posted["gave_up"] == 0, posted
    assert posted["posted"] > 60 * 2  # sent + at least one more each, some twice
    with open_sessions(pg_database) as sessions, sessions() as session:
        read = session.scalars(select(Message).where(Message.status == MessageStatus.READ)).all()
    assert all(m.delivered_at is not None and m.read_at is not None for m in read)


def test_callbacks_acknowledged_while_the_database_is_down_are_all_stored(
    pg_database: str, redis_prefix: str
) -> None:
    """The database unreachable (a relay in front of PostgreSQL cut: every connection broken,
    new ones refused, as in a restart) holds the answers; once it is back, every callback is
    written and only then answered 200."""
    sent_messages(pg_database, count=40)
    relay = TcpRelay("127.0.0.1", 5432).start()
    relayed = pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    assert relayed != pg_database
    answers: list[tuple[int, float]] = []
    app = create_app(settings_for(relayed, redis_prefix))
    with served(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:
        assert client.post(URL, json=callback("M0", "delivered")).status_code == 200

        def post(n: int) -> None:
            answer = client.post(URL, json=callback(f"M{n}", "read"))
            answers.append((answer.status_code, time.monotonic()))

        relay.cut()
        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [pool.submit(post, n) for n in range(40)]
            time.sleep(1.5)
            assert answers == []  # nobody is told "stored" while it is not
            restored_at = time.monotonic()
            relay.restore()
            for future in futures:
                future.result()
    relay.cut()
    assert [status for status, _ in answers] == [200] * 40
    assert all(at >= restored_at for _, at in answers)
    assert statuses(pg_database) == {"read:": 40}


def test_a_callback_not_stored_in_time_is_a_503_and_is_still_written_later(
    pg_database: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callbacks_module, "WRITE_TIMEOUT_SECONDS", 0.3)
    sent_messages(pg_database, count=1)
    relay = TcpRelay("127.0.0.1", 5432).start()
    relayed = pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    app = create_app(settings_for(relayed, redis_prefix))
    with TestClient(app, raise_server_exceptions=False) as client:
        relay.cut()
        answer = client.post(URL, json=callback("M0", "read"))
        assert answer.status_code == 503
        assert answer.json()["code"] == "callbacks_not_written"
        relay.restore()  # Kaleyra would try again; the first one lands meanwhile
        wait_until(lambda: statuses(pg_database) == {"read:": 1}, timeout=15)
    relay.cut()
