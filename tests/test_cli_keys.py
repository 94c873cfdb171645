"""`stickerq keys create|list|revoke`: the key printed once on stdout and nowhere else."""

from __future__ import annotations

import json

import pytest

from stickerq.settings import Settings
from tests.conftest import make_settings
from tests.test_cli import assert_clean_exit, run


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")


def test_create_prints_the_key_alone_on_stdout_and_list_never_shows_it(
    cli_settings: Settings,
) -> None:
    made = run(cli_settings, "keys", "create", "crm", "--scope", "send", "--expires", "90d")

    assert_clean_exit(made, 0)
    key = made.stdout.strip()
    assert key.startswith("sq_") and "\n" not in key
    assert "shown this once" in made.stderr and key not in made.stderr

    listed = run(cli_settings, "keys", "list", "--json")
    assert_clean_exit(listed, 0)
    [shown] = json.loads(listed.stdout)
    assert (shown["name"], shown["scope"], shown["account"]) == ("crm", "send", None)
    assert shown["expires_at"] and shown["revoked_at"] is None
    assert key not in listed.stdout and "key" not in shown

    revoked = run(cli_settings, "keys", "revoke", "crm", "--json")
    assert_clean_exit(revoked, 0)
    assert json.loads(revoked.stdout)["revoked_at"]


def test_create_json_carries_the_key(cli_settings: Settings) -> None:
    made = run(cli_settings, "keys", "create", "crm", "--scope", "admin", "--json")

    assert_clean_exit(made, 0)
    assert json.loads(made.stdout)["key"].startswith("sq_")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "Bad Name", "--scope", "read"], "lower-case letters"),
        (["create", "ok", "--scope", "root"], "'root' is not one of"),
        (["create", "ok", "--scope", "read", "--expires", "soon"], "--expires 'soon'"),
        (["create", "ok", "--scope", "read", "--account", "NOPE"], "no Kaleyra account"),
        (["revoke", "nope"], "no key is named 'nope'"),
    ],
)
def test_bad_input_exits_2_with_what_to_fix(
    cli_settings: Settings, args: list[str], says: str
) -> None:
    result = run(cli_settings, "keys", *args)

    assert_clean_exit(result, 2)
    assert says in " ".join(result.stderr.split()) + " ".join(result.output.split())
    assert run(cli_settings, "keys", "list", "--json").stdout.strip() == "[]"


def test_a_second_key_of_the_same_name_is_refused(cli_settings: Settings) -> None:
    assert_clean_exit(run(cli_settings, "keys", "create", "crm", "--scope", "read"), 0)

    again = run(cli_settings, "keys", "create", "crm", "--scope", "read")

    assert_clean_exit(again, 2)
    assert "exists already" in again.stderr and again.stdout == ""
