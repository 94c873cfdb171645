"""The JSON of `failures`, `messages show` and `requeue`. Recipients are personal data: the
CLI gives each view the number masked (`+91******5678`) unless --show-numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field

from stickerq.producer.views.base import Batches, CampaignId, Time, View
from stickerq.producer.views.sending import PauseView
from stickerq.states import CampaignStatus, MessageStatus

if TYPE_CHECKING:
    from stickerq.producer.failures import MessageHistory

Recipient = Annotated[str, Field(description="E.164, masked unless --show-numbers")]
Code = Annotated[str | None, Field(description="the last error code, Kaleyra's or Meta's")]
HttpStatus = Annotated[int | None, Field(description="HTTP status of the last answer")]
Ref = Annotated[str | None, Field(description="as sent to Kaleyra (none: null)")]
Status = Annotated[MessageStatus, Field(description="the message's status")]
MessageId = Annotated[str | None, Field(description="Kaleyra's id, once it accepted it")]
StoredAt = Annotated[Time, Field(description="stored")]
FailureStatus = Annotated[
    MessageStatus, Field(description="`parked`, `failed`, `unknown` or `expired`")
]


class FailureFiltersView(View):
    """The filters given; null: any."""

    campaign_id: Annotated[int | None, Field(description="--campaign")]
    status: Annotated[MessageStatus | None, Field(description="--status; null: all four")]
    code: Annotated[str | None, Field(description="--code")]
    since: Annotated[Time | None, Field(description="--since, as a moment in UTC")]


class FailureCountView(View):
    status: FailureStatus
    code: Code
    count: Annotated[int, Field(description="messages with that status and code")]


class FailureRowView(View):
    """One message that did not go out."""

    campaign_id: CampaignId
    recipient: Recipient
    status: FailureStatus
    code: Code
    http_status: HttpStatus
    message: Annotated[str | None, Field(description="Kaleyra's (or our) words; null if unknown")]
    why_unknown: Annotated[
        str | None, Field(description="for `unknown`: why we cannot tell whether it went out")
    ]
    attempts: Annotated[int, Field(description="API requests made for it")]
    last_attempt_at: Annotated[Time | None, Field(description="its latest request")]


class FailuresView(View):
    """Parked, failed, unknown and expired messages: counts by status and code, then the messages.
    `rows` is streamed, so it stays the last key."""

    filters: Annotated[FailureFiltersView, Field(description="what was asked for")]
    summary: Annotated[
        list[FailureCountView],
        Field(
            description="counts by status (parked, failed, unknown, expired), then biggest first"
        ),
    ]
    total: Annotated[int, Field(description="messages matching the filters")]
    truncated: Annotated[bool, Field(description="rows lists fewer than total (--limit)")]
    rows: Annotated[list[FailureRowView], Field(description="the messages, oldest first")]


class HistoryAttemptView(View):
    number: Annotated[int, Field(description="1 for the first request, then 2, ...")]
    started_at: Annotated[Time, Field(description="when the request went out")]
    http_status: HttpStatus
    code: Annotated[str | None, Field(description="Kaleyra's code in the answer")]
    action: Annotated[str, Field(description="what the worker did with it (retry, park...)")]
    latency_ms: Annotated[float | None, Field(description="request to answer, milliseconds")]
    detail: Annotated[str | None, Field(description="Kaleyra's (or our) words")]


class MessageHistoryView(View):
    """One recipient of one campaign, from its creation to its last callback."""

    campaign_id: CampaignId
    campaign_name: Annotated[str, Field(description="the campaign's name")]
    recipient: Recipient
    status: Status
    message_id: MessageId
    ref: Ref
    ref1: Ref
    ref2: Ref
    last_error_code: Code
    last_error_detail: Annotated[str | None, Field(description="the last error's words")]
    created_at: StoredAt
    sent_at: Annotated[Time | None, Field(description="accepted by Kaleyra")]
    delivered_at: Annotated[Time | None, Field(description="the delivered callback")]
    read_at: Annotated[Time | None, Field(description="the read callback")]
    next_attempt_at: Annotated[Time | None, Field(description="a durable retry's due time")]
    attempts: Annotated[list[HistoryAttemptView], Field(description="every request, in order")]

    @classmethod
    def of_history(cls, history: MessageHistory, recipient: str) -> Self:
        ref, ref1, ref2 = history.refs
        return cls.of(history, recipient=recipient, ref=ref, ref1=ref1, ref2=ref2)


class HistoryView(View):
    """Every message to that recipient (one per campaign), or the one with that message_id."""

    messages: Annotated[list[MessageHistoryView], Field(description="oldest campaign first")]


class RequeueView(View):
    """What a requeue moved back to pending and dispatched (or, in a dry run, would)."""

    campaign_id: CampaignId
    status: FailureStatus
    code: Annotated[str | None, Field(description="--code; null: any")]
    dry_run: Annotated[bool, Field(description="--dry-run: counted, nothing changed")]
    requeued: Annotated[int, Field(description="messages moved to pending (or that would be)")]
    batches: Batches
    pauses_lifted: Annotated[int, Field(description="pauses --resume lifted first")]
    pauses: Annotated[list[PauseView], Field(description="the pauses in force when it began")]
    campaign_status: Annotated[
        CampaignStatus | Literal[""], Field(description="the campaign's status after it")
    ]
