"""Bad input ends in a clear error or a documented normalisation, never a traceback.

Hypothesis properties for the recipient readers and `validate_spec`, a corpus of nasty files
(tests/producer/nasty/, each with its expected outcome in NASTY_FILES), ten million commas,
and rejected campaigns that store nothing, through `enqueue_campaign` and `stickerq send`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import redis
from click.testing import Result
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.errors import EXCERPT_MAX, ConfigurationError, excerpt
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.recipients import (
    InvalidPhone,
    Recipient,
    RecipientFileError,
    RecipientReport,
    normalise_phone,
    parse_recipient_csv,
    parse_recipient_list,
)
from stickerq.producer.request import CampaignRequest
from stickerq.producer.spec import (
    NAME_MAX,
    REF_MAX,
    STICKER_ID_MAX,
    WA_SOURCES,
    SpecError,
    validate_spec,
)
from stickerq.producer.store import RecipientsRejected
from stickerq.queue import queued_tasks
from stickerq.settings import Settings
from tests.conftest import STICKER_ID, make_settings
from tests.helpers import stored_counts

NASTY = Path(__file__).parent / "nasty"
UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs here: nothing is ever sent
IN_MOBILE = "+919812345678"
GB_MOBILE = "+447911123456"
US_NUMBER = "+16502530000"
ONLY_DIGITS = "only digits, a leading +, spaces, dashes, dots and parentheses are allowed"
TEN_MILLION = 10_000_000

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
SPEC_FIELDS = {"name", "sender", "sticker", "sticker_id", "sticker_link", "ref", "ref1", "ref2"}
SPEC_FIELDS |= {"default_region"}  # wa_source is never refused: it falls back to api
E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ASCII digits only, whatever the input's digits
PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_valid_e164(phone: str) -> None:
    assert E164.fullmatch(phone), phone
    number = phonenumbers.parse(phone)
    assert phonenumbers.is_valid_number(number), phone
    assert phonenumbers.format_number(number, PhoneNumberFormat.E164) == phone


def read_list(text: str, region: str | None = None) -> tuple[list[Recipient], RecipientReport]:
    report = RecipientReport()
    return list(parse_recipient_list(text, region, report)), report


def read_csv(path: Path, region: str | None = None) -> tuple[list[Recipient], RecipientReport]:
    report = RecipientReport()
    return list(parse_recipient_csv(path, region, report)), report


def unstorable(text: str) -> bool:
    """What no database column takes: a NUL, or a lone surrogate (bytes that were not UTF-8)."""
    return "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text)


# --- strategies ---------------------------------------------------------------------------


@st.composite
def valid_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    """A valid number of any region: its example, with up to 4 last digits redrawn if valid."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]))
    example = phonenumbers.example_number_for_type(region, kind)
    assume(example is not None)  # a few regions have no example of a type
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    redrawn = draw(st.integers(min_value=0, max_value=4))
    tail = draw(st.text("0123456789", min_size=redrawn, max_size=redrawn))
    candidate = phonenumbers.parse(e164[: len(e164) - redrawn] + tail)
    return candidate if phonenumbers.is_valid_number(candidate) else example


SEPARATORS = [" ", "-", ".", "  ", " - ", "\u00a0", "\u2013", "\u2011"]
# Digits as other scripts write them (Arabic-Indic, Persian, Devanagari, full width): read as
# digits, stored as ASCII.
DIGIT_SCRIPTS = [
    "".join(chr(zero + n) for n in range(10)) for zero in (0x30, 0x0660, 0x06F0, 0x0966, 0xFF10)
]


@st.composite
def written_internationally(draw: st.DrawFn) -> tuple[str, str]:
    """(E.164, the same number as a person writes it: groups, separators, parentheses)."""
    number = draw(valid_numbers())
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    groups = re.split(
        r"[\s\-.]+", phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    )
    if len(groups) > 2 and draw(st.booleans()):  # "+44 (7911) 123456"
        at = draw(st.integers(min_value=1, max_value=len(groups) - 1))
        groups[at] = f"({groups[at]})"
    written = groups[0]
    for group in groups[1:]:
        written += draw(st.sampled_from(SEPARATORS)) + group
    written = written.translate(str.maketrans("0123456789", draw(st.sampled_from(DIGIT_SCRIPTS))))
    padding = st.sampled_from(["", " ", "\t", "\u202a", "\u200b"])
    return e164, draw(padding) + written + draw(padding)


@st.composite
def written_nationally(draw: st.DrawFn) -> tuple[str, str, str]:
    """(E.164, its region, the number in that region's national format with separators)."""
    number = draw(valid_numbers())
    region = phonenumbers.region_code_for_number(number)
    assume(region in phonenumbers.SUPPORTED_REGIONS)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    separator = draw(st.sampled_from(SEPARATORS))
    written = re.sub(r"[\s\-.]+", lambda _: separator, national)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), region, written


NASTY_CHARS = st.sampled_from(
    ["\x00", "\ufeff", "\u202e", "\u200b", "\udce9", "=", "@", "'", '"', ",", ";", "\n", "\r"]
)
JUNK = st.lists(st.one_of(st.characters(), NASTY_CHARS), max_size=30).map("".join)
SEPARATED_DIGITS = st.text("0123456789 -.()+\t\u2013", max_size=24)
LIST_ITEMS = st.one_of(
    st.text(max_size=20),
    SEPARATED_DIGITS,
    written_internationally().map(lambda pair: pair[1]),
    st.sampled_from(["", " ", "\t", "=+919812345678", IN_MOBILE, "9" * 300]),
)
CELL_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
CSV_CELLS = st.one_of(
    st.text(CELL_CHARS, max_size=15),
    SEPARATED_DIGITS,
    written_internationally().map(lambda pair: pair[1]),
    st.sampled_from(["", " ", '"', '"+91"', "=1+1", "a,b", "line\nbreak", "cr\ronly", "x" * 300]),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(["ref", "ref1", "ref2", "REF", " Ref1 ", "name", "city", ""]),
    st.text("abcdefghij _", max_size=8),
)


# --- comma-separated lists ---------------------------------------------------------------


@PROPERTY
@given(items=st.lists(LIST_ITEMS, max_size=25), region=st.none() | st.sampled_from(REGIONS))
def test_list_accounts_for_every_non_blank_item_and_yields_unique_valid_e164(
    items: list[str], region: str | None
) -> None:
    text = ",".join(items)
    positions = text.split(",")  # the oracle: an item may itself hold commas
    recipients, report = read_list(text, region)

    non_blank = [position for position, item in enumerate(positions, 1) if item.strip()]
    assert report.valid + report.duplicates + report.invalid_count == len(non_blank)
    assert len(recipients) == report.valid
    phones = [recipient.phone for recipient in recipients]
    assert len(set(phones)) == len(phones)
    for recipient in recipients:
        assert_valid_e164(recipient.phone)
        assert normalise_phone(positions[recipient.line - 1].strip(), region) == recipient.phone
    for row in report.invalid:
        assert row.line in non_blank
        assert row.value == excerpt(positions[row.line - 1].strip())
        assert row.reason


@PROPERTY
@given(text=st.one_of(JUNK, st.text()), region=st.none() | st.text(max_size=4))
def test_list_of_any_text_in_any_region_never_raises_but_a_region_error(
    text: str, region: str | None
) -> None:
    try:
        recipients, report = read_list(text, region)
    except ConfigurationError as exc:  # the region, checked up front
        assert "STICKERQ_DEFAULT_REGION" in str(exc)
        return
    for recipient in recipients:
        assert_valid_e164(recipient.phone)
    assert report.valid + report.duplicates + report.invalid_count <= text.count(",") + 1


@PROPERTY
@given(written=written_internationally())
def test_a_number_written_with_spaces_dashes_dots_parentheses_normalises_to_its_e164(
    written: tuple[str, str],
) -> None:
    e164, text = written
    recipients, report = read_list(f"{text},{e164}")
    assert [recipient.phone for recipient in recipients] == [e164]
    assert (report.valid, report.duplicates, report.invalid_count) == (1, 1, 0)


@PROPERTY
@given(written=written_nationally())
def test_a_nationally_written_number_normalises_with_its_default_region(
    written: tuple[str, str, str],
) -> None:
    e164, region, text = written
    assert normalise_phone(text, region) == e164


# --- CSV files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDocument:
    text: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the line each row starts on


@st.composite
def csv_documents(draw: st.DrawFn) -> CsvDocument:
    """A header with a phone column somewhere, rows of random length, random quoting,
    CRLF or LF, blank lines, maybe a BOM; the lines each row starts on are worked out here."""
    header = draw(st.lists(HEADER_NAMES, max_size=4))
    header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(["phone", " Phone"])))
    rows = draw(st.lists(st.lists(CSV_CELLS, max_size=len(header) + 1), max_size=12))
    # Python's writer leaves a lone \r unquoted when the terminator is \n: quote all then.
    quoting, newline = draw(
        st.sampled_from(
            [
                (csv.QUOTE_MINIMAL, "\r\n"),
                (csv.QUOTE_NONNUMERIC, "\r\n"),
                (csv.QUOTE_ALL, "\r\n"),
                (csv.QUOTE_ALL, "\n"),
            ]
        )
    )
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=newline)
    lines = []
    line = 1 + draw(st.integers(0, 2))
    out.write(newline * (line - 1))
    writer.writerow(header)
    line += 1
    for row in rows:
        blank = draw(st.integers(0, 1))
        out.write(newline * blank)
        line += blank
        lines.append(line)
        start = out.tell()
        writer.writerow(row)
        line += len(re.findall(r"\r\n|\r|\n", out.getvalue()[start:]))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return CsvDocument(bom + out.getvalue(), header, rows, lines)


Row = tuple[str, int, tuple[str | None, ...]]  # phone, line, (ref, ref1, ref2)


def expected_csv_read(
    document: CsvDocument, region: str | None
) -> tuple[list[Row], list[int], int]:
    """What reading the document must give: (phone, line, refs) per recipient, the lines of the
    invalid rows, and the number of duplicates."""
    names = [name.strip().lower() for name in document.header]
    phone_at = names.index("phone")
    ref_at = [names.index(name) if name in names else None for name in ("ref", "ref1", "ref2")]
    recipients: list[Row] = []
    invalid: list[int] = []
    duplicates = 0
    for row, line in zip(document.rows, document.lines, strict=True):
        raw = row[phone_at].strip() if phone_at < len(row) else ""
        if not raw:
            if any(cell.strip() for cell in row):
                invalid.append(line)
            continue
        try:
            phone = normalise_phone(raw, region)
        except InvalidPhone:
            invalid.append(line)
            continue
        if phone in {recipient[0] for recipient in recipients}:
            duplicates += 1
            continue
        refs = tuple(
            (row[at].strip()[:REF_MAX] or None) if at is not None and at < len(row) else None
            for at in ref_at
        )
        recipients.append((phone, line, refs))
    return recipients, invalid, duplicates


@PROPERTY
@given(document=csv_documents(), region=st.none() | st.sampled_from(["IN", "GB", "US"]))
def test_csv_rows_are_normalised_deduplicated_and_counted_with_the_editor_line(
    tmp_path: Path, document: CsvDocument, region: str | None
) -> None:
    path = tmp_path / "recipients.csv"
    path.write_text(document.text, encoding="utf-8", newline="")
    recipients, report = read_csv(path, region)

    expected, invalid_lines, duplicates = expected_csv_read(document, region)
    for recipient in recipients:
        assert_valid_e164(recipient.phone)
    got = [(r.phone, r.line, (r.ref, r.ref1, r.ref2)) for r in recipients]
    assert got == expected
    assert [row.line for row in report.invalid] == invalid_lines
    assert report.duplicates == duplicates
    non_blank = sum(any(cell.strip() for cell in row) for row in document.rows)
    assert report.valid + report.duplicates + report.invalid_count == non_blank


@PROPERTY
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda tail: b"phone,ref\n" + tail),
        JUNK.map(lambda text: ("phone\n" + text).encode("utf-8", "surrogatepass")),
    )
)
def test_csv_of_any_bytes_reads_or_raises_a_recipient_file_error_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    try:
        recipients, _ = read_csv(path, "IN")
    except RecipientFileError as exc:
        assert str(exc).startswith(str(path))
        return
    phones = [recipient.phone for recipient in recipients]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert_valid_e164(phone)


# --- campaign specs -----------------------------------------------------------------------


def _junk_or(*nasty: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), JUNK, st.sampled_from(nasty))


JUNK_FOR = {
    "name": _junk_or(" ", "n" * (NAME_MAX + 1), "\u200b"),
    "sender": _junk_or("98123 45678", "12", "+", "+91", "=+919812345678"),
    "sticker_id": _junk_or("", " ", "m" * (STICKER_ID_MAX + 1), "[/]"),
    "sticker_link": _junk_or(
        "http://example.com/s.webp",
        "https://",
        "ftp://example.com/s.webp",
        "javascript:alert(1)",
        "//example.com/s.webp",
        "https://example.com/" + "a" * 3000,
        "https://exa mple.com/s.webp",
        "https://e.com/\x00",
    ),
    "ref": _junk_or("r" * (REF_MAX + 50), "\x00"),
    "ref1": _junk_or("", "caf\udce9"),
    "ref2": _junk_or("x\x00y", "r" * REF_MAX + "\x00"),
    "wa_source": _junk_or(" Zoho ", "CLEVERTAP", "nosuch", ""),
    "default_region": _junk_or("in", " gb ", "XX", "001", "", "india"),
}


@st.composite
def spec_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """validate_spec's arguments: good ones, then any number of them swapped for junk."""
    with_link = draw(st.booleans())
    ref_text = st.none() | st.text(CELL_CHARS, max_size=20)
    args: dict[str, Any] = {
        "name": draw(st.text(CELL_CHARS, max_size=20).filter(str.strip)),
        "sender": draw(written_internationally())[1],
        "sticker_id": None if with_link else draw(st.sampled_from(["media-1", " 7981234 "])),
        "sticker_link": "https://cdn.example.com/s.webp?sig=ab%3D" if with_link else None,
        "ref": draw(ref_text),
        "ref1": draw(ref_text),
        "ref2": draw(ref_text),
        "wa_source": draw(st.sampled_from(sorted(WA_SOURCES))),
        "default_region": draw(st.sampled_from([None, "IN", "GB"])),
    }
    for field in draw(st.sets(st.sampled_from(sorted(JUNK_FOR)))):
        args[field] = draw(JUNK_FOR[field])
    return args


def known_bad_fields(args: dict[str, Any]) -> set[str]:
    """The fields the spec must be refused for, worked out without validate_spec."""
    bad = set()
    region = (args["default_region"] or "").strip().upper() or None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        bad.add("default_region")
        region = None
    name = args["name"] or ""
    if unstorable(name) or not name.strip() or len(name.strip()) > NAME_MAX:
        bad.add("name")
    sender = args["sender"] or ""
    try:
        normalise_phone(sender, region)
    except InvalidPhone:
        bad.add("sender")
    sticker_id, link = args["sticker_id"], args["sticker_link"]
    if sticker_id is not None and (
        unstorable(sticker_id) or not sticker_id.strip() or len(sticker_id.strip()) > STICKER_ID_MAX
    ):
        bad.add("sticker_id")
    if link is not None and "https:" not in re.sub(r"[\t\n\r]", "", link).lower():
        bad.add("sticker_link")  # a URL parser drops tabs and newlines, even in the scheme
    if sticker_id is None and link is None:
        bad.add("sticker")
    for field in ("ref", "ref1", "ref2"):
        if args[field] is not None and unstorable(args[field][:REF_MAX]):
            bad.add(field)
    return bad


@settings(max_examples=250, deadline=None)
@given(args=spec_arguments())
def test_a_spec_of_junk_is_valid_and_storable_or_a_spec_error_naming_each_bad_field(
    args: dict[str, Any],
) -> None:
    expected_bad = known_bad_fields(args)
    try:
        spec, warnings = validate_spec(**args)
    except SpecError as exc:
        fields = {problem.field for problem in exc.problems}
        assert expected_bad <= fields
        assert fields <= SPEC_FIELDS
        if args["sticker_id"] is not None and args["sticker_link"] is not None:
            assert fields & {"sticker", "sticker_id", "sticker_link"}
        message = str(exc)
        assert f"({len(exc.problems)} problem" in message
        for problem in exc.problems:
            assert f"  - {problem.field}" in message
            assert problem.problem and problem.how_to_fix
            assert len(problem.value) <= EXCERPT_MAX
        return
    assert not expected_bad
    assert spec.name == (args["name"] or "").strip()
    assert_valid_e164(spec.sender)
    assert (spec.sticker.id is None) != (spec.sticker.link is None)
    if spec.sticker.link is not None:
        assert spec.sticker.link.startswith("https://")
    assert spec.wa_source in WA_SOURCES
    texts = [spec.name, spec.sticker.id, spec.sticker.link, spec.ref, spec.ref1, spec.ref2]
    for text in filter(None, texts):
        assert not unstorable(text)
    for ref in (spec.ref, spec.ref1, spec.ref2):
        assert ref is None or len(ref) <= REF_MAX
    assert all(isinstance(warning, str) and warning for warning in warnings)


# Regressions: each of these reached the INSERT and failed there with a driver traceback.


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("name", "a\x00b", "contains a NUL character"),  # PostgreSQL: DataError
        ("name", "caf\udce9", "contains bytes that are not UTF-8 text"),  # both: encode error
        ("sticker_id", "m\x00", "contains a NUL character"),
        ("ref", "\x00", "contains a NUL character"),
        ("ref2", "caf\udce9", "contains bytes that are not UTF-8 text"),
        ("sticker_id", "m" * (STICKER_ID_MAX + 1), "the media id is 201 characters long"),
    ],
    ids=["nul-name", "undecodable-name", "nul-sticker-id", "nul-ref", "undecodable-ref2",
         "sticker-id-over-the-column"],
)  # fmt: skip
def test_text_no_database_can_store_is_a_spec_problem(field: str, value: str, problem: str) -> None:
    args: dict[str, Any] = {"name": "n", "sender": IN_MOBILE, "sticker_id": "media-1"}
    args[field] = value
    with pytest.raises(SpecError) as caught:
        validate_spec(**args)
    [found] = caught.value.problems
    assert (found.field, found.problem) == (field, problem)
    assert found.how_to_fix != "correct this value"


# --- the corpus of nasty files ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What reading a nasty file gives: the recipients (E.164, line) and invalid rows (line,
    reason) of a readable file, or the RecipientFileError's text after the file's path."""

    recipients: tuple[tuple[str, int], ...] = ()
    invalid: tuple[tuple[int, str], ...] = ()
    duplicates: int = 0
    error: str | None = None


NOT_UTF8 = "the file is not UTF-8 text"
NO_PHONE = "no 'phone' column in the header"
NASTY_FILES = {
    # Encodings: UTF-8 (with or without BOM) is read; anything else names the line and the fix.
    "utf16_bom.csv": Outcome(error=f", line 1: {NOT_UTF8} (byte 0xff)"),
    "utf16le_no_bom.csv": Outcome(error=", line 1: the file contains a NUL byte"),
    "latin1.csv": Outcome(error=f", line 2: {NOT_UTF8} (byte 0xe9)"),
    "utf8_bom_crlf.csv": Outcome(recipients=((IN_MOBILE, 2), (GB_MOBILE, 3))),
    "double_bom.csv": Outcome(recipients=((IN_MOBILE, 2),)),  # fixed: the header has a 2nd BOM
    "only_bom.csv": Outcome(error=": the file is empty"),
    # Line endings and blank lines: lines are the ones an editor shows; blank lines are skipped.
    "crlf.csv": Outcome(recipients=((IN_MOBILE, 2), (GB_MOBILE, 4))),
    "old_mac_cr.csv": Outcome(recipients=((IN_MOBILE, 2), (GB_MOBILE, 3))),
    "blank_lines.csv": Outcome(recipients=((IN_MOBILE, 5), (GB_MOBILE, 8))),
    "quoted_newlines.csv": Outcome(
        recipients=((IN_MOBILE, 2), (GB_MOBILE, 4)), invalid=((6, ONLY_DIGITS),)
    ),
    # An unmatched quote swallows the rest of the file into one cell: one invalid row, its line.
    "unterminated_quote.csv": Outcome(invalid=((2, ONLY_DIGITS),)),
    # Spreadsheet formulas are not numbers: each is an invalid row (never evaluated, never
    # stripped to a number); a formula in a ref is just text.
    "formulas.csv": Outcome(
        recipients=(("+919812345679", 7),),
        invalid=tuple((line, ONLY_DIGITS) for line in range(2, 7)),
    ),
    "separators.csv": Outcome(
        recipients=(
            (IN_MOBILE, 2),
            (GB_MOBILE, 3),
            (US_NUMBER, 4),
            ("+919812345679", 5),  # fixed: an en dash
            ("+447911123457", 6),  # fixed: direction marks around a copied number
        ),
        duplicates=1,
    ),
    # Headers and delimiters.
    "header_only.csv": Outcome(),
    "no_header.csv": Outcome(error=f", line 1: {NO_PHONE} (found: {IN_MOBILE})"),
    "semicolons.csv": Outcome(recipients=((IN_MOBILE, 2), (GB_MOBILE, 3))),
    "tabs.csv": Outcome(recipients=((IN_MOBILE, 2),)),
    "excel_sep_line.csv": Outcome(error=f", line 1: {NO_PHONE} (found: sep=, )"),
    "junk_text.csv": Outcome(error=f", line 1: {NO_PHONE} (found: Dear customer, )"),
    "nul_byte.csv": Outcome(error=", line 3: the file contains a NUL byte"),
    # Not text at all.
    "sticker.png": Outcome(error=f", line 1: {NOT_UTF8} (byte 0x89)"),
    "recipients.zip": Outcome(error=f", line 1: {NOT_UTF8} (byte 0xfb)"),
}


def test_every_nasty_file_has_an_expected_outcome_and_the_corpus_stays_small() -> None:
    files = sorted(path.name for path in NASTY.iterdir())
    assert files == sorted(NASTY_FILES)
    assert sum(path.stat().st_size for path in NASTY.iterdir()) < 200_000


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_nasty_file_gives_its_documented_outcome(name: str) -> None:
    path, outcome = NASTY / name, NASTY_FILES[name]
    if outcome.error is not None:
        with pytest.raises(RecipientFileError) as caught:
            read_csv(path)
        assert str(caught.value).startswith(f"{path}{outcome.error}")
        return
    recipients, report = read_csv(path)
    assert tuple((recipient.phone, recipient.line) for recipient in recipients) == (
        outcome.recipients
    )
    assert tuple((row.line, row.reason) for row in report.invalid) == outcome.invalid
    assert report.duplicates == outcome.duplicates


def test_csv_refs_keep_their_text_whatever_the_file_was_written_with() -> None:
    recipients, _ = read_csv(NASTY / "utf8_bom_crlf.csv")
    assert [recipient.ref for recipient in recipients] == ["café", "b"]
    recipients, _ = read_csv(NASTY / "formulas.csv")
    assert recipients[0].ref == '=HYPERLINK("http://example.com")'  # stored as text, not run
    recipients, _ = read_csv(NASTY / "semicolons.csv")
    assert [recipient.ref for recipient in recipients] == ["a,b", "c"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (f'{GB_MOBILE},"{{huge}}"', "line 3: not a valid CSV file (a cell is longer than"),
        ("{huge_digits}", "line 3: not a valid CSV file (a cell is longer than"),
        ("+{huge_digits}", "line 3: not a valid CSV file (a cell is longer than"),
    ],
    ids=["quoted-ref", "unquoted-phone", "phone-with-plus"],
)
def test_a_field_over_the_csv_limit_names_file_and_line(
    tmp_path: Path, row: str, expected: str
) -> None:
    limit = csv.field_size_limit()
    huge_row = row.format(huge="x" * (limit + 1), huge_digits="9" * (limit + 1))
    path = tmp_path / "huge.csv"
    path.write_text(f"phone,ref\n{IN_MOBILE},a\n{huge_row}\n", encoding="utf-8")
    with pytest.raises(RecipientFileError) as caught:
        read_csv(path)
    assert str(caught.value).startswith(f"{path}, {expected}")


def test_a_phone_just_under_the_csv_limit_is_one_invalid_row_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"phone\n+{'9' * (csv.field_size_limit() - 10)}\n{IN_MOBILE}\n")
    recipients, report = read_csv(path)
    assert [recipient.phone for recipient in recipients] == [IN_MOBILE]
    assert [(row.line, row.reason) for row in report.invalid] == [(2, "too long")]
    assert len(report.invalid[0].value) == EXCERPT_MAX


# --- ten million commas -------------------------------------------------------------------


def test_ten_million_commas_are_blank_items_read_in_linear_time() -> None:
    started = time.perf_counter()
    recipients, report = read_list("," * TEN_MILLION)
    blank_only = time.perf_counter() - started
    assert recipients == []
    assert (report.valid, report.duplicates, report.invalid_count) == (0, 0, 0)

    started = time.perf_counter()
    recipients, report = read_list("," * TEN_MILLION + f" {IN_MOBILE}")
    with_number = time.perf_counter() - started
    assert [(recipient.phone, recipient.line) for recipient in recipients] == [
        (IN_MOBILE, TEN_MILLION + 1)
    ]
    assert report.valid == 1
    # Measured at ~1.5 s each: a str.split would be as quick but hold a 10M-item list.
    assert blank_only < 20 and with_number < 20, (blank_only, with_number)


def test_a_million_commas_are_read_without_holding_the_items() -> None:
    text = " ," * 1_000_000 + IN_MOBILE  # built before measuring: only the reading counts
    tracemalloc.start()
    try:
        stream = parse_recipient_list(text, None, RecipientReport())
        (last,) = deque(stream, maxlen=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last.line == 1_000_001
    assert peak < 1_000_000  # a list of the 1M items would be over 8 MB


# --- end to end: enqueue_campaign stores nothing -----------------------------------------


@pytest.fixture
def bad_input_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, UNREACHABLE_API)


def assert_nothing_stored(settings: Settings) -> None:
    assert stored_counts(settings) == (0, 0)
    assert queued_tasks(redis.Redis.from_url(settings.redis_url), settings.redis_prefix) == 0


def _file(name: str) -> CampaignRequest:
    return CampaignRequest(sticker_id=STICKER_ID, to_file=NASTY / name)


def _listed(to: str) -> CampaignRequest:
    return CampaignRequest(sticker_id=STICKER_ID, to=to)


TO_MOBILE = _listed(IN_MOBILE)  # each spec case adds the field that is wrong
HUGE = "huge.csv"  # not in nasty/: the test writes it into tmp_path


def huge_field_csv(directory: Path) -> Path:
    path = directory / "huge.csv"
    path.write_text(f'phone,ref\n{IN_MOBILE},"{"x" * (csv.field_size_limit() + 1)}"\n')
    return path


@pytest.mark.parametrize(
    ("campaign", "error", "message"),
    [
        (_file("formulas.csv"), RecipientsRejected, "5 invalid recipient(s)"),
        (_file("unterminated_quote.csv"), RecipientsRejected, "1 invalid"),
        (_file("header_only.csv"), RecipientsRejected, "no valid recipient"),
        (_file("latin1.csv"), RecipientFileError, f"line 2: {NOT_UTF8}"),
        (_file("utf16_bom.csv"), RecipientFileError, f"line 1: {NOT_UTF8}"),
        (_file("recipients.zip"), RecipientFileError, f"line 1: {NOT_UTF8}"),
        (_file("nul_byte.csv"), RecipientFileError, "line 3: the file contains"),
        (_file(HUGE), RecipientFileError, "line 2: not a valid CSV file (a cell is longer than"),
        (_listed(",, ,\t,"), RecipientsRejected, "no valid recipient"),
        (_listed(f"{IN_MOBILE},=+919812345679"), RecipientsRejected, "1 invalid recipient(s)"),
        (replace(TO_MOBILE, name="a\x00b"), SpecError, "name 'a\\x00b': contains a NUL"),
        (replace(TO_MOBILE, ref="caf\udce9"), SpecError, "not UTF-8 text"),
        (replace(TO_MOBILE, sticker_id="m" * 201), SpecError, "sticker_id"),
        (
            CampaignRequest(sticker_id=" ", to=IN_MOBILE, sender="=+91", name=" ", ref1="\x00"),
            SpecError,
            "(4 problems)",
        ),
    ],
    ids=["formulas", "unterminated-quote", "header-only", "latin1", "utf16", "zip", "nul",
         "huge-field", "blank-list", "formula-in-list", "nul-name", "undecodable-ref",
         "long-sticker-id", "every-field-wrong"],
)  # fmt: skip
def test_rejected_campaign_raises_a_clear_error_and_stores_nothing(
    bad_input_settings: Settings,
    tmp_path: Path,
    campaign: CampaignRequest,
    error: type[Exception],
    message: str,
) -> None:
    if campaign.to_file == NASTY / HUGE:
        campaign = replace(campaign, to_file=huge_field_csv(tmp_path))

    with pytest.raises(error) as caught:
        enqueue_campaign(bad_input_settings, campaign)

    assert message in str(caught.value)
    assert_nothing_stored(bad_input_settings)


def test_a_million_commas_store_nothing_or_the_one_number_at_their_end(
    bad_input_settings: Settings,
) -> None:
    """End to end at a tenth of the unit test's size (which bounds the reading's time)."""
    commas = "," * (TEN_MILLION // 10)
    with pytest.raises(RecipientsRejected, match="no valid recipient"):
        enqueue_campaign(bad_input_settings, CampaignRequest(sticker_id=STICKER_ID, to=commas))
    assert_nothing_stored(bad_input_settings)

    started = time.perf_counter()
    result = enqueue_campaign(
        bad_input_settings, CampaignRequest(sticker_id=STICKER_ID, to=commas + IN_MOBILE)
    )
    assert time.perf_counter() - started < 20
    assert (result.recipients, result.invalid_count, result.batches) == (1, 0, 1)
    assert stored_counts(bad_input_settings) == (1, 1)


# --- end to end: `stickerq send` exits 2 ---------------------------------------------------


def environment(settings: Settings) -> dict[str, str]:
    """Exactly these settings as STICKERQ_* variables (any others unset), wide rich output."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STICKERQ_")}
    return {**env, **settings.as_environment(), "COLUMNS": "200"}


def send(settings: Settings, *args: str) -> Result:
    cli_env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ")}
    cli_env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, ["send", "--sticker-id", STICKER_ID, *args], env=cli_env)


def assert_rejected(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "error:" in result.stderr
    stderr = " ".join(result.stderr.split())  # rich wraps long lines
    for text in expected:
        assert text in stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to-file", str(NASTY / "formulas.csv")], ["5 invalid recipient(s)", "=cmd|"]),
        (["--to-file", str(NASTY / "sticker.png")], ["sticker.png, line 1:", NOT_UTF8]),
        (["--to-file", str(NASTY / "utf16le_no_bom.csv")], ["line 1: the file contains a NUL"]),
        (["--to-file", str(NASTY / "no_header.csv")], ["add a line `phone` above it"]),
        (["--to", ",,,, ,"], ["no valid recipient"]),
        (["--to", IN_MOBILE, "--name", "caf\udce9"], ["name", "not UTF-8 text"]),
        (["--to", IN_MOBILE, "--sticker-id", "m" * 201], ["the media id is 201 characters"]),
    ],
    ids=["formulas", "png", "utf16-no-bom", "no-header", "commas", "undecodable-name",
         "long-sticker-id"],
)  # fmt: skip
def test_send_with_nasty_input_exits_2_with_an_error_and_stores_nothing(
    bad_input_settings: Settings, args: list[str], expected: list[str]
) -> None:
    result = send(bad_input_settings, *args)
    assert_rejected(result, *expected)
    assert result.stdout == ""
    assert_nothing_stored(bad_input_settings)


def test_send_with_a_name_typed_in_a_latin1_terminal_exits_2_without_a_traceback(
    bad_input_settings: Settings,
) -> None:
    """argv bytes that are not UTF-8 reach Python as lone surrogates, which no database stores
    (this used to end in a UnicodeEncodeError traceback from the INSERT)."""
    script = Path(sys.executable).parent / "stickerq"
    argv = [str(script), "send", "--sticker-id", STICKER_ID, "--to", IN_MOBILE]
    done = subprocess.run(
        [*argv, "--name", b"caf\xe9"],
        env=environment(bad_input_settings),
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "error:" in stderr
    assert "not UTF-8 text" in stderr
    assert_nothing_stored(bad_input_settings)


@pytest.mark.parametrize(
    "args", [["--to", "[/]"], ["--to", IN_MOBILE, "--from", "[/]"]], ids=["to", "from"]
)
def test_send_quotes_values_that_look_like_rich_markup_verbatim(
    bad_input_settings: Settings, args: list[str]
) -> None:
    result = send(bad_input_settings, *args)
    assert_rejected(result, "'[/]'" if "--from" in args else "[/]")
    assert_nothing_stored(bad_input_settings)
