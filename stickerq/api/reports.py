"""A campaign's report (as `stickerq report --json`) and its CSV export, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from stickerq.api.auth import Scope, needs
from stickerq.api.common import AppSettings, CampaignId, json_answer, problem_of
from stickerq.api.problems import problem_responses
from stickerq.api.reach import campaign_in_reach
from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.export import export_chunks
from stickerq.producer.reports import DEFAULT_TOP, RefColumn, campaign_report
from stickerq.producer.views.reports import ReportView

router = APIRouter(
    prefix="/campaigns/{campaign_id}",
    tags=["reports"],
    dependencies=[needs(Scope.READ), Depends(campaign_in_reach)],
    responses=problem_responses(401, 403, 404, 410, 422),
)


@router.get("/report", response_model=ReportView)
def report(
    campaign_id: CampaignId,
    settings: AppSettings,
    by: Annotated[RefColumn | None, Query(description="break down by ref, ref1 or ref2")] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="groups listed (rest: other)")] = (
        DEFAULT_TOP
    ),
) -> Any:
    """Totals by status and code, success rate, pace (rate, ETA), duration, delivered/read."""
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            result = campaign_report(session, campaign_id, by, top=top)
    except StickerqError as exc:
        raise problem_of(exc) from None
    return json_answer(ReportView.of_report(result))


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"description": "docs/export.md", "content": {"text/csv": {}}}},
)
def export(campaign_id: CampaignId, settings: AppSettings) -> StreamingResponse:
    """One CSV row per recipient (as `stickerq export`; docs/export.md): streamed from the
    database in constant memory, every cell safe to open in a spreadsheet."""
    stack = ExitStack()
    try:
        sessions = stack.enter_context(open_sessions(settings.database_url))
        chunks = export_chunks(stack.enter_context(sessions()), campaign_id)
    except StickerqError as exc:
        stack.close()
        raise problem_of(exc) from None
    except BaseException:
        stack.close()
        raise
    return StreamingResponse(
        _closing(chunks, stack),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


def _closing(chunks: Iterator[str], stack: ExitStack) -> Iterator[str]:
    """The chunks; the session closes when they end or the client goes away."""
    with stack:
        yield from chunks
