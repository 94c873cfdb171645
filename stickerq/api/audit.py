"""/audit: who changed what, newest first (as `stickerq audit --json`); admin keys only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Scope, require_scope
from stickerq.api.common import NO_NUL, AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.errors import StickerqError
from stickerq.masking import numbers_shown
from stickerq.producer.audit_log import DEFAULT_LIMIT, DEFAULT_SINCE, MAX_LIMIT, read_audit
from stickerq.producer.views.audit import AuditPageView

router = APIRouter(
    prefix="/audit",
    tags=["audit"],
    dependencies=[Depends(require_scope(Scope.ADMIN))],
    responses=problem_responses(401, 403),
)


@router.get("", response_model=AuditPageView, responses=problem_responses(422))
async def audit_log(
    settings: AppSettings,
    since: Annotated[
        str,
        Query(
            max_length=64,
            pattern=NO_NUL,
            description="a duration back from now (`24h`, `7d`) or an ISO time with its zone",
        ),
    ] = DEFAULT_SINCE,
    actor: Annotated[
        str | None, Query(max_length=255, pattern=NO_NUL, description="only this actor's")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    show_numbers: Annotated[bool, Query(description="phone numbers in full")] = False,
) -> Any:
    """As `stickerq audit --json`: changes made by people and API keys since `since`, newest
    first; `more` says older ones matched past `limit`. Needs an admin key (403 otherwise)."""
    try:
        page = await run_in_threadpool(read_audit, settings, since=since, actor=actor, limit=limit)
    except StickerqError as exc:
        raise Problem(422, "invalid_request", "the request is not valid", str(exc)) from None
    return json_answer(AuditPageView.of_page(page, numbers_shown(show_numbers)))
