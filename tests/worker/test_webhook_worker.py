"""Webhook events through real workers: beat's task delivers them, and a worker killed
holding a POST (the receiver has it, stickerq never heard back) loses nothing: the next
worker sends it again once the dead one's lease lapses, with the same event id."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from stickerq.db import make_engine, make_session_factory
from stickerq.models import WebhookOutboxEvent
from stickerq.pauses import PauseRequest, record_pause
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.producer.webhooks import add_webhook
from stickerq.queue import DELIVER_WEBHOOKS
from stickerq.queue import app as celery_app
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import PauseScope
from stickerq.webhook_signing import SIGNATURE_HEADER, verify
from tests.conftest import STICKER_ID, wait_until
from tests.webhook_receiver import Receiver
from tests.worker.conftest import Workers

SID = "HXAP16XXXXXX97IN"


def webhook_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_hosts": "127.0.0.1",
            "webhook_interval_seconds": 0.2,
            "webhook_retry_first_seconds": 0.2,
            "webhook_retry_cap_seconds": 0.5,
            **overrides,
        }
    )


def pause_account(settings: Settings) -> None:
    """The change: an account pause, whose pause.started event is written with it."""
    engine = make_engine(settings.database_url)
    with make_session_factory(engine).begin() as session:
        request = PauseRequest(PauseScope.ACCOUNT, "E110", "balance ran out")
        record_pause(session, request, SID, "+919000000001", None)
    engine.dispose()


def outbox_rows(settings: Settings) -> list[WebhookOutboxEvent]:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        found = list(session.scalars(select(WebhookOutboxEvent)))
    engine.dispose()
    return found


def test_the_celery_task_delivers_a_committed_change_signed(
    settings: Settings, run_worker: Callable[[Settings], None]
) -> None:
    settings = webhook_settings(settings)
    with Receiver(fail_first=2) as receiver:
        added = add_webhook(settings, receiver.url, ["pause.started"], "test")
        pause_account(settings)
        run_worker(settings)

        def delivered() -> bool:
            celery_app.send_task(DELIVER_WEBHOOKS, queue="stickerq")
            time.sleep(0.3)
            return all(row.delivered_at for row in outbox_rows(settings))

        wait_until(delivered, timeout=30)
    [row] = outbox_rows(settings)
    assert row.attempts == 3
    assert {e["id"] for e in receiver.events()} == {row.event_id}
    headers, body = receiver.posts[-1]
    assert verify(added.secret, body, headers[SIGNATURE_HEADER], time.time())
    assert receiver.events()[-1]["data"]["code"] == "E110"


def test_a_worker_killed_holding_the_post_loses_nothing_and_the_id_stays_one(
    settings: Settings, workers: Workers
) -> None:
    # the worker waits up to 3 s for an answer; the receiver holds the first POST 2.5 s
    settings = webhook_settings(settings, webhook_timeout_seconds=3.0)
    with Receiver(hold_first_seconds=2.5) as receiver:
        add_webhook(settings, receiver.url, ["pause.started"], "test")
        pause_account(settings)  # committed: the event is in the outbox
        first = workers.start(settings, "--beat")
        wait_until(lambda: receiver.posts, timeout=60)
        workers.kill(first)  # it holds the lease, the POST in flight, nothing recorded
        [row] = outbox_rows(settings)
        assert row.delivered_at is None and row.attempts == 0
        workers.start(settings, "--beat")
        wait_until(lambda: all(r.delivered_at for r in outbox_rows(settings)), timeout=60)
    [row] = outbox_rows(settings)
    assert row.attempts == 1  # the dead worker's try was never recorded
    assert len(receiver.posts) == 2
    assert {e["id"] for e in receiver.events()} == {row.event_id}  # once, by event id


def test_a_campaign_sends_its_failed_message_then_its_completion_to_the_receiver(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None]
) -> None:
    settings = webhook_settings(settings)
    sandbox.script({"+919812345678": ["WA400"]})
    with Receiver() as receiver:
        add_webhook(settings, receiver.url, ["message.failed", "campaign.completed"], "test")
        run_worker(settings)
        campaign_id = enqueue_campaign(
            settings, CampaignRequest(sticker_id=STICKER_ID, to="+919812345678,+919812345679")
        ).campaign_id

        def arrived() -> int:
            celery_app.send_task(DELIVER_WEBHOOKS, queue="stickerq")
            time.sleep(0.3)
            return len(receiver.events()) >= 2

        wait_until(arrived, timeout=30)
    failed, completed = receiver.events()
    assert failed["type"] == "message.failed" and isinstance(receiver.events_posted()[0], list)
    assert (failed["data"]["campaign_id"], failed["data"]["code"]) == (campaign_id, "WA400")
    assert completed["type"] == "campaign.completed"
    assert completed["data"] == {"campaign_id": campaign_id, "account": SID, "status": "completed"}
