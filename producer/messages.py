"""A campaign's messages, a page at a time, with an opaque cursor (`GET .../messages`).

Pages follow our primary key (`Message.id`, ascending): a page starts after the last pk of
the one before, so rows inserted meanwhile never shift a page, and no offset is counted
through. The cursor wraps that pk; clients pass it back unread.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.errors import CampaignNotFound
from stickerq.models import Campaign, Message
from stickerq.producer.failures import FilterError
from stickerq.states import MessageStatus

MAX_PAGE = 500
_CURSOR_PREFIX = "m1:"  # a version tag: a later cursor format can tell old ones apart


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message of a campaign, as listed."""

    message_pk: int
    recipient: str
    status: str
    message_id: str | None
    ref: str | None
    ref1: str | None
    ref2: str | None
    code: str | None
    http_status: int | None
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    campaign_id: int
    status: MessageStatus | None
    code: str | None
    rows: list[MessageRow]
    next_cursor: str | None  # None: this was the last page


def encode_cursor(message_pk: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{message_pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The pk a cursor stands for; FilterError for anything this module did not write."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith(_CURSOR_PREFIX):
            pk = int(text.removeprefix(_CURSOR_PREFIX))
            if pk >= 0:
                return pk
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise FilterError(
        f"cursor {cursor[:40]!r} is not one this API gave: pass next_cursor back unchanged, "
        "or leave it out for the first page"
    )


def message_page(
    session: Session,
    campaign_id: int,
    *,
    status: MessageStatus | None = None,
    code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> MessagePage:
    """Up to `limit` messages of the campaign after `cursor`, in pk order, with the cursor of
    the next page. Raises CampaignNotFound, or FilterError for a bad cursor or limit."""
    if not 1 <= limit <= MAX_PAGE:
        raise FilterError(f"limit {limit} is not between 1 and {MAX_PAGE}")
    after = decode_cursor(cursor) if cursor else 0
    if session.get(Campaign, campaign_id) is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; `stickerq campaigns list` shows the campaigns"
        )
    conditions = [Message.campaign_id == campaign_id, Message.id > after]
    if status is not None:
        conditions.append(Message.status == status)
    if code is not None:
        conditions.append(Message.last_error_code == code)
    found = session.scalars(
        select(Message).where(*conditions).order_by(Message.id).limit(limit + 1)
    ).all()
    rows = [_row(message) for message in found[:limit]]
    more = len(found) > limit
    return MessagePage(
        campaign_id, status, code, rows, encode_cursor(rows[-1].message_pk) if more else None
    )


def _row(message: Message) -> MessageRow:
    return MessageRow(
        message_pk=message.id,
        recipient=message.recipient,
        status=message.status,
        message_id=message.message_id,
        ref=message.ref,
        ref1=message.ref1,
        ref2=message.ref2,
        code=message.last_error_code,
        http_status=message.last_http_status,
        attempts=message.attempts,
        created_at=message.created_at,
        last_attempt_at=message.last_attempt_at,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        read_at=message.read_at,
        next_attempt_at=message.next_attempt_at,
    )
