"""The CSV of `stickerq window import`, read and checked: a CRM's export of incoming
messages with Kaleyra's column names, in any order: `from` (the customer) and `wanumber`
(the business number), each as digits with the country code first (Kaleyra's form) or in
E.164, and `created_at`, epoch seconds or an ISO 8601 time with its offset. An optional
`type` (text, image...) becomes the ledger's last type; other columns are ignored.

The file is streamed: each row's numbers are normalised (a number seen lately is not
normalised again: NUMBER_CACHE per column) and its time read; each bad cell is counted, the
first MAX_SHOWN kept with line and column. The good rows go, normalised, to the caller's
spool (producer/window_import.py stores them); no row is held here.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, TextIO

from stickerq.errors import StickerqError, excerpt
from stickerq.producer.callback_times import FUTURE_SLACK
from stickerq.producer.phones import InvalidPhone, kaleyra_number

# The recipients reader's checks of a CSV file, shared: a NUL byte, the delimiter, the
# header's names, csv's errors and undecodable bytes are reported the same way.
from stickerq.producer.recipients import (
    UTF8_HINT,
    RecipientFileError,
    csv_delimiter,
    csv_problem,
    first_undecodable_line,
    header_names,
    text_lines,
)
from stickerq.window_ledger import TYPE_LENGTH

CUSTOMER, SENDER, CREATED_AT, TYPE = "from", "wanumber", "created_at", "type"
REQUIRED = (CUSTOMER, SENDER, CREATED_AT)
HEADER_HINT = (
    "the first line must name the columns from (the customer), wanumber (the business "
    "number) and created_at, in any order (type is optional, other columns are ignored)"
)
FIX = (
    "write numbers as digits with the country code first (919876543210) or in E.164 "
    "(+919876543210), and created_at as epoch seconds (1733580000) or an ISO 8601 time with "
    "its offset (2024-12-07T14:00:00+05:30); then import the file again"
)
MAX_SHOWN = 20  # bad cells listed with their line; the rest are counted
NUMBER_CACHE = 8_192  # normalised numbers kept per column: a customer writes many messages
PROGRESS_ROWS = 10_000  # rows checked between two progress reports
SECONDS_DIGITS = 11  # epoch seconds up to the year 5138: more digits are milliseconds
_EPOCH = re.compile(r"(\d+)(?:\.(\d+))?", re.ASCII)
UNIX = datetime(1970, 1, 1, tzinfo=UTC)  # the spool holds times as microseconds since UNIX
_MICROSECOND = timedelta(microseconds=1)
# A checked row: sender, customer (E.164), time, type ("": none).
Row = tuple[str, str, datetime, str]


class WindowImportError(StickerqError):
    """A file that cannot be imported as it is: nothing was stored. `problems` are the first
    bad cells of `bad_rows` bad rows (none when the file as a whole is unusable), which the
    message lists and `summary` does not (for a screen that shows them as a table)."""

    def __init__(
        self,
        message: str,
        *,
        summary: str | None = None,
        bad_rows: int = 0,
        problems: list[BadCell] | None = None,
    ) -> None:
        super().__init__(message)
        self.summary = summary or message
        self.bad_rows = bad_rows
        self.problems = problems or []


class InvalidTime(StickerqError):
    """A created_at cell that is no time, or one in the future; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BadCell:
    """A cell that stops the import: its line (the header's is 1), column, value (cut to 60
    characters) and why."""

    line: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportStep:
    """Where an import stands, for a progress bar: `check` (bytes of the file read, of
    `total`), then `store` (rows stored, of the rows checked)."""

    phase: Literal["check", "store"]
    done: int
    total: int


Progress = Callable[[ImportStep], None]


@dataclass
class CheckedFile:
    """What the check found: the rows spooled, and the time range of their messages."""

    rows: int = 0
    first_inbound_at: datetime | None = None
    last_inbound_at: datetime | None = None

    def add(self, at: datetime) -> None:
        self.rows += 1
        if self.first_inbound_at is None or at < self.first_inbound_at:
            self.first_inbound_at = at
        if self.last_inbound_at is None or at > self.last_inbound_at:
            self.last_inbound_at = at


def inbound_time(raw: str, latest: datetime) -> datetime:
    """`1733580000`, `1733580000.25` (epoch seconds) or `2024-12-07T14:00:00+05:30` -> an
    aware UTC time; raises InvalidTime for anything else, or for a time after `latest`."""
    text = raw.strip()
    if not text:
        raise InvalidTime("the cell is empty")
    if text.isascii() and text.isdigit() and len(text) <= SECONDS_DIGITS:  # the usual
        at = UNIX + timedelta(seconds=int(text))
    elif epoch := _EPOCH.fullmatch(text):
        at = _from_epoch(*epoch.groups())
    else:
        at = _from_iso(text)
    if at > latest:
        raise InvalidTime(
            f"{at:%Y-%m-%d %H:%M:%S} UTC is in the future (by more than "
            f"{FUTURE_SLACK.seconds // 60} minutes): a clock ahead, or the wrong offset"
        )
    return at


def _from_epoch(seconds: str, fraction: str | None) -> datetime:
    if len(seconds) > SECONDS_DIGITS:
        raise InvalidTime(
            f"{len(seconds)} digits are too many for epoch seconds: epoch milliseconds? "
            "divide them by 1000"
        )
    at = UNIX + timedelta(seconds=int(seconds))
    return at + timedelta(microseconds=int(fraction[:6].ljust(6, "0"))) if fraction else at


def _from_iso(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTime(
            "not a time: give epoch seconds (1733580000) or an ISO 8601 time with its offset "
            "(2024-12-07T14:00:00+05:30)"
        ) from None
    if at.tzinfo is None:
        raise InvalidTime("the time has no offset: add one (Z, +05:30), or it is any zone's")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise InvalidTime("the time is out of range (years 1 to 9999)") from None


def check_file(path: Path, spool: TextIO, now: datetime, report: Progress) -> CheckedFile:
    """The file read and checked, its good rows written to `spool` as CSV rows of sender,
    customer, microseconds since UNIX and type; WindowImportError names the file (and line)
    when it cannot be read, or lists its bad rows. A time FUTURE_SLACK after `now` is bad."""
    latest = now + FUTURE_SLACK
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _check(handle, path, spool, latest, report)
    except UnicodeDecodeError as exc:
        line = first_undecodable_line(path)
        where = f"{path}, line {line}" if line else str(path)
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise WindowImportError(
            f"{where}: the file is not UTF-8 text (byte 0x{bad}); {UTF8_HINT}"
        ) from None
    except RecipientFileError as exc:  # a NUL byte: a spreadsheet or UTF-16 file
        raise WindowImportError(str(exc)) from None
    except OSError as exc:
        raise WindowImportError(
            f"{path}: the file cannot be read ({exc.strerror or exc}); check the path and its "
            "permissions"
        ) from None


def _check(
    handle: TextIO, path: Path, spool: TextIO, latest: datetime, report: Progress
) -> CheckedFile:
    lines = text_lines(handle, path)
    blank_before = 0  # blank lines above the header: csv's line_num does not count them
    for header_line in lines:
        if header_line.strip():
            break
        blank_before += 1
    else:
        raise WindowImportError(f"{path}: the file is empty; {HEADER_HINT}")
    reader = csv.reader(itertools.chain([header_line], lines), delimiter=csv_delimiter(header_line))
    check = _RowCheck(_columns(next(reader), path, blank_before + 1), latest)
    write = csv.writer(spool).writerow
    result = CheckedFile()
    size = os.fstat(handle.fileno()).st_size
    previous = reader.line_num
    try:
        for row in reader:
            line = blank_before + previous + 1  # a quoted cell may span lines: where it began
            previous = reader.line_num
            checked = check(line, row)
            if checked is None or check.bad_rows:  # once a row is bad, only the check goes on
                continue
            sender, customer, at, kind = checked
            write((sender, customer, (at - UNIX) // _MICROSECOND, kind))
            result.add(at)
            if result.rows % PROGRESS_ROWS == 0:
                report(ImportStep("check", handle.buffer.tell(), size))
    except csv.Error as exc:
        raise WindowImportError(
            f"{path}, line {blank_before + reader.line_num}: not a valid CSV file "
            f"({csv_problem(exc)}); export it as 'CSV UTF-8'; {HEADER_HINT}"
        ) from None
    if check.bad_rows:
        raise check.refusal(path)
    report(ImportStep("check", size, size))
    return result


def _columns(header: list[str], path: Path, line: int) -> tuple[int, int, int, int | None]:
    """Where from, wanumber, created_at and type are; WindowImportError names what is
    missing and what the header holds."""
    names = header_names(header)
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        found = excerpt(", ".join(cell.strip() for cell in header), 200) or "nothing"
        *others, last = (f"'{name}'" for name in missing)
        named = f"{', '.join(others)} or {last}" if others else last
        raise WindowImportError(
            f"{path}, line {line}: no {named} column in the header (found: {found}); {HEADER_HINT}"
        )
    kind = names.index(TYPE) if TYPE in names else None
    return names.index(CUSTOMER), names.index(SENDER), names.index(CREATED_AT), kind


class _RowCheck:
    """A row's cells read, or its bad cells noted. The usual row takes one try; a blank,
    short or bad one is read again cell by cell (`_note`), to name each bad cell."""

    def __init__(self, places: tuple[int, int, int, int | None], latest: datetime) -> None:
        self.customer_at, self.sender_at, self.time_at, self.type_at = places
        self.latest = latest
        self.customers = lru_cache(maxsize=NUMBER_CACHE)(kaleyra_number)
        self.senders = lru_cache(maxsize=NUMBER_CACHE)(kaleyra_number)
        self.bad_rows = 0
        self.bad_cells = 0
        self.problems: list[BadCell] = []

    def __call__(self, line: int, row: list[str]) -> Row | None:
        """The row's sender, customer, time and type; None for a blank or a bad row."""
        try:
            customer = self.customers(row[self.customer_at])
            sender = self.senders(row[self.sender_at])
            at = inbound_time(row[self.time_at], self.latest)
        except (IndexError, InvalidPhone, InvalidTime):
            self._note(line, row)
            return None
        return sender, customer, at, _cell(row, self.type_at).strip()[:TYPE_LENGTH]

    def refusal(self, path: Path) -> WindowImportError:
        shown = "; ".join(
            f"line {p.line}, {p.column} {p.value!r}: {p.reason}" for p in self.problems
        )
        more = self.bad_cells - len(self.problems)
        rest = f"; and {more:,} more bad cell(s)" if more else ""
        refused = f"{path}: {self.bad_rows:,} bad row(s), nothing was stored"
        return WindowImportError(
            f"{refused}: {shown}{rest}. To fix them, {FIX}",
            summary=f"{refused}. To fix them, {FIX}",
            bad_rows=self.bad_rows,
            problems=self.problems,
        )

    def _note(self, line: int, row: list[str]) -> None:
        """Each bad cell of a row that is not blank."""
        if not any(cell.strip() for cell in row):
            return
        self.bad_rows += 1
        readers: tuple[tuple[str, int, Callable[[str], object]], ...] = (
            (CUSTOMER, self.customer_at, self.customers),
            (SENDER, self.sender_at, self.senders),
            (CREATED_AT, self.time_at, self._time),
        )
        for column, at, read in readers:
            raw = _cell(row, at)
            try:
                read(raw)
            except (InvalidPhone, InvalidTime) as exc:
                self.bad_cells += 1
                if len(self.problems) < MAX_SHOWN:
                    self.problems.append(BadCell(line, column, excerpt(raw), exc.reason))

    def _time(self, raw: str) -> datetime:
        return inbound_time(raw, self.latest)


def _cell(row: list[str], at: int | None) -> str:
    return row[at] if at is not None and at < len(row) else ""
