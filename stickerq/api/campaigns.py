"""/campaigns: create (with Idempotency-Key), list, show, pause, resume, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from stickerq.api.auth import require_token
from stickerq.api.problems import Problem
from stickerq.db import open_sessions
from stickerq.errors import ServiceUnavailable, StickerqError
from stickerq.producer import lifecycle
from stickerq.producer.idempotency import IdempotencyConflict, send_campaign_once
from stickerq.producer.progress import CampaignNotFound
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.send import send_campaign
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.views.campaigns import CampaignDetailsView, CampaignView, LifecycleView
from stickerq.settings import Settings

router = APIRouter(prefix="/campaigns", tags=["campaigns"], dependencies=[Depends(require_token)])

PAGE_LIMIT = 50


class CampaignBody(BaseModel):
    """What `stickerq send` takes, as JSON."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored

    sticker_id: str | None = None
    sticker_link: str | None = None
    recipients: list[str] | str = Field(description="E.164 numbers: a list or comma-separated")
    sender: str | None = None
    name: str | None = None
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str = "api"
    skip_invalid: bool = False
    scheduled_at: datetime | str | None = Field(default=None, description="like send --at")
    tz: str | None = None
    every: str | None = Field(default=None, description="a cron expression read in tz")
    now_if_past: bool = False

    def request(self) -> CampaignRequest:
        to = self.recipients if isinstance(self.recipients, str) else ",".join(self.recipients)
        fields = self.model_dump(exclude={"recipients", "scheduled_at", "tz", "every"})
        fields.pop("now_if_past")
        return CampaignRequest(to=to, **fields)

    def timing(self) -> Timing:
        return Timing(
            at=self.scheduled_at, tz=self.tz, every=self.every, now_if_past=self.now_if_past
        )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _json(content: BaseModel | dict[str, Any], status: int = 200) -> JSONResponse:
    """The same JSON as the CLI's --json (producer.views)."""
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
    return JSONResponse(content, status_code=status)


def _details(settings: Settings, campaign_id: int) -> CampaignDetailsView:
    try:
        with open_sessions(settings.database_url) as sessions:
            return CampaignDetailsView.of_details(lifecycle.show_campaign(sessions, campaign_id))
    except CampaignNotFound:
        raise Problem(404, "campaign_not_found", f"no campaign {campaign_id}") from None


def _refused(exc: StickerqError) -> Problem:
    if isinstance(exc, RecipientsRejected):
        invalid = [
            {"line": row.line, "value": row.value, "reason": row.reason}
            for row in exc.report.invalid
        ]
        return Problem(
            422,
            "invalid_recipients",
            "recipients refused: nothing was stored",
            str(exc),
            invalid_count=exc.report.invalid_count,
            invalid=invalid,
        )
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, "idempotency_conflict", "idempotency key conflict", str(exc))
    if isinstance(exc, ServiceUnavailable):
        return Problem(503, "service_unavailable", "a service stickerq needs is down")
    if isinstance(exc, lifecycle.CampaignStateError):
        return Problem(409, "campaign_state", "not allowed in this state", str(exc))
    return Problem(422, "invalid_campaign", "the campaign is not valid", str(exc))


@router.post("", status_code=201)
def create_campaign(
    body: CampaignBody,
    request: Request,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Validate, store and dispatch (or schedule) a campaign; 200 for a retried key."""
    settings = _settings(request)
    try:
        if idempotency_key is None:
            result, _ = send_campaign(settings, body.request(), body.timing())
            campaign_id, created = result.campaign_id, True
        else:
            once = send_campaign_once(settings, idempotency_key, body.request(), body.timing())
            campaign_id, created = once.campaign_id, once.created
    except StickerqError as exc:
        raise _refused(exc) from None
    return _json(_details(settings, campaign_id), 201 if created else 200)


@router.get("")
def list_campaigns(
    request: Request,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    settings = _settings(request)
    try:
        with open_sessions(settings.database_url) as sessions:
            rows = lifecycle.list_campaigns(sessions, status=status, limit=limit, offset=offset)
    except lifecycle.UnknownCampaignStatus as exc:
        raise Problem(422, "unknown_status", "unknown campaign status", str(exc)) from None
    views = [CampaignView.of_summary(r).model_dump(mode="json") for r in rows]
    return _json({"campaigns": views, "limit": limit, "offset": offset})


@router.get("/{campaign_id}")
def show_campaign(campaign_id: int, request: Request) -> JSONResponse:
    return _json(_details(_settings(request), campaign_id))


def _act(request: Request, campaign_id: int, action: Any, *args: Any) -> JSONResponse:
    settings = _settings(request)
    try:
        result = action(settings, campaign_id, *args)
    except CampaignNotFound:
        raise Problem(404, "campaign_not_found", f"no campaign {campaign_id}") from None
    except StickerqError as exc:
        raise _refused(exc) from None
    return _json(LifecycleView.of(result))


class PauseBody(BaseModel):
    reason: str | None = None


@router.post("/{campaign_id}/pause")
def pause(campaign_id: int, request: Request, body: PauseBody | None = None) -> JSONResponse:
    return _act(request, campaign_id, lifecycle.pause_campaign, body.reason if body else None)


@router.post("/{campaign_id}/resume")
def resume(campaign_id: int, request: Request) -> JSONResponse:
    return _act(request, campaign_id, lifecycle.resume_campaign)


@router.post("/{campaign_id}/cancel")
def cancel(campaign_id: int, request: Request) -> JSONResponse:
    return _act(request, campaign_id, lifecycle.cancel_campaign)
