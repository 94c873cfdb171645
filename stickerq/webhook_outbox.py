"""The outbox: events for webhooks, written in the transaction of the change that causes
them, so a committed change always has its events and a rolled-back one never does.

One row per event and subscribed endpoint (`webhook_outbox`); the endpoints of one event
share its event id. An event is written only when some enabled endpoint subscribes to its
type: which endpoints do is read once per SUBSCRIBERS_TTL_SECONDS per process and database
(an added or removed endpoint is seen at once in the process that made the change, within
that time elsewhere), so stickerq without webhooks pays a dictionary lookup per change.
Message events are written in one bulk INSERT per flush, never a row at a time.

The outbox has no foreign key to its endpoint: a writer whose list of subscribers is a few
seconds old must not fail the change it records (a batch's results, a callback) because an
endpoint was removed meanwhile; the delivery drops the rows of an endpoint that is gone.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from stickerq.models import Campaign, WebhookEndpoint, WebhookOutboxEvent, utcnow

SUBSCRIBERS_TTL_SECONDS = 5.0
_outbox = cast(Table, WebhookOutboxEvent.__table__)
_KEYED_EVENT_IDS = uuid.UUID("5c0d3f5e-7f1c-4a53-9d0e-2b8f4e1a6c27")  # uuid5's namespace


class EventType(StrEnum):
    CAMPAIGN_COMPLETED = "campaign.completed"  # every message settled
    CAMPAIGN_PAUSED = "campaign.paused"  # by an operator, or a run of WA400s
    PAUSE_STARTED = "pause.started"  # an account or sender pause (E110, WA401...)
    PAUSE_LIFTED = "pause.lifted"  # `stickerq resume`
    MESSAGE_FAILED = "message.failed"  # a send's final failure (the worker's result)
    MESSAGE_STATUS = "message.status"  # a status callback: delivered, read, failed
    WEBHOOK_TEST = "webhook.test"  # `stickerq webhooks test`: one endpoint only


# Sent as a JSON array of up to STICKERQ_WEBHOOK_BATCH_SIZE events per POST; the others alone.
MESSAGE_EVENTS = frozenset({EventType.MESSAGE_FAILED, EventType.MESSAGE_STATUS})
SUBSCRIBABLE = tuple(t for t in EventType if t is not EventType.WEBHOOK_TEST)


@dataclass(frozen=True, slots=True)
class Event:
    """What happened: its campaign (the order of delivery is per campaign), its account (an
    endpoint may take one account's events only) and its data (the body's `data`)."""

    campaign_id: int | None
    sid: str | None
    data: dict[str, Any]
    # What makes two events one (a status callback Kaleyra sent again): the same key gives
    # the same event id for a type, so a receiver drops the copy by id. None: a new id.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    endpoint_id: int
    account: str | None

    def takes(self, sid: str | None) -> bool:
        return self.account is None or self.account == sid


_lock = threading.Lock()
# database URL -> (when it goes stale, event type -> its subscribers)
_subscribers: dict[str, tuple[float, dict[str, list[Subscriber]]]] = {}


def forget_subscribers() -> None:
    """Read the endpoints again at the next change (after one is added, removed, disabled)."""
    with _lock:
        _subscribers.clear()


def subscribers(session: Session, event_type: EventType) -> list[Subscriber]:
    """The enabled endpoints that take this type of event (cached, see the module's doc)."""
    key = str(session.get_bind().engine.url)
    now = time.monotonic()
    with _lock:
        cached = _subscribers.get(key)
    if cached is None or cached[0] <= now:
        cached = (now + SUBSCRIBERS_TTL_SECONDS, _read_subscribers(session))
        with _lock:
            _subscribers[key] = cached
    return cached[1].get(event_type, [])


def _read_subscribers(session: Session) -> dict[str, list[Subscriber]]:
    found: dict[str, list[Subscriber]] = {}
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.account).where(
            WebhookEndpoint.disabled_at.is_(None)
        )
    )
    for endpoint_id, events, account in rows:
        for event_type in events.split(","):
            found.setdefault(event_type, []).append(Subscriber(endpoint_id, account))
    return found


def add_event(session: Session, event_type: EventType, event: Event) -> int:
    """Write one event for every endpoint subscribed to it; returns how many rows."""
    return add_events(session, event_type, [event])


def add_events(session: Session, event_type: EventType, events: Iterable[Event]) -> int:
    """Write events of one type for their subscribers in one INSERT; returns how many rows.
    Costs nothing (not even reading `events`) when no endpoint subscribes to the type."""
    found = subscribers(session, event_type)
    if not found:
        return 0
    return write_rows(session, event_type, events, found)


def add_campaign_events(
    session: Session, event_type: EventType, campaign_id: int, data: Sequence[dict[str, Any]]
) -> int:
    """Events of one campaign (a batch's failed messages): its account is read only when
    some endpoint subscribes."""
    found = subscribers(session, event_type)
    if not found or not data:
        return 0
    sid = session.scalar(select(Campaign.sid).where(Campaign.id == campaign_id))
    return write_rows(session, event_type, (Event(campaign_id, sid, d) for d in data), found)


def _event_id(event_type: EventType, event: Event) -> str:
    if event.key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_KEYED_EVENT_IDS, f"{event_type.value}:{event.key}"))


def write_rows(
    session: Session,
    event_type: EventType,
    events: Iterable[Event],
    endpoints: Sequence[Subscriber],
) -> int:
    now = utcnow()
    rows = []
    for event in events:
        event_id = _event_id(event_type, event)
        payload = json.dumps(event.data, sort_keys=True, default=str)
        for endpoint in endpoints:
            if endpoint.takes(event.sid):
                rows.append(
                    {
                        "endpoint_id": endpoint.endpoint_id,
                        "event_id": event_id,
                        "type": event_type.value,
                        "campaign_id": event.campaign_id,
                        "payload": payload,
                        "created_at": now,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
    if rows:
        session.execute(insert(_outbox), rows)
    return len(rows)
