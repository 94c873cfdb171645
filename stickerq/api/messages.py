"""A campaign's messages, a page at a time, and one message's whole history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from stickerq.api.auth import Scope, needs
from stickerq.api.common import NO_NUL, AppSettings, CampaignId, json_answer, problem_of
from stickerq.api.problems import problem_responses
from stickerq.api.reach import Reach, campaign_in_reach
from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.masking import numbers_shown
from stickerq.producer.failures import message_history_by_id
from stickerq.producer.messages import MAX_PAGE, message_page
from stickerq.producer.views.failures import HistoryView, MessageHistoryView
from stickerq.producer.views.messages import MessagePageView
from stickerq.states import MessageStatus

router = APIRouter(
    tags=["messages"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 403, 404, 422),
)

ShowNumbers = Annotated[
    bool, Query(description="recipients in full (masked by default, as the CLI shows them)")
]


@router.get(
    "/campaigns/{campaign_id}/messages",
    response_model=MessagePageView,
    dependencies=[Depends(campaign_in_reach)],
)
def campaign_messages(
    campaign_id: CampaignId,
    settings: AppSettings,
    status: MessageStatus | None = None,
    code: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=100, pattern=NO_NUL, description="next_cursor of the page before"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    show_numbers: ShowNumbers = False,
) -> Any:
    """The campaign's messages in the order they were stored, filtered by status and last
    error code; `next_cursor` fetches the next page."""
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            page = message_page(
                session, campaign_id, status=status, code=code, cursor=cursor, limit=limit
            )
    except StickerqError as exc:
        raise problem_of(exc) from None
    return json_answer(MessagePageView.of_page(page, numbers_shown(show_numbers)))


@router.get("/messages/{message_id}", response_model=HistoryView)
def message(
    message_id: Annotated[str, Path(max_length=128, pattern=NO_NUL)],
    settings: AppSettings,
    account: Reach,
    show_numbers: ShowNumbers = False,
) -> Any:
    """The message with that Kaleyra message_id and every attempt made for it (as
    `stickerq messages show MESSAGE_ID --json`)."""
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            histories = message_history_by_id(session, message_id, sid=account)
    except StickerqError as exc:
        raise problem_of(exc) from None
    show = numbers_shown(show_numbers)
    views = [MessageHistoryView.of_history(h, show(h.recipient)) for h in histories]
    return json_answer(HistoryView(messages=views))
