"""The JSON of `callbacks unknown`: status callbacks that matched no message."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stickerq.producer.views.base import Time, View


class UnknownCallbackView(View):
    """A status callback whose message_id matched no message, kept for inspection."""

    message_id: Annotated[str, Field(description="Kaleyra's message_id, as the callback gave it")]
    status: Annotated[str, Field(description="sent, delivered, read, failed or not-sent")]
    occurred_at: Annotated[
        Time,
        Field(
            description="the callback's own timestamp; the time received instead when that "
            "was more than 5 minutes ahead of it"
        ),
    ]
    received_at: Annotated[Time, Field(description="when stickerq received it")]
    error_code: Annotated[str | None, Field(description="Meta's error code (failed, not-sent)")]
    error_detail: Annotated[str | None, Field(description="Meta's error title")]
    ref: Annotated[str | None, Field(description="the callback's extra_info.ref")]
    ref1: Annotated[str | None, Field(description="the callback's extra_info.ref1")]
    ref2: Annotated[str | None, Field(description="the callback's extra_info.ref2")]
