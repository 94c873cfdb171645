"""/campaigns: create (JSON or a CSV upload, with Idempotency-Key), list, show, pause,
resume, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Scope, actor_of, needs
from stickerq.api.common import (
    BIGINT_MAX,
    Actor,
    AppSettings,
    CampaignId,
    json_answer,
    problem_of,
)
from stickerq.api.own_process import OwnProcess, store
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import Reach, campaign_in_reach, within
from stickerq.api.uploads import CampaignBody, form_schema, json_body, uploaded
from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.producer import lifecycle
from stickerq.producer.idempotency import MAX_KEY_LENGTH
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.views.campaigns import CampaignDetailsView, CampaignView, LifecycleView
from stickerq.producer.window_audience import audience_size
from stickerq.settings import Settings
from stickerq.states import CampaignStatus


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.own_process.close()  # made by create_app, its child started at first use


router = APIRouter(
    prefix="/campaigns",
    tags=["campaigns"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 403, 422, 503),
    lifespan=_lifespan,
)

PAGE_LIMIT = 50
CHANGES = problem_responses(400, 403, 404, 409)
OPERATE_ONE = [needs(Scope.OPERATE), Depends(campaign_in_reach)]

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": CampaignBody.model_json_schema(),
            "example": {
                "sticker_id": "798123456789012",
                "recipients": ["+919812345678", "+919812345679"],
                "ref": "customer1",
            },
        },
        "multipart/form-data": {"schema": form_schema()},
    },
}


def _keyed_409() -> dict[int | str, dict[str, Any]]:
    """The 409s of POST /campaigns, with the Retry-After of `idempotency_key_in_use`."""
    responses = problem_responses(409)
    responses[409] = {
        **responses[409],
        "description": "idempotency_conflict: the key was used for another request; "
        "idempotency_key_in_use: its first request is still being stored, retry after "
        "Retry-After seconds",
        "headers": {
            "Retry-After": {
                "description": "with idempotency_key_in_use: seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        },
    }
    return responses


class CampaignPage(BaseModel):
    campaigns: list[CampaignView]
    limit: int
    offset: int


def details(settings: Settings, campaign_id: int) -> CampaignDetailsView:
    """`campaigns show --json`; a 404 problem for an unknown id."""
    try:
        with open_sessions(settings.database_url) as sessions:
            return CampaignDetailsView.of_details(lifecycle.show_campaign(sessions, campaign_id))
    except StickerqError as exc:
        raise problem_of(exc) from None


@router.post(
    "",
    status_code=201,
    response_model=CampaignDetailsView,
    dependencies=[needs(Scope.SEND)],
    openapi_extra={"requestBody": _BODY},
    responses={
        200: {
            "model": CampaignDetailsView,
            "description": "a retry of an Idempotency-Key: the campaign it first made",
        },
        **problem_responses(400, 403, 415),
        **_keyed_409(),
    },
)
async def create_campaign(
    request: Request,
    settings: AppSettings,
    account: Reach,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[^\x00]*$")
    ] = None,
) -> Any:
    """Validate, store and dispatch (or schedule) a campaign: a JSON body, or a multipart
    form with the recipients as a CSV file (`recipients`) and the other fields beside it.
    A retried Idempotency-Key answers 200 with the campaign its first request made, or at
    once a 409 `idempotency_key_in_use` with Retry-After while that request is still being
    stored (no thread waits for it)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with uploaded(request) as (fields, path, filename):
            campaign = _of_account(fields.request(to_file=path), account)
            large = request.app.state.own_process.wants_upload(path.stat().st_size)
            try:
                return await _create(request, campaign, fields.timing(), idempotency_key, large)
            except Problem as problem:  # the client's name for its file, not our temporary path
                problem.detail = problem.detail.replace(str(path), filename)
                raise
    if kind != "application/json" and not kind.endswith("+json"):
        raise Problem(
            415,
            "unsupported_media_type",
            "not a content type this route takes",
            "send application/json, or multipart/form-data with the CSV as `recipients`",
        )
    body = await run_in_threadpool(json_body, await request.body())  # off the event loop
    if body.recipient_count() > settings.api_max_json_recipients:
        raise Problem(
            422,
            "too_many_recipients",
            "too many recipients for a JSON body",
            f"a JSON campaign carries at most {settings.api_max_json_recipients:,} recipients "
            "(STICKERQ_API_MAX_JSON_RECIPIENTS); upload them as a CSV file instead: "
            "multipart/form-data with the file in the field `recipients`",
        )
    campaign = _of_account(body.request(to=body.joined()), account)
    count = await _audience_count(settings, campaign) if body.to_window else body.recipient_count()
    large = request.app.state.own_process.wants_recipients(count)
    return await _create(request, campaign, body.timing(), idempotency_key, large)


def _of_account(campaign: CampaignRequest, account: str | None) -> CampaignRequest:
    """A key restricted to an account makes campaigns of that account only: one naming no
    account is of the key's; naming another is refused (403) before anything is stored."""
    sid = within(account, campaign.account, f"account {campaign.account}")
    return campaign if sid == campaign.account else replace(campaign, account=sid)


async def _create(
    request: Request, campaign: CampaignRequest, timing: Timing, key: str | None, large: bool
) -> Any:
    """Store the campaign, a large one in the API's child process (api/own_process.py), and
    answer it as `campaigns show` does."""
    settings: Settings = request.app.state.settings
    actor = actor_of(request)
    if large:
        own: OwnProcess = request.app.state.own_process
        campaign_id, created = await own.store(campaign, timing, key, actor)
    else:
        campaign_id, created = await run_in_threadpool(
            _store, settings, campaign, timing, key, actor
        )
    answer = await run_in_threadpool(details, settings, campaign_id)
    return json_answer(answer, 201 if created else 200)


async def _audience_count(settings: Settings, campaign: CampaignRequest) -> int:
    """How many customers a `to_window` campaign would have (one range of the ledger's
    index): a large audience is stored in the child, as a large list is."""
    try:
        _, count = await run_in_threadpool(audience_size, settings, campaign)
    except StickerqError as exc:
        raise problem_of(exc) from None
    return count


def _store(
    settings: Settings, campaign: CampaignRequest, timing: Timing, key: str | None, actor: str
) -> tuple[int, bool]:
    try:
        return store(settings, campaign, timing, key, actor)
    except StickerqError as exc:
        raise problem_of(exc) from None


@router.get("", response_model=CampaignPage)
def list_campaigns(
    settings: AppSettings,
    account: Reach,
    status: CampaignStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_LIMIT,
    # bounded: the database takes a 64-bit OFFSET, and a larger one was a 500
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> Any:
    """Campaigns, newest first (with status=scheduled, in the order they will go); of its
    account only for a key restricted to one."""
    try:
        with open_sessions(settings.database_url) as sessions:
            rows = lifecycle.list_campaigns(
                sessions, status=status, limit=limit, offset=offset, sid=account
            )
    except StickerqError as exc:
        raise problem_of(exc) from None
    views = [CampaignView.of_summary(row) for row in rows]
    return json_answer(CampaignPage(campaigns=views, limit=limit, offset=offset))


@router.get(
    "/{campaign_id}",
    response_model=CampaignDetailsView,
    dependencies=[Depends(campaign_in_reach)],
    responses=problem_responses(404),
)
def show_campaign(campaign_id: CampaignId, settings: AppSettings) -> Any:
    """The campaign, its counts by status and code, its rate and ETA, the pause holding it."""
    return json_answer(details(settings, campaign_id))


def _act(settings: Settings, campaign_id: CampaignId, actor: str, action: Any, *args: Any) -> Any:
    try:
        result = action(settings, campaign_id, *args, actor=actor)
    except StickerqError as exc:
        raise problem_of(exc) from None
    return json_answer(LifecycleView.of(result))


class PauseBody(BaseModel):
    reason: str | None = None


@router.post(
    "/{campaign_id}/pause",
    response_model=LifecycleView,
    dependencies=OPERATE_ONE,
    responses=CHANGES,
)
def pause(
    campaign_id: CampaignId, settings: AppSettings, actor: Actor, body: PauseBody | None = None
) -> Any:
    """As `stickerq campaigns pause`: nothing new of it goes out."""
    reason = body.reason if body else None
    return _act(settings, campaign_id, actor, lifecycle.pause_campaign, reason)


@router.post(
    "/{campaign_id}/resume",
    response_model=LifecycleView,
    dependencies=OPERATE_ONE,
    responses=CHANGES,
)
def resume(campaign_id: CampaignId, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq campaigns resume`: dispatch what is left."""
    return _act(settings, campaign_id, actor, lifecycle.resume_campaign)


@router.post(
    "/{campaign_id}/cancel",
    response_model=LifecycleView,
    dependencies=OPERATE_ONE,
    responses=CHANGES,
)
def cancel(campaign_id: CampaignId, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq campaigns cancel --yes`: its unsent messages are cancelled."""
    return _act(settings, campaign_id, actor, lifecycle.cancel_campaign)
