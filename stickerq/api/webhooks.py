"""/webhooks: signed POSTs of events to URLs (as `stickerq webhooks ...`); admin scope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stickerq.accounts import UnknownAccount
from stickerq.api.auth import Scope, require_scope
from stickerq.api.common import BIGINT_MAX, NO_NUL, Actor, AppSettings
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import Reach, within
from stickerq.errors import StickerqError
from stickerq.producer import webhooks
from stickerq.producer.views.webhooks import (
    AddedWebhookView,
    DeliveryView,
    TestEventView,
    WebhookView,
)
from stickerq.producer.webhooks import SECRET_MAX, SECRET_MIN, URL_MAX, WebhookNotFound

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    dependencies=[Depends(require_scope(Scope.ADMIN))],
    responses=problem_responses(400, 401, 403, 422),
)
WebhookId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="the webhook's id")]
EventName = Literal[
    "campaign.completed",
    "campaign.paused",
    "pause.started",
    "pause.lifted",
    "message.failed",
    "message.status",
]


class WebhookBody(BaseModel):
    """What `stickerq webhooks add` takes."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=URL_MAX, pattern=NO_NUL)]
    events: Annotated[list[EventName], Field(min_length=1, max_length=6)]
    secret: Annotated[
        str | None,
        Field(
            min_length=SECRET_MIN,
            max_length=SECRET_MAX,
            pattern=NO_NUL,
            description="the signing secret; default: one is made and answered once",
        ),
    ] = None
    account: Annotated[
        str | None, Field(max_length=64, pattern=NO_NUL, description="only this SID's events")
    ] = None


def webhook_in_reach(webhook_id: WebhookId, settings: AppSettings, account: Reach) -> None:
    """404, as for no webhook, when a key restricted to an account asks of a webhook that
    is not of that account (one limited to none gets every account's events)."""
    try:
        if account is not None and webhooks.webhook_account(settings, webhook_id) != account:
            raise WebhookNotFound(f"no webhook {webhook_id}: `stickerq webhooks list` shows them")
    except StickerqError as exc:
        raise _refused(exc) from None


ONE_IN_REACH = [Depends(webhook_in_reach)]


def _refused(exc: StickerqError) -> Problem:
    if isinstance(exc, WebhookNotFound):
        return Problem(404, "webhook_not_found", "no such webhook", str(exc))
    if isinstance(exc, UnknownAccount):
        return Problem(422, "unknown_account", "no such Kaleyra account here", str(exc))
    return Problem(422, "invalid_webhook", "the webhook is not valid", str(exc))


@router.post("", response_model=AddedWebhookView, status_code=201)
def add_webhook(body: WebhookBody, settings: AppSettings, actor: Actor, reach: Reach) -> Any:
    """As `stickerq webhooks add`: the answer holds the secret, this once. A key restricted
    to an account adds webhooks of that account's events only."""
    account = within(reach, body.account, f"account {body.account}")
    try:
        added = webhooks.add_webhook(
            settings, body.url, body.events, actor, secret=body.secret, account=account
        )
    except StickerqError as exc:
        raise _refused(exc) from None
    return AddedWebhookView(webhook=WebhookView(**added.webhook), secret=added.secret)


@router.get("", response_model=list[WebhookView])
async def list_webhooks(settings: AppSettings, reach: Reach) -> Any:
    """As `stickerq webhooks list`: disabled ones (failing for days) say since when, and why;
    a key restricted to an account sees that account's only."""
    rows = await run_in_threadpool(webhooks.list_webhooks, settings)
    rows = [row for row in rows if reach in (None, row["account"])]
    return [WebhookView(**row) for row in rows]


@router.delete(
    "/{webhook_id}",
    response_model=WebhookView,
    dependencies=ONE_IN_REACH,
    responses=problem_responses(404),
)
def remove_webhook(webhook_id: WebhookId, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq webhooks remove`: the webhook and the events waiting for it go."""
    try:
        return WebhookView(**webhooks.remove_webhook(settings, webhook_id, actor))
    except StickerqError as exc:
        raise _refused(exc) from None


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryView],
    dependencies=ONE_IN_REACH,
    responses=problem_responses(404),
)
def webhook_deliveries(
    webhook_id: WebhookId,
    settings: AppSettings,
    failed: Annotated[bool, Query(description="only the failed events")] = False,
    limit: Annotated[int, Query(ge=1, le=webhooks.DELIVERIES_MAX)] = 100,
) -> Any:
    """As `stickerq webhooks deliveries`: the webhook's events, newest first."""
    try:
        rows = webhooks.deliveries(settings, webhook_id, failed_only=failed, limit=limit)
    except StickerqError as exc:
        raise _refused(exc) from None
    return [DeliveryView(**row) for row in rows]


@router.post(
    "/{webhook_id}/test",
    response_model=TestEventView,
    status_code=202,
    dependencies=ONE_IN_REACH,
    responses=problem_responses(404),
)
def test_webhook(webhook_id: WebhookId, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq webhooks test`: a webhook.test event queued for this webhook only."""
    try:
        return TestEventView(event_id=webhooks.queue_test_event(settings, webhook_id, actor))
    except StickerqError as exc:
        raise _refused(exc) from None
