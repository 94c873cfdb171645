"""A campaign's recipients, streamed from a comma-separated list or a CSV file.

Each row is normalised to E.164, checked, de-duplicated and yielded on its own, so memory
stays flat in the number of rows: only the numbers already seen are kept, as compact ints.
Bad rows do not stop the stream; they are counted in a `RecipientReport` with their line.
A file that cannot be read as a UTF-8 CSV at all raises `RecipientFileError` instead.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from stickerq.accounts import Account
from stickerq.errors import StickerqError, excerpt
from stickerq.masking import mask_phone
from stickerq.producer.normalising import normalised
from stickerq.producer.phones import INVISIBLE_MARKS, InvalidPhone, check_region, normalise_phone
from stickerq.producer.spec import truncate_ref

__all__ = [
    "InvalidPhone",
    "InvalidRow",
    "Recipient",
    "RecipientError",
    "RecipientFileError",
    "RecipientReport",
    "names_senders",
    "normalise_phone",
    "open_recipients",
    "parse_recipient_csv",
    "parse_recipient_list",
]

MAX_INVALID_EXAMPLES = 1000  # invalid rows kept with their line; the rest are only counted
REF_COLUMNS = ("ref", "ref1", "ref2")
SENDER_COLUMN = "from"  # the business number a row is sent from (several in one campaign)
HEADER_HINT = "the first line must name the columns, e.g. phone,ref,ref1,ref2 (and from)"
# `from` numbers normalised once each: a campaign has a few business numbers, many rows each.
SENDER_CACHE = 1_000
UTF8_HINT = "save it as UTF-8 (in Excel: Save As > 'CSV UTF-8 (Comma delimited)')"

Refs = tuple[str | None, str | None, str | None]
RefColumns = tuple[int | None, int | None, int | None]
# A row's refs, line, text when its phone cell is empty (None otherwise), and `from` cell.
RowPlace = tuple[Refs, int, str | None, str | None]
_NO_REFS: Refs = (None, None, None)
_INVISIBLE = re.compile(f"[{INVISIBLE_MARKS}]")


class RecipientError(StickerqError):
    """The recipients as a whole cannot be used (as opposed to one invalid row)."""


class RecipientFileError(RecipientError):
    """The recipient file cannot be read as a UTF-8 CSV with a `phone` column."""


@dataclass(frozen=True, slots=True, repr=False)
class Recipient:
    """One valid, de-duplicated recipient; `line` is where it was read (1-based)."""

    phone: str  # E.164
    ref: str | None
    ref1: str | None
    ref2: str | None
    line: int
    sender: str | None = None  # E.164, from the CSV's `from` column; None: the campaign's

    def __repr__(self) -> str:  # phone numbers are personal data: keep them out of logs
        return f"Recipient(phone={mask_phone(self.phone)!r}, line={self.line})"


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that was not used: its line, an excerpt of the value (<= 60 chars) and why."""

    line: int
    value: str
    reason: str


@dataclass
class RecipientReport:
    """Running totals of a read, filled in as the recipients are consumed."""

    valid: int = 0
    duplicates: int = 0
    invalid_count: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)  # the first MAX_INVALID_EXAMPLES
    truncated_refs: int = 0  # ref values of stored rows cut to 255 characters
    suppressed: int = 0  # numbers dropped at the store: on the account's suppression list
    warnings: list[str] = field(default_factory=list)

    def add_invalid(self, line: int, value: str, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_EXAMPLES:
            self.invalid.append(InvalidRow(line, excerpt(value), reason))

    def finish(self) -> None:
        """Say so when not every invalid row could be listed."""
        if self.invalid_count > len(self.invalid):
            shown, total = len(self.invalid), self.invalid_count
            note = f"only the first {shown} of {total} invalid rows are listed"
            if note not in self.warnings:
                self.warnings.append(note)


class _Accept:
    """Normalise, de-duplicate and count the rows of one read."""

    def __init__(
        self,
        region: str | None,
        report: RecipientReport,
        dedupe: bool = True,
        default_sender: bool = True,
        account: Account | None = None,
    ) -> None:
        self.region = region
        self.report = report
        self.default_sender = default_sender  # False: a row must name its `from` number
        self.account = account  # listing senders: a `from` number must be one of them
        self.senders: dict[str, str | InvalidPhone] = {}
        # E.164 digits as ints: far smaller than strings. None when the caller drops the
        # duplicates itself (the store does, with the database's unique index).
        self.seen: set[int] | None = set() if dedupe else None

    def all(self, rows: Iterable[tuple[str, RowPlace]]) -> Iterator[Recipient]:
        """The valid recipients of (raw phone, (refs, line, row text)) rows, in order."""
        report = self.report
        for raw, (refs, line, empty_phone_row, raw_sender), phone in normalised(rows, self.region):
            if isinstance(phone, InvalidPhone):
                if empty_phone_row is None:
                    report.add_invalid(line, raw, phone.reason)
                else:
                    report.add_invalid(line, empty_phone_row, "the phone cell is empty")
                continue
            sender = self._sender(raw_sender)
            if isinstance(sender, InvalidPhone):
                report.add_invalid(line, raw_sender or "", sender.reason)
                continue
            if self.seen is not None:
                key = int(phone[1:])
                if key in self.seen:
                    report.duplicates += 1
                    continue
                self.seen.add(key)
            if refs is not _NO_REFS:
                refs = self._truncate(refs)
            report.valid += 1
            yield Recipient(phone, refs[0], refs[1], refs[2], line, sender)

    def _sender(self, raw: str | None) -> str | InvalidPhone | None:
        """The row's `from` number in E.164; None: the campaign's sender."""
        if raw is None:
            if self.default_sender:
                return None
            return InvalidPhone(
                "the from cell is empty and the campaign has no sender: fill it in, or give "
                "the campaign a default sender (--from)"
            )
        known = self.senders.get(raw)
        if known is None:
            try:
                known = self._check_sender(normalise_phone(raw, self.region))
            except InvalidPhone as exc:
                known = InvalidPhone(f"the from number is not valid: {exc.reason}")
            if len(self.senders) < SENDER_CACHE:
                self.senders[raw] = known
        return known

    def _check_sender(self, sender: str) -> str:
        account = self.account
        if account is not None and account.senders and sender not in account.senders:
            raise InvalidPhone(
                f"{sender} is not a business number of account {account.sid} (its senders: "
                f"{', '.join(account.senders)})"
            )
        return sender

    def _truncate(self, refs: Refs) -> Refs:
        ref, cut = truncate_ref(refs[0])
        ref1, cut1 = truncate_ref(refs[1])
        ref2, cut2 = truncate_ref(refs[2])
        self.report.truncated_refs += cut + cut1 + cut2
        return ref, ref1, ref2


def parse_recipient_list(
    text: str, default_region: str | None, report: RecipientReport, *, dedupe: bool = True
) -> Iterator[Recipient]:
    """Recipients from `+91981..., +44 7911 123456`; `line` is the item's position in the list.

    Blank items (a trailing comma, say) are ignored but keep their position.
    """
    accept = _Accept(check_region(default_region), report, dedupe)
    items = enumerate(_split_commas(text), start=1)
    yield from accept.all(
        (raw, (_NO_REFS, position, None, None)) for position, item in items if (raw := item.strip())
    )
    report.finish()


def _split_commas(text: str) -> Iterator[str]:
    """`str.split(",")` without building the whole list at once."""
    start = 0
    while (end := text.find(",", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def parse_recipient_csv(
    path: Path,
    default_region: str | None,
    report: RecipientReport,
    *,
    dedupe: bool = True,
    default_sender: bool = True,
    account: Account | None = None,
) -> Iterator[Recipient]:
    """Recipients from a CSV file with a `phone` column and optional ref, ref1, ref2 and
    `from` (the business number to send the row from) columns.

    `line` is the line an editor shows (the header is line 1). The delimiter is a comma, or a
    semicolon or tab when the header has no comma (spreadsheets in some locales write those).
    Raises RecipientFileError, naming the file and line, when the file cannot be read.
    """
    accept = _Accept(check_region(default_region), report, dedupe, default_sender, account)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from accept.all(_read_csv(handle, path))
    except UnicodeDecodeError as exc:
        line = first_undecodable_line(path)
        where = f"{path}, line {line}" if line else str(path)
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise RecipientFileError(
            f"{where}: the file is not UTF-8 text (byte 0x{bad}); {UTF8_HINT}"
        ) from None
    except OSError as exc:
        raise RecipientFileError(
            f"{path}: the file cannot be read ({exc.strerror or exc}); check the path and "
            "its permissions"
        ) from None
    report.finish()


def _read_csv(handle: TextIO, path: Path) -> Iterator[tuple[str, RowPlace]]:
    """(raw phone, (refs, line, None, from cell)) per row; ("", (.., line, the row, None))
    when only the phone cell is empty; nothing for blank rows."""
    lines = text_lines(handle, path)
    blank_before = 0  # blank lines above the header: csv's line_num does not count them
    for header_line in lines:
        if header_line.strip():
            break
        blank_before += 1
    else:
        raise RecipientFileError(f"{path}: the file is empty; {HEADER_HINT}")
    reader = csv.reader(itertools.chain([header_line], lines), delimiter=csv_delimiter(header_line))
    try:
        phone_at, ref_at, sender_at = _columns(next(reader), path, blank_before + 1)
        previous = reader.line_num
        for row in reader:
            line = blank_before + previous + 1  # a quoted cell may span lines: where it began
            previous = reader.line_num
            raw = row[phone_at].strip() if phone_at < len(row) else ""
            if raw:
                refs = _refs(row, ref_at) if ref_at else _NO_REFS
                yield raw, (refs, line, None, _cell(row, sender_at))
            elif any(cell.strip() for cell in row):
                # through the same pipeline, so the report lists invalid rows in line order
                yield "", (_NO_REFS, line, ",".join(row), None)
    except csv.Error as exc:
        raise RecipientFileError(
            f"{path}, line {blank_before + reader.line_num}: not a valid CSV file "
            f"({csv_problem(exc)}); export it as 'CSV UTF-8' from your spreadsheet; "
            f"{HEADER_HINT}"
        ) from None


def csv_problem(exc: csv.Error) -> str:
    """csv's reason in the file's words: its field limit is the one it states in bytes."""
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return (
            f"a cell is longer than {limit:,} characters, where a phone number, ref or from "
            "cell takes a few dozen: an unclosed quote, or not a CSV file?"
        )
    return str(exc)


def text_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The file's lines; a NUL byte means a binary or UTF-16 file (csv accepts NUL silently)."""
    for number, line in enumerate(handle, start=1):
        if "\x00" in line:
            raise RecipientFileError(
                f"{path}, line {number}: the file contains a NUL byte, so it is not a text CSV "
                f"(a spreadsheet or a UTF-16 file?); {UTF8_HINT}"
            )
        yield line


def csv_delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for candidate in ";\t":
        if candidate in header_line:
            return candidate
    return ","


def _columns(header: list[str], path: Path, line: int) -> tuple[int, RefColumns | None, int | None]:
    """Where the phone, ref and `from` columns are; raises RecipientFileError without a
    phone column."""
    names = header_names(header)
    if "phone" not in names:
        found = excerpt(", ".join(cell.strip() for cell in header))
        hint = ""
        if header and _looks_like_phone(header[0]):
            hint = " The first line looks like data: add a line `phone` above it."
        raise RecipientFileError(
            f"{path}, line {line}: no 'phone' column in the header (found: {found}); "
            f"{HEADER_HINT}.{hint}"
        )
    ref, ref1, ref2 = (names.index(name) if name in names else None for name in REF_COLUMNS)
    has_refs = not (ref is None and ref1 is None and ref2 is None)
    sender_at = names.index(SENDER_COLUMN) if SENDER_COLUMN in names else None
    return names.index("phone"), (ref, ref1, ref2) if has_refs else None, sender_at


def header_names(header: list[str]) -> list[str]:
    return [_INVISIBLE.sub("", cell).strip().lower() for cell in header]  # a second BOM, say


def names_senders(path: Path) -> bool:
    """Whether the CSV file's header has a `from` column (False when it cannot be read: the
    full read then says what is wrong with the file)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next((line for line in handle if line.strip()), "")
        cells = next(csv.reader([header], delimiter=csv_delimiter(header)), [])
    except (OSError, UnicodeDecodeError, csv.Error):  # a header cell over csv's field limit
        return False
    return SENDER_COLUMN in header_names(cells)


def _looks_like_phone(cell: str) -> bool:
    digits = sum(char.isdigit() for char in cell)
    return digits >= 7 and digits >= len(cell.strip()) // 2


def _refs(row: list[str], ref_at: RefColumns) -> Refs:
    return _cell(row, ref_at[0]), _cell(row, ref_at[1]), _cell(row, ref_at[2])


def _cell(row: list[str], at: int | None) -> str | None:
    """A ref cell's value; an empty or missing cell is None (the campaign's default applies)."""
    if at is None or at >= len(row):
        return None
    return row[at].strip() or None


def first_undecodable_line(path: Path) -> int | None:
    """The line of the first byte that is not UTF-8 (the text reader only knows the chunk)."""
    try:
        with path.open("rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        return None
    return None


def open_recipients(
    *,
    to: str | None,
    to_file: Path | None,
    default_region: str | None,
    report: RecipientReport,
    dedupe: bool = True,
    default_sender: bool = True,
    account: Account | None = None,
) -> Iterator[Recipient]:
    """The recipients from exactly one of a list (`to`) and a CSV file (`to_file`).

    default_sender=False: the campaign has no sender of its own, so each CSV row must name
    its `from` number.

    With dedupe=False duplicates are yielded too (and counted as valid): for a caller that
    drops them itself without holding every number seen in memory.

    Checks what can be checked up front (one source, the region, the file exists); the rows
    themselves are read lazily as the iterator is consumed.
    """
    if to is not None and not to.strip():
        to = None  # an empty --to is no list
    if to is not None and to_file is not None:
        raise RecipientError(
            "recipients given both as a list (--to) and as a file (--to-file): give only one"
        )
    region = check_region(default_region)
    if to_file is not None:
        if to_file.is_dir():
            raise RecipientFileError(f"{to_file}: a folder, not a file; name the CSV file")
        if not to_file.is_file():
            raise RecipientFileError(f"{to_file}: no such file; check the path")
        return parse_recipient_csv(
            to_file, region, report, dedupe=dedupe, default_sender=default_sender, account=account
        )
    if to is None:
        raise RecipientError(
            "no recipients: give --to +919812345678,+447911123456 or --to-file recipients.csv "
            "(a CSV with a phone column)"
        )
    return parse_recipient_list(to, region, report, dedupe=dedupe)
