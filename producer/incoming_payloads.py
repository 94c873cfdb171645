"""Kaleyra's incoming-message callbacks read into `Inbound`s for the window ledger, or refused.

The account owner writes the callback profile's template, so only the fields the ledger needs
are read: `from` (the customer), `wanumber` (the business number), both digits with the
country code first (a leading + is taken too), `created_at` (epoch seconds, as text or a
number) and `type` (text, image, sticker...). Everything else (the body, the name, media) is
ignored and never stored. A missing or unreadable field refuses the callback with a
CallbackError naming it (a 422: sending it again cannot help). A `created_at` in the future is
recorded as the time received: a clock ahead must not stretch a window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from stickerq.producer.callback_payloads import CallbackError, storable
from stickerq.producer.phones import InvalidPhone, kaleyra_number
from stickerq.window_ledger import TYPE_LENGTH, Inbound

FIELDS = ("from", "wanumber", "created_at", "type")
# An account has a handful of business numbers: each is normalised once, not per callback.
_business_number = lru_cache(maxsize=1024)(kaleyra_number)
_SCALARS = (str, int, float)


def parse_incoming(payload: Any, received_at: datetime) -> Inbound:
    """The customer's message in `payload` (a decoded JSON object, or a GET's query
    parameters as a dict); CallbackError when a field it needs is missing or unreadable."""
    if not isinstance(payload, dict):
        raise CallbackError(
            "an incoming-message callback is a JSON object with from, wanumber, created_at "
            "and type",
            field="",
            reason="not_an_object",
        )
    missing = [name for name in FIELDS if _blank(payload.get(name))]
    if missing:
        raise CallbackError(
            f"the incoming-message callback has no {', '.join(missing)}: the callback "
            "profile's template must send from, wanumber, created_at and type "
            '(e.g. {"from": "<from>", "wanumber": "<wanumber>", "created_at": "<created_at>", '
            '"type": "<type>"})',
            field=missing[0],
            reason="missing_field",
        )
    kind = storable(str(payload["type"]), "type")[:TYPE_LENGTH]
    return Inbound(
        sender=_number(payload["wanumber"], "wanumber", _business_number),
        customer=_number(payload["from"], "from", kaleyra_number),
        at=min(_epoch(payload["created_at"]), received_at),
        type=kind,
    )


def _blank(value: Any) -> bool:
    return not isinstance(value, _SCALARS) or isinstance(value, bool) or str(value).strip() == ""


def _number(value: Any, field: str, normalised: Callable[[str], str]) -> str:
    text = storable(str(value).strip(), field)
    if isinstance(value, float) or not text:
        raise CallbackError(
            f"{field} must be a phone number as digits (country code first), not {text[:30]!r}",
            field=field,
            reason="invalid_number",
        )
    try:
        return normalised(text)
    except InvalidPhone as exc:
        raise CallbackError(
            f"{field} {text[:30]!a} is not a phone number ({exc}): Kaleyra sends the "
            "digits with the country code first, such as 919876543210",
            field=field,
            reason="invalid_number",
        ) from None


def _epoch(value: Any) -> datetime:
    try:
        seconds = float(str(value).strip())
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise CallbackError(
            f"created_at {str(value)[:30]!a} is not a time: Kaleyra sends epoch seconds, "
            "such as 1733580000",
            field="created_at",
            reason="invalid_time",
        ) from None
