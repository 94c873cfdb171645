"""The JSON of `webhooks add|list|deliveries|test` (and of /webhooks in the HTTP API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stickerq.producer.views.base import Time, View


class WebhookView(View):
    """A webhook, never with its secret."""

    id: Annotated[int, Field(description="its id (`webhooks remove ID`)")]
    url: Annotated[str, Field(description="where events are POSTed")]
    events: Annotated[list[str], Field(description="the event types it takes")]
    account: Annotated[str | None, Field(description="only this SID's events; null: every one")]
    created_at: Annotated[Time, Field(description="when it was added")]
    state: Annotated[
        Literal["ok", "failing", "disabled"],
        Field(description="failing: its last POST failed; disabled: failing for days"),
    ]
    failing_since: Annotated[Time | None, Field(description="since when every POST failed")]
    disabled_at: Annotated[Time | None, Field(description="when it was disabled")]
    disabled_reason: Annotated[str | None, Field(description="why, with the last error")]
    waiting: Annotated[int, Field(description="events waiting to be delivered")]
    failed: Annotated[int, Field(description="events that could not be delivered (kept days)")]


class AddedWebhookView(View):
    """A webhook just added, and its secret: shown this once, never again."""

    webhook: Annotated[WebhookView, Field(description="the webhook, as `webhooks list` shows it")]
    secret: Annotated[str, Field(description="signs every POST; nothing shows it again")]


class DeliveryView(View):
    """One event for the webhook, and how its delivery went."""

    event_id: Annotated[str, Field(description="the event's id (in Stickerq-Event-Id or the body)")]
    type: Annotated[str, Field(description="campaign.completed, message.status, ...")]
    campaign_id: Annotated[int | None, Field(description="its campaign; null for a pause's")]
    state: Annotated[Literal["waiting", "delivered", "failed"], Field(description="so far")]
    attempts: Annotated[int, Field(description="POSTs made")]
    created_at: Annotated[Time, Field(description="when it happened")]
    next_attempt_at: Annotated[Time | None, Field(description="a waiting event's next POST")]
    delivered_at: Annotated[Time | None, Field(description="when a receiver took it")]
    failed_at: Annotated[Time | None, Field(description="when it was given up")]
    last_error: Annotated[str | None, Field(description="what went wrong last")]


class TestEventView(View):
    """A test event queued for one webhook."""

    event_id: Annotated[str, Field(description="the test event's id")]
