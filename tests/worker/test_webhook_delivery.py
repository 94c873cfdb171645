"""Delivery of the webhook outbox to a real receiver on loopback: signed, retried with
backoff until it is taken, batched, in order per campaign, failed after its time, and the
endpoint disabled after failing long enough."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import WebhookEndpoint, WebhookOutboxEvent, utcnow
from stickerq.webhook_outbox import Event, EventType, Subscriber, write_rows
from stickerq.webhook_signing import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from stickerq.worker.webhook_delivery import DeliveryPolicy, deliver_due
from stickerq.worker.webhook_retention import purge_webhook_events
from tests.webhook_receiver import Receiver

SECRET = "whsec_test_secret_of_the_receiver"


def policy(**overrides: object) -> DeliveryPolicy:
    values: dict[str, object] = {
        "timeout": 2.0,
        "batch_size": 500,
        "first": 0.2,
        "cap": 0.4,
        "retry_for": timedelta(hours=24),
        "disable_after": timedelta(days=3),
        "round_seconds": 5.0,
        "allow_hosts": frozenset({"127.0.0.1"}),
    }
    values.update(overrides)
    return DeliveryPolicy(**values)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def add_endpoint(sessions: sessionmaker[Session], url: str) -> int:
    with sessions.begin() as session:
        endpoint = WebhookEndpoint(url=url, secret=SECRET, events="campaign.completed")
        session.add(endpoint)
        session.flush()
        return endpoint.id


def add_events(
    sessions: sessionmaker[Session],
    endpoint_id: int,
    event_type: EventType,
    data: list[dict[str, object]],
    campaign_id: int | None = 1,
) -> None:
    with sessions.begin() as session:
        events = [Event(campaign_id, None, d) for d in data]
        write_rows(session, event_type, events, [Subscriber(endpoint_id, None)])


def rows(sessions: sessionmaker[Session]) -> list[WebhookOutboxEvent]:
    with sessions() as session:
        return list(session.scalars(select(WebhookOutboxEvent).order_by(WebhookOutboxEvent.id)))


def deliver_until_settled(
    sessions: sessionmaker[Session], client: httpx.Client, rules: DeliveryPolicy, rounds: int = 60
) -> None:
    for _ in range(rounds):
        deliver_due(sessions, client, rules)
        if all(r.delivered_at or r.failed_at for r in rows(sessions)):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"not settled: {[(r.id, r.attempts, r.last_error) for r in rows(sessions)]}"
    )


def test_a_receiver_failing_the_first_posts_gets_the_event_after_retries(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver(fail_first=3) as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"campaign_id": 1}])
        started = time.monotonic()
        deliver_until_settled(sessions, client, policy())
        took = time.monotonic() - started
    [row] = rows(sessions)
    assert row.delivered_at is not None and row.failed_at is None
    assert row.attempts == 4 and row.last_error is None
    assert len(receiver.posts) == 4  # three refused, then taken: no more
    assert took < 10
    ids = {headers[EVENT_ID_HEADER] for headers, _ in receiver.posts}
    assert ids == {row.event_id}  # every retry carries the same id
    for headers, body in receiver.posts:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER], time.time())
    event = json.loads(receiver.posts[-1][1])
    assert event == {
        "id": row.event_id,
        "type": "campaign.completed",
        "created_at": row.created_at.isoformat(),
        "data": {"campaign_id": 1},
    }


def test_retries_wait_with_backoff_and_the_endpoint_is_marked_failing(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver(fail_first=100) as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"campaign_id": 1}])
        rules = policy(first=30.0, cap=60.0)
        deliver_due(sessions, client, rules)
        deliver_due(sessions, client, rules)  # not due again yet: nothing is posted
    assert len(receiver.posts) == 1
    [row] = rows(sessions)
    assert row.attempts == 1 and row.last_error is not None and "HTTP 500" in row.last_error
    # the first wait: between half and all of 30 s
    assert (
        utcnow() + timedelta(seconds=14) < row.next_attempt_at <= utcnow() + timedelta(seconds=30)
    )
    with sessions() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.failing_since is not None
        assert endpoint.disabled_at is None and endpoint.leased_until is None


def test_an_event_not_delivered_within_its_time_is_failed(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver(fail_first=100) as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"campaign_id": 1}])
        deliver_until_settled(sessions, client, policy(retry_for=timedelta(seconds=1)))
    [row] = rows(sessions)
    assert row.failed_at is not None and row.delivered_at is None
    assert row.attempts >= 2 and "HTTP 500" in (row.last_error or "")


def test_an_endpoint_failing_for_the_whole_period_is_disabled_and_its_events_failed(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver(fail_first=100) as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"campaign_id": 1}])
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"campaign_id": 2}], 2)
        deliver_until_settled(sessions, client, policy(disable_after=timedelta(seconds=0.5)))
        posts = len(receiver.posts)
        deliver_due(sessions, client, policy())
        assert len(receiver.posts) == posts  # a disabled endpoint gets nothing
    with sessions() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.disabled_at is not None
        assert "every POST failed" in (endpoint.disabled_reason or "")
    assert all(r.failed_at is not None for r in rows(sessions))


def test_message_events_go_in_arrays_of_the_batch_size(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver() as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        data: list[dict[str, object]] = [{"message": n} for n in range(1200)]
        add_events(sessions, endpoint_id, EventType.MESSAGE_STATUS, data)
        deliver_until_settled(sessions, client, policy())
    sizes = [len(json.loads(body)) for _, body in receiver.posts]
    assert sizes == [500, 500, 200]
    assert [e["data"]["message"] for e in receiver.events()] == list(range(1200))
    assert len({e["id"] for e in receiver.events()}) == 1200
    for headers, _ in receiver.posts:
        assert headers[EVENT_ID_HEADER].startswith("batch-")


def test_a_campaigns_later_events_wait_for_its_earlier_one_others_go_on(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver(fail_first=1) as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_PAUSED, [{"n": 1}], campaign_id=1)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_PAUSED, [{"n": 2}], campaign_id=2)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"n": 3}], campaign_id=1)
        rules = policy(first=60.0, cap=60.0)
        deliver_due(sessions, client, rules)  # n=1 refused: the round ends
        deliver_due(sessions, client, rules)  # n=2 goes; n=3 waits behind n=1
        arrived = [e["data"]["n"] for e in receiver.accepted_events()]
        assert arrived == [2]
        with sessions.begin() as session:  # n=1's retry is due now
            session.execute(update(WebhookOutboxEvent).values(next_attempt_at=utcnow()))
        deliver_until_settled(sessions, client, rules)
    assert [e["data"]["n"] for e in receiver.accepted_events()] == [2, 1, 3]


def test_the_purge_deletes_settled_events_past_retention_and_keeps_the_rest(
    sessions: sessionmaker[Session],
) -> None:
    add_events(sessions, 1, EventType.CAMPAIGN_COMPLETED, [{"n": n} for n in range(4)])
    old = utcnow() - timedelta(days=8)
    with sessions.begin() as session:
        pks = [r.id for r in session.scalars(select(WebhookOutboxEvent))]
        session.execute(  # delivered, failed, waiting: all old; the last one recent
            update(WebhookOutboxEvent)
            .where(WebhookOutboxEvent.id.in_(pks[:3]))
            .values(created_at=old)
        )
        session.execute(
            update(WebhookOutboxEvent)
            .where(WebhookOutboxEvent.id.in_([pks[0], pks[3]]))
            .values(delivered_at=utcnow())
        )
        session.execute(
            update(WebhookOutboxEvent)
            .where(WebhookOutboxEvent.id == pks[1])
            .values(failed_at=utcnow())
        )
    assert purge_webhook_events(sessions, days=7) == 2
    assert [r.id for r in rows(sessions)] == [pks[2], pks[3]]


def test_events_of_an_endpoint_removed_meanwhile_are_dropped_not_posted(
    sessions: sessionmaker[Session], client: httpx.Client
) -> None:
    with Receiver() as receiver:
        endpoint_id = add_endpoint(sessions, receiver.url)
        add_events(sessions, endpoint_id, EventType.CAMPAIGN_COMPLETED, [{"n": 1}])
        add_events(sessions, endpoint_id + 1, EventType.CAMPAIGN_COMPLETED, [{"n": 2}])
        assert deliver_due(sessions, client, policy()) == 1
    assert [e["data"] for e in receiver.events()] == [{"n": 1}]
    assert [r.endpoint_id for r in rows(sessions)] == [endpoint_id]
