"""Kaleyra's status callback payloads read into `StatusCallback`s, or refused with the reason.

The v2 payload carries `message_id` and `status` at the top, ours under `extra_info` and
Meta's under `meta_object.value.statuses[]` (`id`, `status`, `timestamp`, `errors`). Read
defensively: any of them may be missing, and only scalars are read (a ref sent as an object is
ignored, so no value is ever turned into text by walking a structure of any depth).

A callback is refused (CallbackError, with the JSON field and a fixed `reason` for the metric)
when it has no message_id or no status Kaleyra sends, or when it holds text no database can
store: a NUL character (PostgreSQL refuses it in text), a lone UTF-16 surrogate (`\\ud800`:
not Unicode, no driver encodes it), a message_id longer than its column. Refused at once, such
a callback is answered 4xx instead of failing its transaction every time Kaleyra sends it again.
Longer refs, codes and titles are cut to their columns, as Kaleyra cuts refs itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stickerq.errors import StickerqError
from stickerq.models import REF_LENGTH, utcnow

STATUSES = ("sent", "delivered", "read", "failed", "not-sent")
MESSAGE_ID_LENGTH = 128  # Message.message_id
CODE_LENGTH = 32  # Message.last_error_code
DETAIL_LENGTH = 300
META = "meta_object.value.statuses[0]"
_SCALARS = (str, int, float)  # bool is an int


class CallbackError(StickerqError):
    """A callback that cannot be recorded: `field` is where (a JSON path), `reason` one of
    stickerq.metrics.REFUSAL_REASONS."""

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message)
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True)
class StatusCallback:
    message_id: str
    status: str  # sent | delivered | read | failed | not-sent
    at: datetime  # the status's time, as the callback gives it
    error_code: str | None = None
    error_detail: str | None = None
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    # when stickerq received it: recorded instead of `at` when `at` cannot be true
    received_at: datetime = field(default_factory=utcnow)


def parse_callback(payload: Any, received_at: datetime | None = None) -> StatusCallback:
    """The callback in `payload` (a decoded JSON value); CallbackError when it cannot be
    recorded. `received_at`: when it arrived (default now)."""
    if not isinstance(payload, dict):
        raise CallbackError(
            "a callback is a JSON object: send one object, or a list of objects",
            field="",
            reason="not_an_object",
        )
    received_at = received_at or utcnow()
    meta = _first_status(payload)
    extra_info = payload.get("extra_info")
    extra: dict[str, Any] = extra_info if isinstance(extra_info, dict) else {}
    errors = meta.get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = _text(error.get("code"), f"{META}.errors[0].code")
    detail = _text(error.get("title") or error.get("message"), f"{META}.errors[0].title")
    return StatusCallback(
        message_id=_message_id(payload, extra, meta),
        status=_status(payload, meta),
        at=_timestamp(meta.get("timestamp"), received_at),
        error_code=code[:CODE_LENGTH] if code is not None else None,
        error_detail=detail[:DETAIL_LENGTH] if detail else None,
        ref=_ref(extra.get("ref"), "extra_info.ref"),
        ref1=_ref(extra.get("ref1"), "extra_info.ref1"),
        ref2=_ref(extra.get("ref2"), "extra_info.ref2"),
        received_at=received_at,
    )


def _message_id(payload: dict[str, Any], extra: dict[str, Any], meta: dict[str, Any]) -> str:
    for where, value in (
        ("message_id", payload.get("message_id")),
        ("extra_info.message_id", extra.get("message_id")),
        (f"{META}.id", meta.get("id")),
    ):
        if value and isinstance(value, str | int) and not isinstance(value, bool):
            message_id = storable(str(value), where)
            if len(message_id) > MESSAGE_ID_LENGTH:
                raise CallbackError(
                    f"{where} is {len(message_id)} characters long, more than the "
                    f"{MESSAGE_ID_LENGTH} of a Kaleyra message_id: send the message_id "
                    "Kaleyra's send answered",
                    field=where,
                    reason="too_long",
                )
            return message_id
    raise CallbackError(
        "the callback has no message_id (at the top, in extra_info or as "
        f"{META}.id): send the message_id Kaleyra's send answered",
        field="message_id",
        reason="no_message_id",
    )


def _status(payload: dict[str, Any], meta: dict[str, Any]) -> str:
    raw = payload.get("status") or meta.get("status") or ""
    status = raw.lower() if isinstance(raw, str) else ""
    if status not in STATUSES:
        shown = ascii(raw[:40]) if isinstance(raw, str) else f"a JSON {type(raw).__name__}"
        raise CallbackError(
            f"the callback's status {shown} is not one Kaleyra sends: one of {', '.join(STATUSES)}",
            field="status",
            reason="unknown_status",
        )
    return status


def storable(value: str, where: str) -> str:
    """`value`, when every database can store it as text; CallbackError otherwise."""
    if "\x00" in value:
        raise CallbackError(
            f"{where} holds a NUL character (\\u0000), which PostgreSQL cannot store in text: "
            "send it without",
            field=where,
            reason="nul_byte",
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CallbackError(
                f"{where} holds a lone UTF-16 surrogate (such as \\ud800), which is not "
                "Unicode text: send it as UTF-8 (or a valid \\u escape pair)",
                field=where,
                reason="not_unicode",
            ) from None
    return value


def _text(value: Any, where: str) -> str | None:
    """A scalar as storable text; None for a missing value or a structure."""
    if value is None or not isinstance(value, _SCALARS):
        return None
    return storable(str(value), where)


def _ref(value: Any, where: str) -> str | None:
    text = _text(value, where)
    return text[:REF_LENGTH] if text is not None else None


def _first_status(payload: dict[str, Any]) -> dict[str, Any]:
    meta = payload.get("meta_object")
    value = meta.get("value") if isinstance(meta, dict) else None
    statuses = value.get("statuses") if isinstance(value, dict) else None
    if isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
        return statuses[0]
    return {}


def _timestamp(raw: Any, received_at: datetime) -> datetime:
    """Meta's epoch seconds; the time received when missing or not a time at all."""
    if not isinstance(raw, _SCALARS):
        return received_at
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at
