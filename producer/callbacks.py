"""Kaleyra status callbacks (sent, delivered, read, failed, not-sent) applied to messages.

The v2 payload carries `message_id` and `status` at the top, ours under `extra_info` and
Meta's under `meta_object.value.statuses[]` (`id`, `status`, `timestamp`, `errors`). Parsed
defensively: any of them may be missing. Applying is idempotent and never moves a message
backwards (a late `delivered` after `read` only fills delivered_at).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from stickerq.db import rows_changed
from stickerq.errors import StickerqError
from stickerq.models import Message, utcnow
from stickerq.states import MessageStatus

# Meta's code for a message outside the recipient's 24-hour window: stickers are not templates.
OUTSIDE_WINDOW = "131047"
AFTER_SENT = (MessageStatus.SENT, MessageStatus.DELIVERED)


class CallbackError(StickerqError):
    """A callback without a message_id or a status we know."""


@dataclass(frozen=True, slots=True)
class StatusCallback:
    message_id: str
    status: str  # sent | delivered | read | failed | not-sent
    at: datetime
    error_code: str | None = None
    error_detail: str | None = None


def parse_callback(payload: dict[str, Any]) -> StatusCallback:
    meta = _first_status(payload)
    extra_info = payload.get("extra_info")
    extra: dict[str, Any] = extra_info if isinstance(extra_info, dict) else {}
    message_id = payload.get("message_id") or extra.get("message_id") or meta.get("id")
    status = str(payload.get("status") or meta.get("status") or "").lower()
    if not message_id:
        raise CallbackError("the callback has no message_id")
    if status not in {"sent", "delivered", "read", "failed", "not-sent"}:
        raise CallbackError(f"the callback's status {status!r} is not one Kaleyra sends")
    errors = meta.get("errors") if isinstance(meta.get("errors"), list) else []
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    return StatusCallback(
        message_id=str(message_id),
        status=status,
        at=_timestamp(meta.get("timestamp")),
        error_code=str(error["code"]) if error.get("code") is not None else None,
        error_detail=str(error.get("title") or error.get("message") or "")[:300] or None,
    )


def apply_callback(session: Session, callback: StatusCallback) -> int:
    """Record the callback on its message; returns how many rows changed (0 or 1)."""
    row = Message.message_id == callback.message_id
    if callback.status == "delivered":
        values: dict[str, Any] = {"delivered_at": func.coalesce(Message.delivered_at, callback.at)}
        moved = rows_changed(
            session.execute(
                update(Message)
                .where(row, Message.status == MessageStatus.SENT)
                .values(status=MessageStatus.DELIVERED, **values)
            )
        )
        return moved or rows_changed(session.execute(update(Message).where(row).values(**values)))
    if callback.status == "read":
        return rows_changed(
            session.execute(
                update(Message)
                .where(row, Message.status.in_((*AFTER_SENT, MessageStatus.READ)))
                .values(
                    status=MessageStatus.READ,
                    read_at=callback.at,
                    delivered_at=func.coalesce(Message.delivered_at, callback.at),
                )
            )
        )
    if callback.status in ("failed", "not-sent"):
        return rows_changed(
            session.execute(
                update(Message)
                .where(row, Message.status.in_(AFTER_SENT))
                .values(
                    status=MessageStatus.FAILED,
                    last_error_code=callback.error_code or callback.status,
                    last_error_detail=callback.error_detail or f"callback: {callback.status}",
                )
            )
        )
    return 0  # `sent`: we knew


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
