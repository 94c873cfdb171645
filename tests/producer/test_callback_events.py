"""Status callbacks write `message.status` (and `message.failed`) webhook events in their own
transaction, in bulk, for known messages only, without the recipient's number."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import WebhookOutboxEvent
from stickerq.producer.callback_payloads import parse_callback
from stickerq.producer.callbacks import apply_callbacks
from tests.producer.test_callbacks import callback, store_sent_messages
from tests.test_webhook_outbox import add_endpoint


def outbox(sessions: sessionmaker[Session]) -> list[WebhookOutboxEvent]:
    with sessions() as session:
        return list(session.scalars(select(WebhookOutboxEvent).order_by(WebhookOutboxEvent.id)))


def apply(sessions: sessionmaker[Session], *payloads: dict) -> None:
    with sessions.begin() as session:
        apply_callbacks(session, [parse_callback(p) for p in payloads])


def test_callbacks_write_their_status_events_and_failures_as_message_failed(
    sessions: sessionmaker[Session],
) -> None:
    status_hook = add_endpoint(sessions, "message.status")
    failed_hook = add_endpoint(sessions, "message.failed")
    campaign_id = store_sent_messages(sessions)
    failure = {"errors": [{"code": 131026, "title": "undeliverable"}]}
    apply(
        sessions,
        callback("M0", "delivered"),
        callback("M1", "failed", **failure),
        callback("M0", "delivered"),  # a copy in the same batch: one event
        callback("NOSUCH", "delivered"),  # no message: kept as unknown, no event
    )
    rows = outbox(sessions)
    statuses = [r for r in rows if r.endpoint_id == status_hook]
    failures = [r for r in rows if r.endpoint_id == failed_hook]
    assert sorted(json.loads(r.payload)["message_id"] for r in statuses) == ["M0", "M1"]
    [failed] = failures
    data = json.loads(failed.payload)
    assert (failed.type, failed.campaign_id) == ("message.failed", campaign_id)
    assert (data["message_id"], data["status"], data["ref"]) == ("M1", "failed", None)
    for row in rows:
        assert "+9198123456" not in row.payload  # never the recipient's number


def test_without_a_subscriber_callbacks_write_no_event(sessions: sessionmaker[Session]) -> None:
    add_endpoint(sessions, "campaign.completed")
    store_sent_messages(sessions)
    apply(sessions, callback("M0", "delivered"), callback("M1", "read"))
    assert outbox(sessions) == []


def test_a_callback_batch_rolled_back_leaves_no_event(sessions: sessionmaker[Session]) -> None:
    add_endpoint(sessions, "message.status")
    store_sent_messages(sessions)
    try:
        with sessions.begin() as session:
            apply_callbacks(session, [parse_callback(callback("M0", "delivered"))])
            raise RuntimeError("the group commit fails")
    except RuntimeError:
        pass
    assert outbox(sessions) == []


def test_a_callback_heard_again_in_a_later_batch_makes_an_event_of_the_same_id(
    sessions: sessionmaker[Session],
) -> None:
    """A receiver drops copies by event id: Kaleyra's retry of a callback is such a copy."""
    add_endpoint(sessions, "message.status")
    add_endpoint(sessions, "message.failed")
    store_sent_messages(sessions)
    failure = {"errors": [{"code": 131026, "title": "undeliverable"}]}
    apply(sessions, callback("M0", "delivered"), callback("M1", "failed", **failure))
    apply(sessions, callback("M0", "delivered"), callback("M1", "not-sent", **failure))
    apply(sessions, callback("M0", "read"))

    ids: dict[tuple[str, str, str], set[str]] = {}
    for row in outbox(sessions):
        data = json.loads(row.payload)
        ids.setdefault((row.type, data["message_id"], data["status"]), set()).add(row.event_id)
    assert {key: len(found) for key, found in ids.items()} == {
        ("message.status", "M0", "delivered"): 1,
        ("message.status", "M0", "read"): 1,
        ("message.status", "M1", "failed"): 1,
        ("message.failed", "M1", "failed"): 1,
    }
    every_id = [event_id for found in ids.values() for event_id in found]
    assert len(set(every_id)) == len(every_id)  # one id per event, never shared by two
