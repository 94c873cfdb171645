"""/suppressions: the account's suppression list (as `stickerq suppress ...`)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Scope, needs
from stickerq.api.common import NO_NUL, Actor, AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import Reach, within
from stickerq.errors import StickerqError
from stickerq.masking import numbers_shown
from stickerq.producer import suppressions
from stickerq.producer.suppressions import DEFAULT_REASON, MAX_PAGE, REASON_MAX
from stickerq.producer.views.suppressions import (
    SuppressionPageView,
    SuppressionView,
    SuppressResultView,
    UnsuppressView,
)
from stickerq.settings import Settings

router = APIRouter(
    prefix="/suppressions",
    tags=["suppressions"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 403, 422),
)
CHANGES = problem_responses(403)
OPERATE = [needs(Scope.OPERATE)]
MAX_NUMBERS = 10_000  # per JSON request; a bigger list goes as a CSV to /suppressions/import

Account = Annotated[
    str | None,
    Query(max_length=64, pattern=NO_NUL, description="the SID (default: the configured one)"),
]
Number = Annotated[str, Path(max_length=40, pattern=NO_NUL, description="the number, E.164")]
ShowNumbers = Annotated[bool, Query(description="numbers in full (masked by default)")]


class SuppressBody(BaseModel):
    """What `stickerq suppress add` takes."""

    model_config = ConfigDict(extra="forbid")

    numbers: Annotated[
        list[Annotated[str, Field(max_length=40, pattern=NO_NUL)]],
        Field(min_length=1, max_length=MAX_NUMBERS, description="numbers, E.164"),
    ]
    reason: Annotated[
        str, Field(min_length=1, max_length=REASON_MAX, pattern=NO_NUL, description="why")
    ] = DEFAULT_REASON
    account: Annotated[
        str | None, Field(max_length=64, pattern=NO_NUL, description="the SID (default: ours)")
    ] = None


def _within(reach: str | None, account: str | None) -> str | None:
    """The list's account: for a key restricted to one, that one (another: 403)."""
    return within(reach, account, f"account {account}'s suppression list")


def _refused(exc: StickerqError) -> Problem:
    return Problem(422, "invalid_suppression", "the suppression request is not valid", str(exc))


@router.get("", response_model=SuppressionPageView)
def list_suppressions(
    settings: AppSettings,
    reach: Reach,
    account: Account = None,
    after: Annotated[
        str | None, Query(max_length=40, pattern=NO_NUL, description="next_after of the page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    show_numbers: ShowNumbers = False,
) -> Any:
    """As `stickerq suppress list --json`: the account's numbers in number order."""
    try:
        account = _within(reach, account)
        page = suppressions.list_numbers(settings, account=account, after=after, limit=limit)
    except StickerqError as exc:
        raise _refused(exc) from None
    show = numbers_shown(show_numbers)
    views = [SuppressionView.of(n, phone=show(n.phone)) for n in page.numbers]
    return json_answer(SuppressionPageView.of(page, suppressions=views))


@router.get("/{number}", response_model=SuppressionView, responses=problem_responses(404))
def show_suppression(
    number: Number, settings: AppSettings, reach: Reach, account: Account = None
) -> Any:
    """The number's entry (404 `not_suppressed`: it may get stickers)."""
    try:
        account = _within(reach, account)
        found = suppressions.find_number(settings, number, account=account)
    except StickerqError as exc:
        raise _refused(exc) from None
    if found is None:
        raise Problem(404, "not_suppressed", "the number is not on the suppression list")
    return json_answer(SuppressionView.of(found))


# 400: a body that is not JSON at all (FastAPI's answer before the body model is read)
@router.post(
    "",
    response_model=SuppressResultView,
    dependencies=OPERATE,
    responses=CHANGES | problem_responses(400),
)
def add_suppressions(body: SuppressBody, settings: AppSettings, reach: Reach, actor: Actor) -> Any:
    """As `stickerq suppress add`: one invalid number refuses them all (nothing stored)."""
    account = _within(reach, body.account)
    try:
        result = suppressions.add_numbers(
            settings, body.numbers, body.reason, actor=actor, account=account
        )
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(SuppressResultView.of(result))


@router.post(
    "/import",
    response_model=SuppressResultView,
    dependencies=OPERATE,
    responses=CHANGES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_suppressions(
    request: Request,
    settings: AppSettings,
    reach: Reach,
    actor: Actor,
    reason: Annotated[
        str, Query(min_length=1, max_length=REASON_MAX, pattern=NO_NUL)
    ] = DEFAULT_REASON,
    account: Account = None,
) -> Any:
    """As `stickerq suppress import`: a CSV body (a phone column) of any size, streamed to
    disk then onto the list; invalid rows are skipped and listed with their line."""
    account = _within(reach, account)
    with tempfile.TemporaryDirectory(prefix="stickerq-suppress-") as folder:
        path = FilePath(folder) / "suppressions.csv"
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        return await run_in_threadpool(_import, settings, path, reason, account, actor)


def _import(
    settings: Settings, path: FilePath, reason: str, account: str | None, actor: str
) -> Any:
    try:
        result = suppressions.import_file(settings, path, reason, actor=actor, account=account)
    except StickerqError as exc:
        problem = _refused(exc)
        problem.detail = problem.detail.replace(str(path), "the CSV body")
        raise problem from None
    return json_answer(SuppressResultView.of(result))


@router.delete("/{number}", response_model=UnsuppressView, dependencies=OPERATE, responses=CHANGES)
def remove_suppression(
    number: Number, settings: AppSettings, reach: Reach, actor: Actor, account: Account = None
) -> Any:
    """As `stickerq suppress remove`: the number may get stickers again."""
    account = _within(reach, account)
    try:
        result = suppressions.remove_numbers(settings, [number], actor=actor, account=account)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(UnsuppressView.of(result))
