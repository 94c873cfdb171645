"""Recipients: normalised, de-duplicated, streamed; bad rows reported with their line."""

from __future__ import annotations

import csv
import inspect
from collections import deque
from pathlib import Path

import pytest

from stickerq.errors import ConfigurationError, StickerqError
from stickerq.producer.recipients import (
    MAX_INVALID_EXAMPLES,
    InvalidPhone,
    Recipient,
    RecipientError,
    RecipientFileError,
    RecipientReport,
    normalise_phone,
    open_recipients,
    parse_recipient_csv,
    parse_recipient_list,
)
from stickerq.producer.spec import REF_MAX

IN_MOBILE = "+919812345678"
GB_MOBILE = "+447911123456"
US_NUMBER = "+16502530000"


def write(tmp_path: Path, content: str | bytes, name: str = "recipients.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def read_csv(path: Path, region: str | None = None) -> tuple[list[Recipient], RecipientReport]:
    report = RecipientReport()
    return list(parse_recipient_csv(path, region, report)), report


def read_list(text: str, region: str | None = None) -> tuple[list[Recipient], RecipientReport]:
    report = RecipientReport()
    return list(parse_recipient_list(text, region, report)), report


# normalise_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+91 98123 45678", IN_MOBILE),
        ("+91-98123-45678", IN_MOBILE),
        ("+1 (650) 253-0000", US_NUMBER),
        ("+44.7911.123456", GB_MOBILE),
        (" +919812345678\t", IN_MOBILE),
    ],
)
def test_normalise_phone_ignores_spaces_dashes_dots_parentheses(raw: str, expected: str) -> None:
    assert normalise_phone(raw, None) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [("98123 45678", "IN", IN_MOBILE), ("07911 123456", "GB", GB_MOBILE)],
)
def test_normalise_phone_uses_default_region_without_plus(
    raw: str, region: str, expected: str
) -> None:
    assert normalise_phone(raw, region) == expected


def test_number_without_plus_or_region_says_how_to_fix() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone("9812345678", None)
    assert "+<country code>" in caught.value.reason
    assert "STICKERQ_DEFAULT_REGION" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+91 98123", None, "too short"),
        ("+91981234567890123", None, "too long"),
        ("1-800-FLOWERS", "US", "only digits"),
        ("+91 98ab345678", None, "only digits"),
        ("9812345678", "US", "not a valid number for US"),
        ("+999 123456789", None, "unknown country code"),
        ("  ", None, "empty"),
        ("+91+98123", None, "only digits"),
    ],
)
def test_normalise_phone_rejects_with_a_reason(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone(raw, region)
    assert reason in caught.value.reason


# comma-separated lists


def test_list_yields_e164_with_positions() -> None:
    recipients, report = read_list(f"{IN_MOBILE}, +44 7911 123456 ,+1 (650) 253-0000")
    assert [(r.phone, r.line) for r in recipients] == [
        (IN_MOBILE, 1),
        (GB_MOBILE, 2),
        (US_NUMBER, 3),
    ]
    assert (report.valid, report.duplicates, report.invalid_count) == (3, 0, 0)
    assert all(r.ref is None and r.ref1 is None and r.ref2 is None for r in recipients)


def test_list_blank_items_are_ignored_but_keep_positions() -> None:
    recipients, report = read_list(f",{IN_MOBILE},, ,{GB_MOBILE},")
    assert [(r.phone, r.line) for r in recipients] == [(IN_MOBILE, 2), (GB_MOBILE, 5)]
    assert report.invalid_count == 0


def test_list_duplicates_are_dropped_and_counted_even_written_differently() -> None:
    recipients, report = read_list(f"{IN_MOBILE},+91 98123-45678,098123 45678,{GB_MOBILE}", "IN")
    assert [r.phone for r in recipients] == [IN_MOBILE, GB_MOBILE]
    assert (report.valid, report.duplicates) == (2, 2)


def test_list_invalid_items_are_recorded_with_position_and_reason() -> None:
    recipients, report = read_list(f"12,{IN_MOBILE},hello")
    assert [r.phone for r in recipients] == [IN_MOBILE]
    assert report.invalid_count == 2
    assert [(row.line, row.value) for row in report.invalid] == [(1, "12"), (3, "hello")]
    assert all(row.reason for row in report.invalid)


def test_invalid_values_are_cut_to_60_characters() -> None:
    _, report = read_list("9" * 100)
    assert len(report.invalid[0].value) == 60


def test_invalid_examples_are_capped_but_all_counted() -> None:
    _, report = read_list(",".join(["x"] * (MAX_INVALID_EXAMPLES + 5)))
    assert report.invalid_count == MAX_INVALID_EXAMPLES + 5
    assert len(report.invalid) == MAX_INVALID_EXAMPLES
    assert any(f"first {MAX_INVALID_EXAMPLES}" in warning for warning in report.warnings)


def test_recipient_repr_masks_the_phone() -> None:
    recipients, _ = read_list(IN_MOBILE)
    assert IN_MOBILE not in repr(recipients[0])
    assert "5678" in repr(recipients[0])


# CSV files


def test_csv_with_bom_and_phone_header_in_another_case(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff PHONE ,Name\n+91 98123 45678,Asha\n+44 7911 123456,Tom\n")
    recipients, report = read_csv(path)
    assert [(r.phone, r.line) for r in recipients] == [(IN_MOBILE, 2), (GB_MOBILE, 3)]
    assert report.valid == 2


def test_csv_per_row_refs_and_other_columns_ignored(tmp_path: Path) -> None:
    content = (
        "name,Ref2,phone,ref,REF1\n"
        f"Asha,z1,{IN_MOBILE},a1,b1\n"
        f"Tom,,{GB_MOBILE}, ,b2\n"
        f"Ann,z3,{US_NUMBER}\n"
    )
    recipients, _ = read_csv(write(tmp_path, content))
    assert [(r.ref, r.ref1, r.ref2) for r in recipients] == [
        ("a1", "b1", "z1"),
        (None, "b2", None),
        (None, None, "z3"),
    ]


def test_csv_without_ref_columns_has_no_refs(tmp_path: Path) -> None:
    recipients, _ = read_csv(write(tmp_path, f"phone\n{IN_MOBILE}\n"))
    assert (recipients[0].ref, recipients[0].ref1, recipients[0].ref2) == (None, None, None)


def test_csv_line_numbers_count_blank_lines_and_multiline_cells(tmp_path: Path) -> None:
    content = (
        "\n"  # line 1: blank lines above the header are allowed
        "phone,ref\n"  # 2
        f"{IN_MOBILE},a\n"  # 3
        "\n"  # 4
        "   \n"  # 5
        f'{GB_MOBILE},"two\nlines"\n'  # 6-7
        "not a number,c\n"  # 8
        ",,\n"  # 9: blank cells only, skipped
        ",orphan ref\n"  # 10: no phone
        f"{US_NUMBER},d"  # 11, no final newline
    )
    recipients, report = read_csv(write(tmp_path, content))
    assert [(r.phone, r.line) for r in recipients] == [
        (IN_MOBILE, 3),
        (GB_MOBILE, 6),
        (US_NUMBER, 11),
    ]
    assert recipients[1].ref == "two\nlines"
    assert [(row.line, row.reason) for row in report.invalid] == [
        (8, "only digits, a leading +, spaces, dashes, dots and parentheses are allowed"),
        (10, "the phone cell is empty"),
    ]


def test_csv_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, f"phone\r\n{IN_MOBILE}\r\n\r\n{GB_MOBILE}\r\n")
    recipients, _ = read_csv(path)
    assert [(r.phone, r.line) for r in recipients] == [(IN_MOBILE, 2), (GB_MOBILE, 4)]


def test_csv_duplicates_are_dropped_first_row_wins(tmp_path: Path) -> None:
    content = f"phone,ref\n{IN_MOBILE},first\n98123 45678,second\n"
    recipients, report = read_csv(write(tmp_path, content), "IN")
    assert [(r.phone, r.ref) for r in recipients] == [(IN_MOBILE, "first")]
    assert report.duplicates == 1


def test_csv_refs_over_255_are_truncated_and_counted(tmp_path: Path) -> None:
    content = f"phone,ref,ref1,ref2\n{IN_MOBILE},{'a' * 300},{'b' * 255},{'c' * 256}\n"
    recipients, report = read_csv(write(tmp_path, content))
    assert recipients[0].ref == "a" * REF_MAX
    assert recipients[0].ref1 == "b" * REF_MAX
    assert recipients[0].ref2 == "c" * REF_MAX
    assert report.truncated_refs == 2


def test_csv_semicolon_delimited_file_from_a_spreadsheet(tmp_path: Path) -> None:
    recipients, _ = read_csv(write(tmp_path, f"phone;ref\n{IN_MOBILE};a\n"))
    assert [(r.phone, r.ref) for r in recipients] == [(IN_MOBILE, "a")]


def test_csv_without_phone_header_raises_with_file_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "mobile,ref\n+919812345678,a\n")
    with pytest.raises(RecipientFileError) as caught:
        read_csv(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 1" in message
    assert "no 'phone' column" in message
    assert "mobile, ref" in message
    assert "e.g. phone,ref,ref1,ref2" in message


def test_csv_without_any_header_says_the_first_line_looks_like_data(tmp_path: Path) -> None:
    with pytest.raises(RecipientFileError, match="looks like data"):
        read_csv(write(tmp_path, f"{IN_MOBILE}\n{GB_MOBILE}\n"))


def test_empty_csv_raises(tmp_path: Path) -> None:
    with pytest.raises(RecipientFileError, match="empty"):
        read_csv(write(tmp_path, "\n\n"))


def test_non_utf8_csv_raises_with_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    rows = "".join(f"+9198{i:08d},ok\n" for i in range(2000))  # past the first decode chunk
    content = ("phone,ref\n" + rows).encode() + "+919812345678,Jos\xe9\n".encode("latin-1")
    with pytest.raises(RecipientFileError) as caught:
        read_csv(write(tmp_path, content))
    message = str(caught.value)
    assert "line 2002" in message
    assert "not UTF-8" in message
    assert "CSV UTF-8" in message


def test_utf16_file_raises(tmp_path: Path) -> None:
    with pytest.raises(RecipientFileError, match="not UTF-8"):
        read_csv(write(tmp_path, f"phone\n{IN_MOBILE}\n".encode("utf-16")))


def test_nul_byte_raises_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(RecipientFileError, match=r"line 3: .*NUL byte"):
        read_csv(write(tmp_path, f"phone\n{IN_MOBILE}\n+91\x0098\n"))


def test_field_larger_than_csv_limit_raises(tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 10)
    with pytest.raises(
        RecipientFileError, match=r"line 3: not a valid CSV file \(a cell is longer than"
    ):
        read_csv(write(tmp_path, f'phone,ref\n{IN_MOBILE},a\n{GB_MOBILE},"{huge}"\n'))


def test_unreadable_file_raises_without_traceback_detail(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"
    with pytest.raises(RecipientFileError, match=r"missing\.csv: the file cannot be read"):
        read_csv(path)
    with pytest.raises(RecipientFileError, match="cannot be read"):
        read_csv(tmp_path)  # a directory


def test_recipient_file_errors_are_stickerq_errors() -> None:
    assert issubclass(RecipientFileError, StickerqError)
    assert issubclass(RecipientError, StickerqError)


# open_recipients


def test_open_recipients_from_a_list() -> None:
    report = RecipientReport()
    recipients = open_recipients(to=IN_MOBILE, to_file=None, default_region=None, report=report)
    assert [r.phone for r in recipients] == [IN_MOBILE]


def test_open_recipients_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n98123 45678\n")
    report = RecipientReport()
    recipients = open_recipients(to=None, to_file=path, default_region="in", report=report)
    assert [r.phone for r in recipients] == [IN_MOBILE]


@pytest.mark.parametrize("to", [None, "", "  "])
def test_open_recipients_needs_a_source(to: str | None) -> None:
    with pytest.raises(RecipientError, match="no recipients"):
        open_recipients(to=to, to_file=None, default_region=None, report=RecipientReport())


def test_open_recipients_refuses_both_sources(tmp_path: Path) -> None:
    path = write(tmp_path, f"phone\n{IN_MOBILE}\n")
    with pytest.raises(RecipientError, match="give only one"):
        open_recipients(to=IN_MOBILE, to_file=path, default_region=None, report=RecipientReport())


def test_open_recipients_checks_the_file_exists_up_front(tmp_path: Path) -> None:
    with pytest.raises(RecipientFileError, match="no such file"):
        open_recipients(
            to=None, to_file=tmp_path / "nope.csv", default_region=None, report=RecipientReport()
        )


def test_open_recipients_refuses_an_unknown_region() -> None:
    with pytest.raises(ConfigurationError, match="STICKERQ_DEFAULT_REGION"):
        open_recipients(to=IN_MOBILE, to_file=None, default_region="XX", report=RecipientReport())


# scale


def test_100k_rows_stream_one_at_a_time(tmp_path: Path) -> None:
    rows = 100_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("phone,ref\n")
        for i in range(rows):
            # every 10th row repeats the previous number
            number = i - 1 if i % 10 == 9 else i
            handle.write(f"+9198{number:08d},r{i}\n")
        handle.write("garbage,x\n")
    assert inspect.isgeneratorfunction(parse_recipient_csv)
    report = RecipientReport()
    stream = parse_recipient_csv(path, None, report)
    first = next(stream)
    assert (first.phone, first.line, report.valid) == ("+919800000000", 2, 1)  # lazy, not a list
    (last,) = deque(stream, maxlen=1)  # consume the rest, keeping only the final recipient
    assert report.duplicates == rows // 10
    assert report.valid == rows - rows // 10
    assert report.invalid_count == 1
    assert report.invalid[0].line == rows + 2
    assert last.line == rows  # row 99,998 is on line 100,000; the final row repeats it
