"""The JSON of `suppress add|remove|list|import` (and of /suppressions in the HTTP API)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stickerq.producer.views.base import Time, View, Warnings
from stickerq.producer.views.sending import InvalidRowView

Sid = Annotated[str, Field(description="the Kaleyra account (SID) whose list it is")]


class SuppressionView(View):
    """A number that never gets a sticker from the account."""

    sid: Sid
    phone: Annotated[str, Field(description="the number, E.164")]
    reason: Annotated[str, Field(description="why (Meta 131050 when a callback added it)")]
    created_at: Annotated[Time, Field(description="when it was added")]


class SuppressionPageView(View):
    """A page of the account's suppression list, in number order."""

    sid: Sid
    total: Annotated[int, Field(description="numbers on the account's list")]
    suppressions: Annotated[list[SuppressionView], Field(description="this page's numbers")]
    next_after: Annotated[
        str | None, Field(description="`--after` (`after=`) for the next page; null: the last")
    ]


class SuppressResultView(View):
    """What `suppress add` or `suppress import` did."""

    sid: Sid
    added: Annotated[int, Field(description="numbers new on the list")]
    already: Annotated[
        int, Field(description="numbers already on it (their first reason kept), or repeated")
    ]
    invalid_count: Annotated[int, Field(description="rows that are no phone number (import)")]
    invalid: Annotated[list[InvalidRowView], Field(description="the first invalid rows")]
    warnings: Warnings


class UnsuppressView(View):
    """What `suppress remove` did."""

    sid: Sid
    removed: Annotated[int, Field(description="numbers taken off the list")]
    not_found: Annotated[int, Field(description="numbers that were not on it")]
