"""The JSON of `report`: every number an SQL aggregate over the campaign's messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field

from stickerq.producer.reports import RefColumn
from stickerq.producer.views.base import Attempts, ByCode, UtcTime, View
from stickerq.producer.views.campaigns import ETA_AT, PaceView
from stickerq.producer.views.sending import CampaignHeadView, OutsideWindowView
from stickerq.states import MessageStatus

if TYPE_CHECKING:
    from stickerq.producer.reports import Breakdown, CampaignReport

EveryStatus = Annotated[
    dict[MessageStatus, int],
    Field(description="every message status as a key, in the state machine's order, 0 if none"),
]
Succeeded = Annotated[int, Field(description="messages now `sent`, `delivered` or `read`")]
SuccessRate = Annotated[
    float | None, Field(description="succeeded / recipients (0 to 1); null with no recipients")
]


class _GroupTotals(View):
    recipients: Annotated[int, Field(description="messages in the group")]
    by_status: EveryStatus
    succeeded: Succeeded
    success_rate: SuccessRate


class _Value(View):
    value: Annotated[str | None, Field(description="the ref value; null: messages without one")]


class _GroupCount(View):
    groups: Annotated[int, Field(description="how many groups (values) it sums")]


class RefGroupView(_GroupTotals, _Value):
    """The messages sharing one value of the ref column."""


class OtherGroupsView(_GroupTotals, _GroupCount):
    """The groups beyond `top`, summed."""


class BreakdownView(View):
    """The `top` largest groups by one ref column (`--by`); `other` sums the rest."""

    by: Annotated[RefColumn, Field(description="the column: ref, ref1 or ref2")]
    top: Annotated[int, Field(description="at most this many groups are listed (--top)")]
    group_count: Annotated[
        int, Field(description="distinct values of the column (no value counts as one: null)")
    ]
    groups: Annotated[
        list[RefGroupView], Field(description="the largest groups first, ties by value")
    ]
    other: Annotated[OtherGroupsView | None, Field(description="null when every group is listed")]

    @classmethod
    def of_breakdown(cls, breakdown: Breakdown) -> Self:
        rest = breakdown.other
        other = None
        if rest is not None:
            other = OtherGroupsView.of(rest, groups=breakdown.group_count - len(breakdown.groups))
        return cls.of(breakdown, other=other)


class ReportPaceView(PaceView):
    """The campaign's pace as `campaigns show` gives it, its ETA in UTC like the report's
    other times."""

    eta_at: Annotated[UtcTime | None, Field(description=ETA_AT)]


class ReportView(CampaignHeadView):
    """A campaign's totals by status and code, success rate, pace, duration, and the
    delivered and read counts its callbacks brought."""

    by_status: EveryStatus
    by_code: ByCode
    succeeded: Succeeded
    success_rate: SuccessRate
    attempts: Attempts
    sent: Annotated[
        int, Field(description="messages Kaleyra accepted (a `sent_at`), whatever came after")
    ]
    delivered: Annotated[
        int, Field(description="messages with a delivered or read callback (read implies it)")
    ]
    read: Annotated[int, Field(description="messages with a read callback")]
    created_at: Annotated[UtcTime, Field(description="the campaign stored")]
    started_at: Annotated[UtcTime | None, Field(description="its first batch claimed")]
    finished_at: Annotated[UtcTime | None, Field(description="every message settled")]
    first_sent_at: Annotated[UtcTime | None, Field(description="the earliest `sent_at`")]
    last_sent_at: Annotated[UtcTime | None, Field(description="the latest `sent_at`")]
    duration_seconds: Annotated[
        float | None,
        Field(
            description="started_at -> finished_at; while unfinished, started_at -> now; "
            "null if it never started"
        ),
    ]
    pace: Annotated[ReportPaceView, Field(description="its rate and ETA (as `campaigns show`)")]
    breakdown: Annotated[BreakdownView | None, Field(description="null unless --by is given")]
    outside_window: Annotated[
        OutsideWindowView, Field(description="messages that came back 131047")
    ]
    messages_purged_at: Annotated[
        UtcTime | None,
        Field(
            description="when its messages were purged, past the retention period: the "
            "figures are its kept counts; null while they are there"
        ),
    ] = None

    @classmethod
    def of_report(cls, report: CampaignReport) -> Self:
        breakdown = report.breakdown
        return cls.of(
            report,
            pace=ReportPaceView.of_pace(report.pace),
            breakdown=BreakdownView.of_breakdown(breakdown) if breakdown else None,
            outside_window=OutsideWindowView.of_count(report.outside_window),
        )
