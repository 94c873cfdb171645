"""`stickerq senders set-rate|list|reset` through the CLI on both backends and Redis: stored
in the database, mirrored in Redis for the limiters; bad numbers and rates are refused."""

from __future__ import annotations

import json
import os

import pytest
import redis
from click.testing import Result
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.keys import sender_rate_key
from stickerq.settings import Settings
from tests.conftest import REDIS_URL, make_settings

A, B = "+919812340000", "+919812340001"


@pytest.fixture
def cli_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", rate_per_second=80.0)


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env)


def mirrored(settings: Settings, sender: str) -> float:
    value = redis.Redis.from_url(REDIS_URL).get(sender_rate_key(settings.redis_prefix, sender))
    assert value is not None
    return float(value)


def test_set_rate_list_and_reset(cli_settings: Settings) -> None:
    stored = run(cli_settings, "senders", "set-rate", "+91 98123 40000", "200")
    assert stored.exit_code == 0, stored.output
    assert f"{A}: 200 messages/s" in stored.stdout
    assert mirrored(cli_settings, A) == 200.0
    changed = json.loads(run(cli_settings, "senders", "set-rate", B, "20", "--json").stdout)
    assert (changed["sender"], changed["rate_per_second"], changed["stored"]) == (B, 20.0, True)
    assert changed["warnings"] == []
    run(cli_settings, "senders", "set-rate", A, "1000")  # a second set replaces the first

    listed = json.loads(run(cli_settings, "senders", "list", "--json").stdout)
    assert listed["default_rate_per_second"] == 80.0
    assert [(s["sender"], s["rate_per_second"]) for s in listed["senders"]] == [
        (A, 1000.0),
        (B, 20.0),
    ]
    table = run(cli_settings, "senders", "list")
    assert "default 80 messages/s" in table.stdout and B in table.stdout

    reset = json.loads(run(cli_settings, "senders", "reset", A, "--json").stdout)
    assert (reset["rate_per_second"], reset["stored"], reset["updated_at"]) == (80.0, False, None)
    assert mirrored(cli_settings, A) == 80.0  # batches already sending drop to the default
    listed = json.loads(run(cli_settings, "senders", "list", "--json").stdout)
    assert [s["sender"] for s in listed["senders"]] == [B]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["+91123", "20"], "is no sender number"),
        ([A, "0"], "more than 0"),
        ([A, "-5"], "more than 0"),
        ([A, "nan"], "more than 0"),
        ([A, "20000"], "at most 10,000"),
    ],
)
def test_bad_numbers_and_rates_are_refused_and_nothing_is_stored(
    cli_settings: Settings, args: list[str], says: str
) -> None:
    refused = run(cli_settings, "senders", "set-rate", "--", *args)
    assert refused.exit_code != 0
    assert says in refused.output
    assert json.loads(run(cli_settings, "senders", "list", "--json").stdout)["senders"] == []


def test_the_help_names_metas_tiers(cli_settings: Settings) -> None:
    shown = run(cli_settings, "senders", "set-rate", "--help").stdout
    assert "80 to 1,000" in shown and "WhatsApp Business app gets 20" in shown
