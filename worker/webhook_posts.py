"""What one webhook POST carries, and its body and headers.

An endpoint's waiting events are read in id order (the order they were written). A
campaign's event waiting for a retry holds back that campaign's later events (events of no
campaign, the pauses', are one sequence of their own), so a receiver gets each campaign's
events in order. Consecutive message events go together as a JSON array of up to
`batch_size`; any other event goes alone, as one JSON object.

Headers: `Stickerq-Signature` (stickerq/webhook_signing.py); `Stickerq-Event-Id`, the event's
id for one event, and for an array `batch-<uuid>`, new for each POST: an array's events are
deduplicated by the `id` each carries in the body (`Stickerq-Event-Count` says how many).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.models import WebhookOutboxEvent
from stickerq.webhook_outbox import MESSAGE_EVENTS
from stickerq.webhook_signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

WINDOW_BATCHES = 4  # events read per round trip: this many full POSTs' worth
COUNT_HEADER = "Stickerq-Event-Count"


@dataclass(frozen=True, slots=True)
class WaitingEvent:
    id: int
    event_id: str
    type: str
    campaign_id: int | None
    payload: str  # JSON text, put in the body as it is
    created_at: datetime
    attempts: int
    next_attempt_at: datetime


@dataclass(slots=True)
class Post:
    rows: list[WaitingEvent] = field(default_factory=list)
    is_batch: bool = False


_WAITING = select(*(getattr(WebhookOutboxEvent, name) for name in WaitingEvent.__slots__))


def posts_of(session: Session, endpoint_id: int, batch_size: int, now: datetime) -> list[Post]:
    """The endpoint's due events, grouped into POSTs in the order they must arrive."""
    rows = [
        WaitingEvent(*row)
        for row in session.execute(
            _WAITING.where(
                WebhookOutboxEvent.endpoint_id == endpoint_id,
                WebhookOutboxEvent.delivered_at.is_(None),
                WebhookOutboxEvent.failed_at.is_(None),
            )
            .order_by(WebhookOutboxEvent.id)
            .limit(batch_size * WINDOW_BATCHES)
        )
    ]
    held: set[int | None] = set()  # campaigns whose earliest waiting event is not due
    posts: list[Post] = []
    for row in rows:
        if row.campaign_id in held:
            continue
        if row.next_attempt_at > now:
            held.add(row.campaign_id)
            continue
        batched = row.type in MESSAGE_EVENTS
        last = posts[-1] if posts else None
        if batched and last is not None and last.is_batch and len(last.rows) < batch_size:
            last.rows.append(row)
        else:
            posts.append(Post([row], is_batch=batched))
    return posts


def event_body(row: WaitingEvent) -> str:
    """The event as JSON: its stored `data` goes in as written (no decoding, no encoding)."""
    head = json.dumps(
        {"id": row.event_id, "type": row.type, "created_at": row.created_at.isoformat()},
        separators=(",", ":"),
    )
    return f'{head[:-1]},"data":{row.payload}}}'


def request_of(post: Post, secret: str, timestamp: int) -> tuple[dict[str, str], bytes]:
    """The POST's headers and body, signed at `timestamp` (unix seconds)."""
    events = [event_body(row) for row in post.rows]
    document = f"[{','.join(events)}]" if post.is_batch else events[0]
    body = document.encode()
    event_id = f"batch-{uuid.uuid4()}" if post.is_batch else post.rows[0].event_id
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "stickerq-webhooks",
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        EVENT_ID_HEADER: event_id,
        COUNT_HEADER: str(len(events)),
    }
    return headers, body
