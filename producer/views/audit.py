"""The JSON of `audit` (and of `GET /audit` in the HTTP API)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import Field

from stickerq.producer.views.base import Time, View

if TYPE_CHECKING:
    from collections.abc import Callable

    from stickerq.producer.audit_log import AuditPage, AuditRecord

# An E.164 number in a target or a parameter (`suppression:+919812345678`).
_PHONE = re.compile(r"\+\d{8,15}")


class AuditEntryView(View):
    """One change made by a person or an API key."""

    id: Annotated[int, Field(description="the entry's id; later entries have larger ones")]
    at: Annotated[Time, Field(description="when the change was committed (UTC)")]
    actor: Annotated[
        str,
        Field(
            description="who: an API key's name (`env:N` for a STICKERQ_API_TOKENS token), the "
            "dashboard viewer's, or `cli:<user>@<host>`"
        ),
    ]
    action: Annotated[
        str, Field(description="what: `campaign.paused`, `pause.lifted`, `number.erased`...")
    ]
    target: Annotated[
        str,
        Field(
            description="what it was done to: `campaign:12`, `account:SID`, `sender:+91...`, "
            "`suppression:+91...`, `schedule:3`; an erased number is `hmac:<hex>`"
        ),
    ]
    params: Annotated[dict[str, Any], Field(description="the change's parameters, never a secret")]

    @classmethod
    def of_record(cls, record: AuditRecord, show: Callable[[str], str]) -> Self:
        """`show` is how numbers are shown (masking.numbers_shown)."""
        return cls(
            id=record.id,
            at=record.at,
            actor=record.actor,
            action=record.action,
            target=_shown(record.target, show),
            params=_shown(record.params, show),
        )


class AuditPageView(View):
    """Audit entries, newest first."""

    since: Annotated[Time, Field(description="the entries are at or after this time")]
    actor: Annotated[str | None, Field(description="only this actor's; null: everyone's")]
    limit: Annotated[int, Field(description="at most this many entries")]
    more: Annotated[
        bool, Field(description="true: older entries matched too; narrow --since or raise --limit")
    ]
    entries: Annotated[list[AuditEntryView], Field(description="newest first")]

    @classmethod
    def of_page(cls, page: AuditPage, show: Callable[[str], str]) -> Self:
        entries = [AuditEntryView.of_record(record, show) for record in page.entries]
        return cls.of(page, entries=entries)


def _shown(value: Any, show: Callable[[str], str]) -> Any:
    """Every number in `value` (text, or lists and dicts of it) as `show` shows it."""
    if isinstance(value, str):
        return _PHONE.sub(lambda found: show(found.group()), value)
    if isinstance(value, list):
        return [_shown(item, show) for item in value]
    if isinstance(value, dict):
        return {key: _shown(item, show) for key, item in value.items()}
    return value
