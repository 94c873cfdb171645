"""Kaleyra's status callback payloads read into `StatusCallback`s.

The v2 payload carries `message_id` and `status` at the top, ours under `extra_info` and
Meta's under `meta_object.value.statuses[]` (`id`, `status`, `timestamp`, `errors`). Parsed
defensively: any of them may be missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stickerq.errors import StickerqError
from stickerq.models import REF_LENGTH, utcnow

STATUSES = ("sent", "delivered", "read", "failed", "not-sent")
MESSAGE_ID_LENGTH = 128  # Message.message_id
CODE_LENGTH = 32  # Message.last_error_code
DETAIL_LENGTH = 300


class CallbackError(StickerqError):
    """A callback without a message_id or a status we know."""


@dataclass(frozen=True, slots=True)
class StatusCallback:
    message_id: str
    status: str  # sent | delivered | read | failed | not-sent
    at: datetime
    error_code: str | None = None
    error_detail: str | None = None
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None


def parse_callback(payload: Any) -> StatusCallback:
    if not isinstance(payload, dict):
        raise CallbackError("a callback is a JSON object")
    meta = _first_status(payload)
    extra_info = payload.get("extra_info")
    extra: dict[str, Any] = extra_info if isinstance(extra_info, dict) else {}
    message_id = payload.get("message_id") or extra.get("message_id") or meta.get("id")
    status = str(payload.get("status") or meta.get("status") or "").lower()
    if not message_id or not isinstance(message_id, str | int):
        raise CallbackError("the callback has no message_id")
    if len(str(message_id)) > MESSAGE_ID_LENGTH:
        raise CallbackError(f"the callback's message_id is longer than {MESSAGE_ID_LENGTH}")
    if status not in STATUSES:
        raise CallbackError(f"the callback's status {status[:40]!r} is not one Kaleyra sends")
    errors = meta.get("errors") if isinstance(meta.get("errors"), list) else []
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    return StatusCallback(
        message_id=str(message_id),
        status=status,
        at=_timestamp(meta.get("timestamp")),
        error_code=str(error["code"])[:CODE_LENGTH] if error.get("code") is not None else None,
        error_detail=str(error.get("title") or error.get("message") or "")[:DETAIL_LENGTH] or None,
        ref=_ref(extra.get("ref")),
        ref1=_ref(extra.get("ref1")),
        ref2=_ref(extra.get("ref2")),
    )


def _ref(value: Any) -> str | None:
    return str(value)[:REF_LENGTH] if value is not None else None


def _first_status(payload: dict[str, Any]) -> dict[str, Any]:
    meta = payload.get("meta_object")
    value = meta.get("value") if isinstance(meta, dict) else None
    statuses = value.get("statuses") if isinstance(value, dict) else None
    if isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
        return statuses[0]
    return {}


def _timestamp(raw: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()
