"""The JSON of a page of a campaign's messages (`GET /campaigns/{id}/messages`) and of a
lifted pause (`POST /pauses/resume`): outputs of the HTTP API, for which no command prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field

from stickerq.producer.views.base import Batches, CampaignId, Time, View
from stickerq.producer.views.failures import (
    Code,
    HttpStatus,
    MessageId,
    Recipient,
    Ref,
    Status,
    StoredAt,
)
from stickerq.states import MessageStatus

if TYPE_CHECKING:
    from stickerq.producer.messages import MessagePage, MessageRow


class MessageRowView(View):
    """One message of a campaign."""

    message_pk: Annotated[int, Field(description="our primary key (logs carry it)")]
    recipient: Recipient
    status: Status
    message_id: MessageId
    ref: Ref
    ref1: Ref
    ref2: Ref
    code: Code
    http_status: HttpStatus
    attempts: Annotated[int, Field(description="API requests made for it")]
    created_at: StoredAt
    last_attempt_at: Annotated[Time | None, Field(description="its latest request")]
    sent_at: Annotated[Time | None, Field(description="accepted by Kaleyra")]
    delivered_at: Annotated[Time | None, Field(description="the delivered callback")]
    read_at: Annotated[Time | None, Field(description="the read callback")]
    next_attempt_at: Annotated[Time | None, Field(description="a durable retry's due time")]


class MessagePageView(View):
    """A page of a campaign's messages in the order they were stored; `next_cursor` fetches
    the next page (rows stored meanwhile never shift one)."""

    campaign_id: CampaignId
    status: Annotated[MessageStatus | None, Field(description="the status asked for; null: any")]
    code: Annotated[str | None, Field(description="the error code asked for; null: any")]
    messages: Annotated[list[MessageRowView], Field(description="at most `limit` messages")]
    next_cursor: Annotated[
        str | None, Field(description="pass as `cursor` for the next page; null: the last page")
    ]

    @classmethod
    def of_page(cls, page: MessagePage, recipient: Callable[[str], str]) -> Self:
        return cls.of(page, messages=[_row(row, recipient) for row in page.rows])


def _row(row: MessageRow, recipient: Callable[[str], str]) -> MessageRowView:
    return MessageRowView.of(row, recipient=recipient(row.recipient))


class ResumeView(View):
    """What lifting an account or sender pause did."""

    pauses_lifted: Annotated[int, Field(description="pauses lifted (0: none was in force)")]
    batches: Batches
