"""The JSON of `campaigns list|show|pause|resume|cancel`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field

from stickerq.producer.views.base import ZONE, Batches, CampaignId, Time, View, Warnings
from stickerq.producer.views.sending import CampaignHeadView, MessageCountsView
from stickerq.states import CampaignStatus

if TYPE_CHECKING:
    from stickerq.producer.lifecycle import CampaignDetails, CampaignSummary
    from stickerq.producer.pace import Pace

Ref = Annotated[str | None, Field(description="sent to Kaleyra with every message (none: null)")]


class CampaignView(CampaignHeadView):
    """One campaign of `campaigns list`: its scheduled time in UTC and in its own zone."""

    scheduled_at_utc: Annotated[Time | None, Field(description="when it goes (null: at once)")]
    scheduled_at_local: Annotated[Time | None, Field(description="the same in `timezone`")]
    timezone: Annotated[str | None, Field(description=ZONE)]
    created_at: Annotated[Time, Field(description="when it was stored")]
    pause_reason: Annotated[str | None, Field(description="why it is paused (null: it is not)")]

    @classmethod
    def of_summary(cls, summary: CampaignSummary) -> Self:
        return cls.of(
            summary,
            scheduled_at_utc=summary.scheduled_at,
            scheduled_at_local=summary.scheduled_local,
        )


ETA_AT = (
    "when the rest is done at that rate; null when done, not queued or running, held by an "
    "account or sender pause, or without a rate"
)


class PaceView(View):
    """How fast the campaign goes, from its counters: an average since it started."""

    rate_per_second: Annotated[
        float | None,
        Field(
            description="messages settled (cancelled and expired ones aside) per second since it "
            "started, paused time included; null before any settled"
        ),
    ]
    remaining: Annotated[int, Field(description="messages not yet settled (pending, sending)")]
    eta_at: Annotated[Time | None, Field(description=ETA_AT)]

    @classmethod
    def of_pace(cls, pace: Pace) -> Self:
        return cls.of(pace, rate_per_second=pace.rate, eta_at=pace.eta)


class CampaignDetailsView(CampaignView):
    """`campaigns show`: every field of a campaign and where its messages stand."""

    sid: Annotated[str, Field(description="the Kaleyra account (SID) it is sent with")]
    sticker_id: Annotated[str | None, Field(description="uploaded media id of the sticker")]
    sticker_link: Annotated[str | None, Field(description="https URL of the sticker (WebP)")]
    wa_source: Annotated[str, Field(description="Kaleyra's wa_source: api, clevertap, zoho...")]
    ref: Ref
    ref1: Ref
    ref2: Ref
    started_at: Annotated[Time | None, Field(description="its first batch claimed")]
    finished_at: Annotated[Time | None, Field(description="all settled, or cancelled")]
    schedule_id: Annotated[int | None, Field(description="the recurring schedule that made it")]
    suppressed_at_enqueue: Annotated[
        int,
        Field(
            description="recipients dropped when it was stored: on the account's suppression "
            "list (those suppressed later count as `suppressed` messages in `progress`)"
        ),
    ]
    progress: Annotated[MessageCountsView, Field(description="where its messages stand")]
    pace: Annotated[PaceView, Field(description="its rate and ETA")]
    valid_until: Annotated[
        Time | None,
        Field(description="its messages not sent by then expire (`--valid-for`); null: never"),
    ]
    senders: Annotated[
        list[str],
        Field(
            description="the business numbers its messages go out from: its sender, or each "
            "number of its CSV's `from` column"
        ),
    ]
    in_window: Annotated[
        bool,
        Field(
            description="sent only where the recipient's 24-hour window with the sender is "
            "open (`send --in-window`); the others end `outside_window`"
        ),
    ]

    @classmethod
    def of_details(cls, details: CampaignDetails) -> Self:
        summary = CampaignView.of_summary(details.summary)
        return cls.of(
            details,
            **dict(summary),
            progress=MessageCountsView.of_progress(details.progress),
            pace=PaceView.of_pace(details.pace),
        )


class LifecycleView(View):
    """What a pause, resume or cancel did."""

    campaign_id: CampaignId
    action: Annotated[Literal["pause", "resume", "cancel"], Field(description="the command")]
    status: Annotated[CampaignStatus, Field(description="the campaign's status after it")]
    changed: Annotated[bool, Field(description="false: it already was so, nothing changed")]
    message: Annotated[str, Field(description="what happened, in words")]
    batches: Batches
    cancelled_messages: Annotated[int, Field(description="pending messages made `cancelled`")]
    warnings: Warnings
