"""The sticker request body as Kaleyra checks it: anything off is answered WA400."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
REF_FIELDS = ("ref", "ref1", "ref2")
REF_MAX_CHARS = 255  # Kaleyra truncates longer refs
WA_SOURCES = frozenset(
    {
        "api", "clevertap", "zoho", "webengage", "shopify", "leadsquared", "responsys",
        "braze", "hubspot", "salesforce", "zapier", "eloqua", "moengage",
    }
)  # fmt: skip


@dataclass(frozen=True)
class StickerSend:
    """What a valid body asks for, as Kaleyra would record it."""

    recipient: str  # `to`, each number stripped; several are joined by ","
    ref: str | None
    ref1: str | None
    ref2: str | None
    wa_source: str  # an unknown or missing value becomes "api", as Kaleyra does


def _recipient(to: Any) -> str | None:
    if not isinstance(to, str):
        return None
    numbers = [number.strip() for number in to.split(",")]
    if not all(E164.match(number) for number in numbers):
        return None
    return ",".join(numbers)


def _is_https_url(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme == "https" and bool(parts.netloc)


def _sticker_is_valid(sticker: Any) -> bool:
    """Exactly one of a non-empty `id` or `link` (the other absent or ""); a link is https."""
    if not isinstance(sticker, dict):
        return False
    media_id, link = sticker.get("id"), sticker.get("link")
    if any(value is not None and not isinstance(value, str) for value in (media_id, link)):
        return False
    if bool(media_id) == bool(link):
        return False
    return not link or _is_https_url(link)


def _message_is_valid(message: dict[str, Any]) -> bool:
    return (
        message.get("messaging_product") == "whatsapp"
        and message.get("recipient_type", "individual") == "individual"  # null is refused
        and message.get("type") == "sticker"  # the API's default type is text
        and _sticker_is_valid(message.get("sticker"))
    )


def parse_sticker_send(body: Any) -> StickerSend | None:
    """The send a body asks for, or None when Kaleyra would answer WA400."""
    if not isinstance(body, dict):
        return None
    message = body.get("messaging_object")
    if not isinstance(message, dict) or not _message_is_valid(message):
        return None
    recipient = _recipient(message.get("to"))
    extra = body.get("extra_info", {})
    if recipient is None or not isinstance(extra, dict):
        return None
    if any(name in extra and not isinstance(extra[name], str) for name in REF_FIELDS):
        return None  # a present ref must be a string: null is refused too
    ref, ref1, ref2 = (
        extra[name][:REF_MAX_CHARS] if name in extra else None for name in REF_FIELDS
    )
    wa_source = extra.get("wa_source")
    if not isinstance(wa_source, str) or wa_source not in WA_SOURCES:
        wa_source = "api"
    return StickerSend(recipient, ref, ref1, ref2, wa_source)
