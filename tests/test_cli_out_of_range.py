"""Values each of which ended `stickerq` in a traceback (an OverflowError, OSError,
csv.Error, RecursionError, or a number the database refused) exit 2 with the reason, and
store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.settings import Settings
from tests.conftest import STICKER_ID, make_settings
from tests.helpers import stored_counts
from tests.test_cli import assert_clean_exit, environment

SEND = ["send", "--sticker-id", STICKER_ID, "--to", "+919812345678"]
BEYOND_64_BITS = "99999999999999999999"


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    """PostgreSQL (the stricter columns) and Redis, no worker: nothing is sent."""
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")


def refused(settings: Settings, *args: str, **env: str) -> str:
    """Run the command; it must exit 2 without a traceback. Returns stderr on one line."""
    result = CliRunner().invoke(app, list(args), env=environment(settings, **env))
    assert_clean_exit(result, 2)
    return " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--valid-for", "99999999999999d"], "is longer than a year (365d)"),
        (["--valid-until", "9999-12-31T23:59-05:00"], "is more than a century ahead"),
        (["--at", "9999-12-31T23:59-05:00"], "is more than a century ahead"),
        (["--at", "0001-01-01T00:00+05:00", "--now-if-past"], "is more than a century ago"),
        (["--at", "2099-01-01T00:00", "--tz", "A" * 500], "unknown time zone"),
        (["--at", "2099-01-01T00:00", "--tz", "Europe"], "unknown time zone 'Europe'"),
        (["--every", "0 0 31 2 *", "--tz", "UTC"], "never fires"),
        (["--every", "R 9 * * *", "--tz", "UTC"], "random (R) or hashed (H) times"),
    ],
    ids=["valid-for", "valid-until", "at-9999", "at-year-1", "tz-long", "tz-folder",
         "every-never", "every-random"],
)  # fmt: skip
def test_send_with_a_time_out_of_range_exits_2_and_stores_nothing(
    cli_settings: Settings, args: list[str], reason: str
) -> None:
    assert reason in refused(cli_settings, *SEND, *args)
    assert stored_counts(cli_settings) == (0, 0)


def test_send_with_a_csv_header_cell_over_the_field_limit_names_the_line(
    cli_settings: Settings, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv"
    big.write_text("phone" + "x" * 140_000 + "\n+919812345678\n")

    stderr = refused(cli_settings, "send", "--sticker-id", STICKER_ID, "--to-file", str(big))

    assert f"{big}, line 1: not a valid CSV file (a cell is longer than" in stderr
    assert stored_counts(cli_settings) == (0, 0)


@pytest.mark.parametrize(
    "args",
    [
        ["status", BEYOND_64_BITS],
        ["campaigns", "show", BEYOND_64_BITS],
        ["campaigns", "pause", BEYOND_64_BITS],
        ["campaigns", "list", "--limit", BEYOND_64_BITS],
        ["report", BEYOND_64_BITS],
        ["reschedule", BEYOND_64_BITS, "--at", "2099-01-01T00:00Z"],
        ["schedules", "stop", BEYOND_64_BITS],
        ["failures", "--campaign", BEYOND_64_BITS],
        ["requeue", "--campaign", BEYOND_64_BITS, "--status", "failed"],
        ["callbacks", "unknown", "--limit", BEYOND_64_BITS],
    ],
    ids=lambda args: "-".join(arg for arg in args if arg != BEYOND_64_BITS and "T" not in arg),
)
def test_an_id_or_limit_past_64_bits_exits_2_with_the_range(
    cli_settings: Settings, args: list[str]
) -> None:
    assert "9223372036854775807" in refused(cli_settings, *args)


def test_accounts_nested_too_deeply_exit_2_saying_so(cli_settings: Settings) -> None:
    deep = "[" * 10_000 + "]" * 10_000

    listed = cli_settings.model_copy(update={"kaleyra_api_key": SecretStr("")})

    stderr = refused(listed, "accounts", "list", STICKERQ_ACCOUNTS=deep)

    assert "STICKERQ_ACCOUNTS is not valid JSON: values nested too deeply" in stderr


def test_a_pause_reason_of_bytes_not_utf8_exits_2(cli_settings: Settings) -> None:
    sent = CliRunner().invoke(app, [*SEND, "--json"], env=environment(cli_settings))
    campaign_id = json.loads(sent.stdout)["campaign_id"]

    stderr = refused(cli_settings, "campaigns", "pause", str(campaign_id), "--reason", "caf\udce9")

    assert "the pause reason must be at most 500 characters of text" in stderr


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("STICKERQ_DATABASE_URL", "postgres://user:hunter22@db.test/q", "not a database URL"),
        ("STICKERQ_REDIS_URL", "http://user:hunter22@cache.test", "starts with redis://"),
        ("STICKERQ_RETRY_DELAYS_SECONDS", "[1e999]", "finite number"),  # inf: overflowed
        ("STICKERQ_READ_TIMEOUT", "nan", "finite number"),
    ],
    ids=["database-url", "redis-url", "infinite-delay", "nan-timeout"],
)
def test_a_setting_no_command_can_use_exits_2_naming_it_without_its_value(
    cli_settings: Settings, variable: str, value: str, reason: str
) -> None:
    stderr = refused(cli_settings, "status", "1", **{variable: value})

    assert f"configuration error: {variable}: " in stderr and reason in stderr
    assert "hunter22" not in stderr  # a URL's password is never quoted back


@pytest.mark.parametrize(
    "args",
    [["sandbox", "--port", "-1"], ["api", "--port", "70000"], ["demo", "--recipients", "-5"]],
    ids=["sandbox-port", "api-port", "demo-recipients"],
)
def test_a_service_option_out_of_range_exits_2(cli_settings: Settings, args: list[str]) -> None:
    assert "Invalid value for" in refused(cli_settings, *args)
