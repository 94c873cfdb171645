"""The JSON of `senders set-rate|reset|list` (and of /senders in the HTTP API)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stickerq.producer.views.base import Time, View, Warnings


class SenderRateView(View):
    """A sender number's rate, shared by every worker."""

    sender: Annotated[str, Field(description="the business number, E.164")]
    rate_per_second: Annotated[float, Field(description="messages per second, all workers")]
    stored: Annotated[
        bool, Field(description="a rate of its own; false: the default STICKERQ_RATE_PER_SECOND")
    ]
    updated_at: Annotated[Time | None, Field(description="when it was stored; null: default")]


class SenderRateChangeView(SenderRateView):
    """What `senders set-rate` or `senders reset` did."""

    warnings: Warnings


class SenderRatesView(View):
    """The stored sender rates, in number order; every other number sends at the default."""

    default_rate_per_second: Annotated[
        float, Field(description="STICKERQ_RATE_PER_SECOND: the rate of a number not listed")
    ]
    senders: Annotated[list[SenderRateView], Field(description="numbers with a rate of their own")]
