"""The JSON of `send`, `status` and `pauses`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field

from stickerq.producer.views.base import (
    Attempts,
    Batches,
    ByCode,
    CampaignId,
    Recipients,
    Time,
    View,
    Warnings,
    Zone,
)
from stickerq.producer.window import ADVICE
from stickerq.states import CampaignStatus, MessageStatus, PauseScope

if TYPE_CHECKING:
    from stickerq.producer.api import EnqueueResult
    from stickerq.producer.progress import CampaignProgress
    from stickerq.producer.schedule import ScheduledCampaign


class PauseView(View):
    """An account or sender pause in force: nothing of that account (or sender) goes out
    until `stickerq resume` lifts it."""

    scope: Annotated[PauseScope, Field(description="`account`: every sender of the SID")]
    sid: Annotated[str, Field(description="the Kaleyra account (SID)")]
    sender: Annotated[str, Field(description="the paused business number; empty for account")]
    code: Annotated[str, Field(description="the error code that paused it (E110, WA401, ...)")]
    since: Annotated[Time, Field(description="when it was paused")]
    reason: Annotated[str, Field(description="Kaleyra's (or our) words for why")]


class InvalidRowView(View):
    line: Annotated[int, Field(description="line of the file (or place in --to), from 1")]
    value: Annotated[str, Field(description="the value, cut to 60 characters")]
    reason: Annotated[str, Field(description="why no message can go to it")]


class EnqueueView(View):
    """A campaign validated, stored and dispatched."""

    campaign_id: CampaignId
    recipients: Annotated[int, Field(description="recipients stored (valid, without repeats)")]
    duplicates: Annotated[int, Field(description="repeated numbers dropped")]
    invalid_count: Annotated[int, Field(description="invalid rows skipped (--skip-invalid)")]
    suppressed: Annotated[
        int, Field(description="numbers dropped: on the account's suppression list")
    ]
    invalid: Annotated[list[InvalidRowView], Field(description="the first invalid rows")]
    warnings: Warnings
    batches: Batches


class ScheduledView(EnqueueView):
    """A campaign stored to go later (--at), or the first run of a recurring one (--every):
    nothing is dispatched yet (`batches` is 0); beat queues it when its time comes."""

    status: Annotated[Literal[CampaignStatus.SCHEDULED], Field(description="`scheduled`")]
    scheduled_at_utc: Annotated[Time, Field(description="when it goes, in UTC")]
    scheduled_at_local: Annotated[Time, Field(description="the same moment in `timezone`")]
    timezone: Zone
    schedule_id: Annotated[int | None, Field(description="its recurring schedule (--every)")]
    every: Annotated[str | None, Field(description="the schedule's cron expression (--every)")]

    @classmethod
    def of_scheduled(cls, scheduled: ScheduledCampaign, **values: object) -> Self:
        when = scheduled.when
        return cls.of(
            scheduled.result,
            status=CampaignStatus.SCHEDULED,
            scheduled_at_utc=when.utc,
            scheduled_at_local=when.local,
            timezone=when.zone,
            schedule_id=scheduled.schedule_id,
            every=scheduled.cron,
            **values,
        )


class CampaignHeadView(View):
    campaign_id: CampaignId
    name: Annotated[str, Field(description="the campaign's name")]
    status: Annotated[CampaignStatus, Field(description="the campaign's status")]
    sender: Annotated[str, Field(description="the business number it goes from, E.164")]
    recipients: Recipients


class OutsideWindowView(View):
    """The messages outside the recipient's 24-hour window: came back 131047, or never sent
    (`--in-window`)."""

    messages: Annotated[
        int,
        Field(
            description="messages whose latest error is Meta's 131047 (re-engagement "
            "required), and those an `--in-window` campaign never sent (`outside_window`): "
            "a sticker is not a template, WhatsApp delivers it only within 24 hours of the "
            "recipient's last message"
        ),
    ]
    advice: Annotated[
        str | None, Field(description="what reaches them (a template message); null when none")
    ]

    @classmethod
    def of_count(cls, count: int) -> Self:
        return cls(messages=count, advice=ADVICE if count else None)


class MessageCountsView(View):
    """Where a campaign's messages stand, read from its counters (cheap to poll)."""

    by_status: Annotated[
        dict[MessageStatus, int], Field(description="messages by status; none: left out")
    ]
    by_code: ByCode
    retries_waiting: Annotated[int, Field(description="messages waiting for a durable retry")]
    attempts: Attempts
    retried: Annotated[int, Field(description="attempts beyond each message's first (WA500s)")]
    pause: Annotated[PauseView | None, Field(description="the pause holding its sender, if any")]
    paused_senders: Annotated[
        list[PauseView],
        Field(
            description="a campaign with per-row senders (a CSV's `from` column): the pauses "
            "of some of its numbers, whose messages wait while the others go on"
        ),
    ]
    settled: Annotated[bool, Field(description="every message is final: no more will go")]
    outside_window: Annotated[
        OutsideWindowView, Field(description="messages that came back 131047")
    ]

    @classmethod
    def of_progress(cls, progress: CampaignProgress) -> Self:
        return cls.of(
            progress,
            settled=progress.all_settled,
            outside_window=OutsideWindowView.of_count(progress.outside_window),
        )


class ProgressView(MessageCountsView, CampaignHeadView):
    """Where a campaign stands: its messages by status and code, and any pause holding it."""


class _Waited(View):
    progress: Annotated[ProgressView, Field(description="where the campaign stood at the end")]


class EnqueueWaitedView(_Waited, EnqueueView):
    """`send --wait`: the campaign stored, then where it stood once every message settled
    (exit 0) or a pause held the rest (exit 3)."""


class ScheduledWaitedView(_Waited, ScheduledView):
    """`send --at ... --wait`: the scheduled campaign, then where it stood at the end."""


SendOutput = EnqueueView | ScheduledView
WaitedSendOutput = EnqueueWaitedView | ScheduledWaitedView


def send_view(
    result: EnqueueResult,
    scheduled: ScheduledCampaign | None,
    progress: CampaignProgress | None = None,
) -> EnqueueView:
    """`send --json`: the stored campaign, scheduled or not, and with --wait its progress."""
    if progress is None:
        if scheduled is None:
            return EnqueueView.of(result)
        return ScheduledView.of_scheduled(scheduled)
    waited = ProgressView.of_progress(progress)
    if scheduled is None:
        return EnqueueWaitedView.of(result, progress=waited)
    return ScheduledWaitedView.of_scheduled(scheduled, progress=waited)
