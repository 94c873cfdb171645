"""A campaign as CSV, one row per recipient, streamed and safe to open in a spreadsheet.

Rows come off a server-side cursor (`stream_results` on PostgreSQL; SQLite's cursor is lazy
anyway) a few thousand at a time, so a million-row export runs in constant memory.

Formula safety (OWASP "CSV Injection"): a cell whose first character, or first character
after leading whitespace, is `=`, `+`, `-`, `@`, tab, CR, LF, NUL or a full-width form of
`= + - @` (U+FF1D, U+FF0B, U+FF0D, U+FF20) is written with a leading `'`, so no spreadsheet
runs it as a formula. No exceptions: recipients are E.164 and start with `+`, so they are
written `'+919812345678` (which also keeps them text, with the `+`, instead of a number in
scientific notation). Programs reading the file back drop that one `'` with `unguard_cell`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from stickerq.errors import CampaignNotFound, MessagesPurged
from stickerq.models import Campaign, Message
from stickerq.states import OUTSIDE_WINDOW_CODE

COLUMNS = (
    "recipient",
    "sender",  # the business number it goes from (a CSV's `from` column, or the campaign's)
    "message_id",
    "ref",
    "ref1",
    "ref2",
    "status",
    "error_code",
    "attempts",
    "created_at",
    "last_attempt_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "outside_window",  # derived from error_code: `yes` for 131047 (producer/window.py)
)
# After the recipient, the sender: export_rows fills in the campaign's where a row has none.
_SELECTED = (
    Message.recipient,
    Message.message_id,
    Message.ref,
    Message.ref1,
    Message.ref2,
    Message.status,
    Message.last_error_code,
    Message.attempts,
    Message.created_at,
    Message.last_attempt_at,
    Message.sent_at,
    Message.delivered_at,
    Message.read_at,
)
_ERROR_CODE = COLUMNS.index("error_code")
ROWS_PER_FETCH = 2_000
# Full-width = + - @ too: cheap insurance where an input method or locale folds them to ASCII.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")
_LEADING_BLANKS = " \t\r\n\0\u3000"


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. `2024-05-01T10:00:00.000000Z` (also
    the JSON views' times)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _looks_like_formula(value: str) -> bool:
    # Look past quotes already in front, so that unguard_cell gives `'=x` back exactly.
    value = value.lstrip("'")
    return value[:1] in FORMULA_TRIGGERS or value.lstrip(_LEADING_BLANKS)[:1] in FORMULA_TRIGGERS


def guard_cell(value: str) -> str:
    """The value, with a leading `'` if a spreadsheet could take it for a formula."""
    if not value or value[0].isalnum():  # the common case, decided without copying
        return value
    return "'" + value if _looks_like_formula(value) else value


def unguard_cell(value: str) -> str:
    """The inverse of `guard_cell`, for programs reading an export back."""
    if value.startswith("'") and _looks_like_formula(value[1:]):
        return value[1:]
    return value


def _text(value: str | None) -> str:
    return "" if value is None else guard_cell(value)


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _time(value: datetime | None) -> str:
    return iso_utc(value) or ""


# One formatter per column of _SELECTED.
_FORMAT: tuple[Callable[[Any], str], ...] = (
    *(_text,) * 8,  # recipient, sender, message_id, ref, ref1, ref2, status, error_code
    _number,  # attempts
    *(_time,) * 5,  # created_at, last_attempt_at, sent_at, delivered_at, read_at
)


def export_campaign(session: Session, campaign_id: int, out: TextIO) -> int:
    """Write the header and one row per recipient (in insertion order); returns the rows.

    Raises CampaignNotFound before writing anything when the campaign does not exist.
    """
    rows = export_rows(session, campaign_id)
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    written = 0
    for row in rows:
        writer.writerow(row)
        written += 1
    return written


def export_chunks(
    session: Session, campaign_id: int, *, rows_per_chunk: int = ROWS_PER_FETCH
) -> Iterator[str]:
    """The export as CSV text: the header, then `rows_per_chunk` rows a piece (what an HTTP
    response streams). Raises CampaignNotFound at the call, before any text."""
    rows = export_rows(session, campaign_id)
    return _chunks(rows, rows_per_chunk)


def export_rows(session: Session, campaign_id: int) -> Iterator[list[str]]:
    """Each recipient's cells, formatted and guarded, streamed off a server-side cursor.
    Raises CampaignNotFound at the call when the campaign does not exist."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; check the id printed by `stickerq send`"
        )
    if campaign.messages_purged_at is not None:
        raise MessagesPurged.of(campaign.id, campaign.messages_purged_at, "an export")
    own_sender = func.coalesce(Message.sender, literal(campaign.sender))
    selected: Iterable[Sequence[Any]] = session.execute(
        select(_SELECTED[0], own_sender, *_SELECTED[1:])
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.id)
        .execution_options(stream_results=True, yield_per=ROWS_PER_FETCH)
    )
    return (_cells(row) for row in selected)


def _cells(row: Sequence[Any]) -> list[str]:
    cells = [f(value) for f, value in zip(_FORMAT, row, strict=True)]
    cells.append("yes" if row[_ERROR_CODE] == OUTSIDE_WINDOW_CODE else "")
    return cells


def _chunks(rows: Iterator[list[str]], rows_per_chunk: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for index, row in enumerate(rows, start=1):
        writer.writerow(row)
        if index % rows_per_chunk == 0:
            yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
