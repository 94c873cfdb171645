"""`stickerq suppress add|list|import|remove` and `send`'s suppressed count, through the CLI
on PostgreSQL and Redis (no worker: nothing is sent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.settings import Settings
from tests.conftest import STICKER_ID, make_settings

A, B, C = "+919812340000", "+919812340001", "+919812340002"


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env)


def test_suppress_add_list_import_remove(cli_settings: Settings, tmp_path: Path) -> None:
    added = run(cli_settings, "suppress", "add", "+91 98123 40000", B, "--reason", "STOP")
    assert added.exit_code == 0, added.output
    assert "2 added, 0 already suppressed, 0 invalid" in added.stdout

    csv = tmp_path / "optouts.csv"
    csv.write_text(f"phone\n{B}\nnot a number\n{C}\n")
    imported = run(cli_settings, "suppress", "import", str(csv), "--json")
    assert imported.exit_code == 0, imported.output
    result = json.loads(imported.stdout)
    assert (result["added"], result["already"], result["invalid_count"]) == (1, 1, 1)
    assert result["invalid"][0]["line"] == 3

    listed = json.loads(run(cli_settings, "suppress", "list", "--json").stdout)
    assert listed["total"] == 3
    assert [n["phone"] for n in listed["suppressions"]] == [
        "+91******0000",
        "+91******0001",
        "+91******0002",
    ]
    table = run(cli_settings, "suppress", "list", "--show-numbers").stdout
    assert A in table and "STOP" in table and "opted out" in table

    removed = run(cli_settings, "suppress", "remove", A, "+919812349999")
    assert "1 removed, 1 not on the list" in removed.stdout
    bad = run(cli_settings, "suppress", "add", "+91123")
    assert bad.exit_code == 2 and "invalid number" in bad.stderr


def test_send_counts_the_suppressed_recipients_it_dropped(cli_settings: Settings) -> None:
    run(cli_settings, "suppress", "add", A)
    to = f"{A},{B},{C}"
    sent = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to)
    assert sent.exit_code == 0, sent.output
    assert "2 recipients (0 duplicates dropped, 0 invalid skipped, 1 suppressed)" in sent.stdout
    as_json = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to, "--json")
    assert json.loads(as_json.stdout)["suppressed"] == 1
    every = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", A)
    assert every.exit_code == 2 and "suppression list" in every.stderr
