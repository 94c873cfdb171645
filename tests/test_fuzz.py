"""Hypothesis over every parser of outside text that tests/producer/test_bad_input.py does
not already cover: durations and times (--valid-for, --valid-until, --at, --tz, --every),
recipient CSV files with cells past csv's field limit, phone-number chunks, and accounts
files (TOML or JSON, any shape, any size).

The property is the same for each: the input parses, or raises the parser's own error (a
StickerqError) with a message of bounded size; never another exception. Each crash found is
kept as an @example.
"""

from __future__ import annotations

import csv
import json
import os
import string
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stickerq.accounts import Account, parse_accounts, read_accounts_file, read_accounts_json
from stickerq.errors import ConfigurationError
from stickerq.producer.normalising import normalise_all
from stickerq.producer.recipients import (
    RecipientFileError,
    RecipientReport,
    names_senders,
    parse_recipient_csv,
)
from stickerq.producer.schedule import ScheduleError, first_run, parse_when, zone_named
from stickerq.producer.validity import (
    MAX_VALID_FOR,
    Validity,
    ValidityError,
    parse_valid_for,
    parse_valid_until,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MESSAGE_MAX = 2_000  # an error quotes an excerpt of what it was given, never all of it
# New inputs on each developer's run, the same ones in CI (CI=true): a bug found by chance
# is fixed with an @example, and never fails an unrelated merge.
IN_CI = bool(os.environ.get("CI"))
FAST = settings(max_examples=150, deadline=None, derandomize=IN_CI)
FILES = settings(
    max_examples=40,
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def assert_readable(exc: Exception) -> None:
    message = str(exc)
    assert message and len(message) < MESSAGE_MAX, message[:200]


# --- durations and times -------------------------------------------------------------------

DURATIONS = st.one_of(
    st.text(max_size=12),
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, 10**6), st.integers(0, 10**40)).map(str),
            st.sampled_from("smhdwSMx"),
        ),
        min_size=1,
        max_size=4,
    ).map(lambda parts: "".join(amount + unit for amount, unit in parts)),
)
# Every wall time Python has, the ends included, with or without an offset of any size.
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
)
TIMES = st.one_of(
    st.tuples(st.datetimes(), st.one_of(st.just(""), st.just("Z"), OFFSETS)).map(
        lambda pair: pair[0].isoformat() + pair[1]
    ),
    st.text(string.digits + "-:T+Z .", max_size=30),
    st.text(max_size=20),
)
ZONES = st.one_of(
    st.sampled_from(
        ["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
    ),
    OFFSETS,
    st.sampled_from(["America", "Etc", "A" * 300, "../etc/passwd", "/etc/localtime", "Asia/\x00"]),
    st.text(max_size=20),
)


@FAST
@given(text=DURATIONS)
@example(text="99999999999999d")  # OverflowError in timedelta (API 500, CLI traceback)
@example(text="9" * 400 + "s")  # the same, in C int conversion
@example(text="100000w")  # fits a timedelta, but not Campaign.valid_for_seconds (int32)
@example(text="1s" * 100_000)  # a long text, quoted back whole
def test_any_duration_parses_within_a_year_or_is_a_validity_error(text: str) -> None:
    try:
        delta = parse_valid_for(text)
    except ValidityError as exc:
        assert_readable(exc)
        return
    assert timedelta(seconds=1) <= delta <= MAX_VALID_FOR
    assert delta.microseconds == 0


@FAST
@given(text=TIMES)
@example(text="9999-12-31T23:59:59-05:00")  # OverflowError converting to UTC
@example(text="0001-01-01T00:00:00+05:00")  # the same, at the other end
def test_any_valid_until_is_a_later_utc_time_or_a_validity_error(text: str) -> None:
    try:
        moment = parse_valid_until(text, now=NOW)
    except ValidityError as exc:
        assert_readable(exc)
        return
    assert moment.utcoffset() == timedelta(0)
    assert moment > NOW


@FAST
@given(at=TIMES, tz=st.none() | ZONES, now_if_past=st.booleans(), valid_for=DURATIONS)
@example(at="9999-12-31T23:59:59-05:00", tz=None, now_if_past=False, valid_for="1d")
@example(at="9999-12-31T23:59:00", tz="America/New_York", now_if_past=False, valid_for="1d")
@example(at="9999-12-31T23:00:00Z", tz=None, now_if_past=False, valid_for="1d")  # deadline
@example(at="0001-01-01T00:00:00", tz="Asia/Kolkata", now_if_past=True, valid_for="1d")
@example(at="2099-01-01T00:00", tz="A" * 300, now_if_past=False, valid_for="1d")  # OSError
@example(at="2099-01-01T00:00", tz="America", now_if_past=False, valid_for="1d")  # a folder
def test_any_send_time_and_zone_give_a_time_to_come_and_a_deadline_or_a_schedule_error(
    at: str, tz: str | None, now_if_past: bool, valid_for: str
) -> None:
    try:
        when = parse_when(at, tz, now_if_past=now_if_past, now=NOW)
    except ScheduleError as exc:
        assert_readable(exc)
        return
    assert when.utc >= NOW and when.utc.utcoffset() == timedelta(0)
    assert when.describe()
    try:
        validity = Validity(valid_for=parse_valid_for(valid_for))
    except ValidityError:
        return
    assert validity.deadline(when.utc) is not None  # a time plus a deadline never overflows


@FAST
@given(name=ZONES)
@example(name="A" * 300)  # OSError: file name too long
@example(name="America")  # IsADirectoryError
def test_any_zone_name_is_a_zone_or_a_schedule_error(name: str) -> None:
    try:
        zone = zone_named(name)
    except ScheduleError as exc:
        assert_readable(exc)
        return
    assert isinstance(zone, tzinfo)


CRON_PARTS = st.one_of(
    st.sampled_from(["*", "*/5", "*/0", "0", "9", "31", "2", "1-5", "1,15", "MON", "jan-mar"]),
    st.sampled_from(["L", "1#6", "R", "H", "R(1-5)", "H/2", "?", "60", "-1", "1-", "0-59/7"]),
    st.integers(0, 10**25).map(str),
    st.text(max_size=4),
)
CRONS = st.one_of(
    st.lists(CRON_PARTS, min_size=1, max_size=8).map(" ".join),
    st.text(max_size=30),
)


@FAST
@given(every=CRONS, tz=ZONES)
@example(every="0 0 31 2 *", tz="UTC")  # CroniterBadDateError: never fires
@example(every="0 0 31 4,6,9,11 *", tz="Asia/Kolkata")
@example(every=",".join(["0"] * 100) + " 9 * * *", tz="UTC")  # longer than Schedule.cron
@example(every="* * * * * *", tz="UTC")  # croniter's seconds field: a run every second
@example(every="R R * * *", tz="UTC")  # a random time, drawn again at each reading
def test_any_cron_expression_gives_a_first_run_to_come_or_a_schedule_error(
    every: str, tz: str
) -> None:
    try:
        when = first_run(every, tz, now=NOW)
    except ScheduleError as exc:
        assert_readable(exc)
        return
    assert len(every.split()) == 5 and len(every) <= 120
    assert when.utc > NOW
    assert first_run(every, tz, now=NOW) == when  # the same time at each reading


# --- recipients ------------------------------------------------------------------------------

HUGE = b"<huge>"  # becomes a cell one character past csv's field limit
CSV_PIECES = st.one_of(
    st.sampled_from([b"phone", b"from", b"ref", b"ref1", b"Phone ", b",", b";", b"\t", b'"']),
    st.sampled_from([b"\n", b"\r\n", b"\r", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xe9", HUGE]),
    st.sampled_from([b"+919812345678", b"+447911123456", b"98123 45678", b"+91", b"=1+1"]),
    st.binary(max_size=8),
)


@FILES
@given(pieces=st.lists(CSV_PIECES, max_size=30), region=st.sampled_from([None, "IN"]))
@example(pieces=[b"phone", HUGE, b"\n", b"+919812345678", b"\n"], region=None)  # csv.Error
@example(pieces=[b"phone,from", b"\n", b'"', HUGE, b'"', b",+919812345678"], region=None)
@example(pieces=[b"phone", b"\n", b"+919812345678", b"\x00", b"\n"], region="IN")
def test_any_recipient_file_reads_or_is_a_file_error_naming_file_and_line(
    tmp_path: Path, pieces: list[bytes], region: str | None
) -> None:
    huge = b"x" * (csv.field_size_limit() + 1)
    path = tmp_path / "recipients.csv"
    path.write_bytes(b"".join(huge if piece == HUGE else piece for piece in pieces))
    assert names_senders(path) in (True, False)  # read before the file, by the store
    try:
        recipients = list(parse_recipient_csv(path, region, RecipientReport()))
    except RecipientFileError as exc:
        assert_readable(exc)
        assert str(exc).startswith(str(path))
        return
    assert all(recipient.phone.startswith("+") for recipient in recipients)


@FAST
@given(
    raws=st.lists(st.one_of(st.text(max_size=25), st.text("0123456789 +-()", max_size=25))),
    region=st.sampled_from([None, "IN", "GB", "US", *sorted(phonenumbers.SUPPORTED_REGIONS)[:5]]),
)
def test_a_chunk_of_any_numbers_normalises_position_by_position(
    raws: list[str], region: str | None
) -> None:
    phones, reasons = normalise_all(raws, region)
    assert len(phones) == len(raws)
    for index, phone in enumerate(phones):
        assert (phone is None) == (index in reasons)
        assert phone is None or phone.startswith("+")


# --- accounts -------------------------------------------------------------------------------

# An api-key that no error may quote. Not shaped like a SID: an error names an entry by its
# SID, so a key pasted into the sid field (and shaped like one) is quoted as a SID.
SECRET = "sk.fuzz:4d9c2e7a"
FIELDS = ["sid", "api_key", "pod", "base_url", "senders", "accounts", "colour"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["HXIN123", "in", "eu", "https://sandbox.test", "+919000000001", SECRET]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def check_accounts(read: Any, *args: Any) -> None:
    try:
        accounts = read(*args)
    except ConfigurationError as exc:
        assert_readable(exc)
        assert SECRET not in str(exc)
        return
    assert accounts and all(isinstance(account, Account) for account in accounts)


@FAST
@given(data=VALUES)
def test_any_accounts_value_is_accounts_or_a_configuration_error_without_a_key(data: Any) -> None:
    check_accounts(parse_accounts, data, "STICKERQ_ACCOUNTS")


@FAST
@given(text=st.one_of(VALUES.map(json.dumps), st.text(max_size=40)))
@example(text=DEEP_JSON)  # RecursionError
@example(text='[{"sid": ' + "9" * 5000 + "}]")  # ValueError: over 4,300 digits
@example(text='[{"sid": "A\\u0000", "api_key": "' + SECRET + '"}]')  # a NUL quoted back
@example(text='[{"sid": "' + SECRET + '", "api_key": 1}]')  # a key in the sid field
def test_any_accounts_variable_is_accounts_or_a_configuration_error(text: str) -> None:
    check_accounts(read_accounts_json, text)


@FILES
@given(
    content=st.one_of(
        VALUES.map(lambda value: json.dumps(value).encode()),
        st.text(string.printable, max_size=60).map(str.encode),
        st.binary(max_size=60),
    ),
    suffix=st.sampled_from([".toml", ".json", ".TOML", ".yaml", ""]),
)
@example(content=b"a = " + b"[" * 2000 + b"]" * 2000, suffix=".toml")  # RecursionError
@example(content=b"a = 9" + b"9" * 5000, suffix=".toml")  # ValueError: over 4,300 digits
@example(content=DEEP_JSON.encode(), suffix=".json")
@example(content=b"x" * (1 << 21), suffix=".json")  # larger than any list of accounts
def test_any_accounts_file_is_accounts_or_a_configuration_error(
    tmp_path: Path, content: bytes, suffix: str
) -> None:
    path = tmp_path / f"accounts{suffix}"
    path.write_bytes(content)
    check_accounts(read_accounts_file, path)


@pytest.mark.parametrize("name", ["zero.json", "folder.toml"])
def test_an_accounts_file_that_is_a_device_or_a_folder_is_refused_unread(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name == "zero.json":
        path.symlink_to("/dev/zero")  # read whole, it never ends
    else:
        path.mkdir()
    with pytest.raises(ConfigurationError, match="is not a regular file"):
        read_accounts_file(path)
