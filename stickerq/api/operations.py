"""An operator's actions: requeue failures, list the pauses in force, lift one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Scope, needs
from stickerq.api.common import BIGINT_MAX, NO_NUL, Actor, AppSettings, json_answer, problem_of
from stickerq.api.problems import problem_responses
from stickerq.api.reach import Reach, within
from stickerq.errors import StickerqError
from stickerq.producer.operations import list_active_pauses, resume_sending
from stickerq.producer.reach import check_reach
from stickerq.producer.requeue import requeue
from stickerq.producer.views.failures import RequeueView
from stickerq.producer.views.messages import ResumeView
from stickerq.producer.views.sending import PauseView
from stickerq.settings import Settings

router = APIRouter(
    tags=["operations"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 403),
)
OPERATE = [needs(Scope.OPERATE)]
CHANGES = problem_responses(400, 403, 409, 422, 503)


class RequeueBody(BaseModel):
    """What `stickerq requeue` takes."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: Annotated[int, Field(ge=1, le=BIGINT_MAX)]
    status: Annotated[
        Literal["parked", "failed", "unknown", "expired"],
        Field(description="the messages to send again (`stickerq failures` lists them)"),
    ]
    code: Annotated[
        str | None, Field(max_length=32, pattern=NO_NUL, description="only this last error code")
    ] = None
    dry_run: Annotated[bool, Field(description="count, change nothing")] = False
    resume: Annotated[bool, Field(description="lift the account/sender pause first")] = False
    valid_for: Annotated[
        str | None,
        Field(max_length=32, pattern=NO_NUL, description="a new deadline from now: 6h, 90m"),
    ] = None
    valid_until: Annotated[
        datetime | None, Field(description="a new deadline, ISO 8601 with its offset")
    ] = None


class ResumeBody(BaseModel):
    """Exactly one of the two: the pause to lift."""

    model_config = ConfigDict(extra="forbid")

    account: Annotated[
        str | None, Field(max_length=64, pattern=NO_NUL, description="an account (SID)")
    ] = None
    sender: Annotated[
        str | None, Field(max_length=20, pattern=NO_NUL, description="a sender number")
    ] = None


@router.post(
    "/requeue",
    response_model=RequeueView,
    dependencies=OPERATE,
    responses=problem_responses(404) | CHANGES,
)
def requeue_messages(body: RequeueBody, settings: AppSettings, account: Reach, actor: Actor) -> Any:
    """As `stickerq requeue --json`: the campaign's parked, failed, unknown or expired messages
    (with that code) back to pending and dispatched. Refused (409) while a pause holds their
    account or sender, unless `resume` lifts it, and for expired messages (or past the
    campaign's deadline) unless given a new one (`valid_for` or `valid_until`). Requeueing
    `unknown` messages may send a second copy to those whose first request did arrive."""
    try:
        check_reach(settings, body.campaign_id, account)
        result = requeue(
            settings,
            body.campaign_id,
            body.status,
            code=body.code,
            dry_run=body.dry_run,
            resume=body.resume,
            valid_for=body.valid_for,
            valid_until=body.valid_until,
            actor=actor,
        )
    except StickerqError as exc:
        raise problem_of(exc) from None
    return json_answer(RequeueView.of(result))


@router.get("/pauses", response_model=list[PauseView])
async def pauses(settings: AppSettings, account: Reach) -> Any:
    """As `stickerq pauses --json`: the account and sender pauses in force (of its account
    only, for a key restricted to one)."""
    rows = await run_in_threadpool(list_active_pauses, settings)
    rows = [row for row in rows if account in (None, row["sid"])]
    return json_answer([PauseView.model_validate(row) for row in rows])


@router.post("/pauses/resume", response_model=ResumeView, dependencies=OPERATE, responses=CHANGES)
def lift_pause(body: ResumeBody, settings: AppSettings, account: Reach, actor: Actor) -> Any:
    """As `stickerq resume --account SID | --sender +91...`: lift the pause and dispatch the
    work that waited for it. A key restricted to an account lifts that account's pauses
    only (a sender's, on that account)."""
    return json_answer(_resume(settings, body, account, actor))


def _resume(settings: Settings, body: ResumeBody, reach: str | None, actor: str) -> ResumeView:
    if body.account is not None:
        within(reach, body.account, f"account {body.account}")
    try:
        lifted, batches = resume_sending(
            settings, actor=actor, account=body.account, sender=body.sender, within=reach
        )
    except StickerqError as exc:
        raise problem_of(exc) from None
    return ResumeView(pauses_lifted=lifted, batches=batches)
