"""The JSON of `window import|show|stats` (and of /windows in the HTTP API)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field

from stickerq.producer.views.base import Time, View

if TYPE_CHECKING:
    from stickerq.producer.window_views import CustomerWindows, WindowStats
    from stickerq.window_ledger import WindowState

Sender = Annotated[str, Field(description="the business number, E.164")]
OpenNow = Annotated[
    int, Field(description="customers in their 24-hour window now (the margin taken off)")
]
ClosingWithinHour = Annotated[
    int, Field(description="of those, customers whose window ends within the next hour")
]


class WindowImportView(View):
    """What `window import` stored in the window ledger (all of the file, or nothing)."""

    rows: Annotated[int, Field(description="rows of the file, each an incoming message")]
    pairs: Annotated[
        int,
        Field(
            description="distinct (business number, customer) pairs of the file; a pair's "
            "latest time is kept, an earlier one than the ledger's changes nothing"
        ),
    ]
    customers: Annotated[int, Field(description="distinct customers (`from`)")]
    senders: Annotated[int, Field(description="distinct business numbers (`wanumber`)")]
    first_inbound_at: Annotated[
        Time | None, Field(description="the file's earliest message, UTC; null: no rows")
    ]
    last_inbound_at: Annotated[
        Time | None, Field(description="the file's latest message, UTC; null: no rows")
    ]


class BadCellView(View):
    """A cell that stopped an import: nothing was stored."""

    line: Annotated[int, Field(description="line of the file (the header is line 1)")]
    column: Annotated[str, Field(description="`from`, `wanumber` or `created_at`")]
    value: Annotated[str, Field(description="the cell, cut to 60 characters")]
    reason: Annotated[str, Field(description="what is wrong with it")]


class WindowView(View):
    """A customer's window with one business number."""

    sender: Sender
    last_inbound_at: Annotated[Time, Field(description="the customer's last message to it")]
    last_type: Annotated[
        str | None, Field(description="that message's type (text, image...); null: unknown")
    ]
    open: Annotated[
        bool, Field(description="a sticker can go now: the window is open, not shut by 131047")
    ]
    ends_at: Annotated[
        Time,
        Field(
            description="when the window ends: the last message + 24 h - "
            "STICKERQ_WINDOW_MARGIN_SECONDS"
        ),
    ]
    closed_at: Annotated[
        Time | None,
        Field(
            description="when a 131047 callback said the window is shut (after the last "
            "message); null: none since"
        ),
    ]

    @classmethod
    def of_state(cls, state: WindowState, now: datetime) -> Self:
        return cls.of(state, open=state.is_open(now))


class CustomerWindowsView(View):
    """A customer's windows, latest message first: `[]` when they never wrote (that the
    ledger knows of) to a business number."""

    customer: Annotated[str, Field(description="the number, masked unless asked in full")]
    now: Annotated[Time, Field(description="the moment `open` is of, UTC")]
    windows: Annotated[list[WindowView], Field(description="one per business number")]

    @classmethod
    def of_result(cls, result: CustomerWindows, shown: Callable[[str], str]) -> Self:
        windows = [WindowView.of_state(w, result.now) for w in result.windows]
        return cls(customer=shown(result.customer), now=result.now, windows=windows)


class SenderWindowsView(View):
    """One business number's customers in their window."""

    sender: Sender
    open_now: OpenNow
    closing_within_hour: ClosingWithinHour


class WindowStatsView(View):
    """Customers in their window now, per business number: every one in the ledger, or the
    one asked (`--from`). The totals count a customer once per business number."""

    now: Annotated[Time, Field(description="the moment counted, UTC")]
    margin_seconds: Annotated[
        float, Field(description="STICKERQ_WINDOW_MARGIN_SECONDS, taken off each window's end")
    ]
    open_now: OpenNow
    closing_within_hour: ClosingWithinHour
    senders: Annotated[list[SenderWindowsView], Field(description="in number order")]

    @classmethod
    def of_result(cls, stats: WindowStats) -> Self:
        return cls.of(stats, senders=[SenderWindowsView.of(s) for s in stats.senders])
