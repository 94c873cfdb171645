"""/windows: the window ledger (as `stickerq window import|show|stats`)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Scope, needs
from stickerq.api.common import NO_NUL, Actor, AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import every_account
from stickerq.errors import StickerqError
from stickerq.masking import numbers_shown
from stickerq.producer.views.windows import (
    BadCellView,
    CustomerWindowsView,
    WindowImportView,
    WindowStatsView,
)
from stickerq.producer.window_csv import WindowImportError
from stickerq.producer.window_import import import_windows
from stickerq.producer.window_views import show_windows, window_stats
from stickerq.settings import Settings

router = APIRouter(
    prefix="/windows",
    tags=["windows"],
    # the ledger is kept per business number, of every account at once
    dependencies=[needs(Scope.READ), Depends(every_account)],
    responses=problem_responses(401, 403, 422),
)

From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=40,
        pattern=NO_NUL,
        description="only this business number, E.164 (default: every one)",
    ),
]
Number = Annotated[
    str, Path(max_length=40, pattern=NO_NUL, description="the customer's number, E.164")
]
ShowNumbers = Annotated[
    bool, Query(description="the customer's number in full (masked by default)")
]


def _refused(exc: StickerqError) -> Problem:
    return Problem(422, "invalid_window_query", "the window query is not valid", str(exc))


@router.get("/stats", response_model=WindowStatsView)
def stats(settings: AppSettings, sender: From = None) -> Any:
    """As `stickerq window stats --json`: customers in their window now, and those whose
    window closes within the hour, per business number."""
    try:
        result = window_stats(settings, sender=sender)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(WindowStatsView.of_result(result))


@router.get("/{number}", response_model=CustomerWindowsView)
def show(
    number: Number, settings: AppSettings, sender: From = None, show_numbers: ShowNumbers = False
) -> Any:
    """As `stickerq window show --json`: the customer's windows, latest message first (`[]`:
    the ledger knows of no message from them)."""
    try:
        result = show_windows(settings, number, sender=sender)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(CustomerWindowsView.of_result(result, numbers_shown(show_numbers)))


@router.post(
    "/import",
    response_model=WindowImportView,
    dependencies=[needs(Scope.OPERATE)],
    responses=problem_responses(403),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_(request: Request, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq window import`: a CSV body (from, wanumber, created_at) of any size,
    streamed to disk, then checked and stored whole; a bad row stores nothing (422
    `invalid_window_import`, its cells in `invalid` with line and column)."""
    with tempfile.TemporaryDirectory(prefix="stickerq-windows-") as folder:
        path = FilePath(folder) / "windows.csv"
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        return await run_in_threadpool(_import, settings, path, actor)


def _import(settings: Settings, path: FilePath, actor: str) -> Any:
    try:
        result = import_windows(settings, path, actor=actor)
    except WindowImportError as exc:
        invalid = [BadCellView.of(cell).model_dump() for cell in exc.problems]
        raise Problem(
            422,
            "invalid_window_import",
            "the CSV cannot be imported: nothing was stored",
            str(exc).replace(str(path), "the CSV body"),
            bad_rows=exc.bad_rows,
            invalid=invalid,
        ) from None
    return json_answer(WindowImportView.of(result))
