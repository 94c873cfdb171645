"""`stickerq window import|show|stats` through the CLI on PostgreSQL: an import stores a file
and says what; a file with bad rows exits 2 listing them by line and column and stores
nothing; show masks the customer unless asked; the JSON is each view's; bad input exits 2."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.producer.views.windows import (
    CustomerWindowsView,
    WindowImportView,
    WindowStatsView,
)
from stickerq.settings import Settings
from tests.test_cli import assert_clean_exit
from tests.test_cli_suppress import cli_settings, run  # noqa: F401 (a fixture)

A, B = "+919812340000", "+919812340001"
S1 = "+919000000001"


@pytest.fixture
def windows_csv(tmp_path: Path) -> Path:
    now = int(time.time())
    path = tmp_path / "inbound.csv"
    path.write_text(
        "created_at,from,wanumber,type\n"
        f"{now - 600},{A.removeprefix('+')},{S1.removeprefix('+')},text\n"
        f"{now - 84600},{B},{S1},image\n"
        f"{now - 90000},{A},+919000000002,text\n"
    )
    return path


def test_import_show_and_stats(cli_settings: Settings, windows_csv: Path) -> None:  # noqa: F811
    imported = run(cli_settings, "window", "import", str(windows_csv))
    assert_clean_exit(imported, 0)
    assert "3 rows stored: 3 customer windows of 2 customers with 2 business numbers" in (
        imported.stdout
    )
    again = run(cli_settings, "window", "import", str(windows_csv), "--json")
    assert_clean_exit(again, 0)
    assert WindowImportView.model_validate_json(again.stdout).pairs == 3

    shown = run(cli_settings, "window", "show", A)
    assert_clean_exit(shown, 0)
    assert "+91******0000" in shown.stdout and A not in shown.stdout
    assert "open" in shown.stdout and "closed" in shown.stdout
    full = run(cli_settings, "window", "show", A, "--from", S1, "--show-numbers", "--json")
    view = CustomerWindowsView.model_validate_json(full.stdout)
    assert view.customer == A and [(w.sender, w.open) for w in view.windows] == [(S1, True)]
    nobody = run(cli_settings, "window", "show", "+919812349999")
    assert_clean_exit(nobody, 0)
    assert "no window" in nobody.stdout

    stats = run(cli_settings, "window", "stats", "--json")
    assert_clean_exit(stats, 0)
    counted = WindowStatsView.model_validate_json(stats.stdout)
    assert [(s.sender, s.open_now, s.closing_within_hour) for s in counted.senders] == [
        (S1, 2, 1),
        ("+919000000002", 0, 0),
    ]
    table = run(cli_settings, "window", "stats", "--from", S1).stdout
    assert "closing within the hour" in table and S1 in table


def test_a_file_with_bad_rows_exits_2_listing_them_and_stores_nothing(
    cli_settings: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"from,wanumber,created_at\n{A},{S1},1733580000\n{A},12,1733580000000\n")

    refused = run(cli_settings, "window", "import", str(bad), "--json")

    assert_clean_exit(refused, 2)
    assert refused.stdout == ""
    assert "1 bad row(s): nothing was stored" in refused.stderr
    assert "wanumber" in refused.stderr and "milliseconds" in refused.stderr
    assert "import the file again" in refused.stderr
    stats = json.loads(run(cli_settings, "window", "stats", "--json").stdout)
    assert stats["senders"] == []

    missing = run(cli_settings, "window", "import", str(tmp_path / "nowhere.csv"))
    assert_clean_exit(missing, 2)
    assert "cannot be read" in missing.stderr


def test_bad_numbers_exit_2_saying_why(cli_settings: Settings) -> None:  # noqa: F811
    for args in (["show", "12"], ["stats", "--from", "abc"]):
        result = run(cli_settings, "window", *args)
        assert_clean_exit(result, 2)
        assert "is not a phone number" in result.stderr


@pytest.mark.parametrize("command", ["import", "show", "stats"])
def test_every_window_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, ["window", command, "--help"], env={"COLUMNS": "200"})
    assert_clean_exit(result, 0)
    assert f"window {command} [OPTIONS]" in result.output


def test_send_to_window_dry_run_counts_the_audience_and_stores_nothing(
    cli_settings: Settings,  # noqa: F811
    windows_csv: Path,
) -> None:
    assert_clean_exit(run(cli_settings, "window", "import", str(windows_csv)), 0)
    sticker = ("--sticker-id", "798123456789012")
    counted = run(cli_settings, "send", *sticker, "--to-window", "--from", S1, "--dry-run")
    assert_clean_exit(counted, 0)
    assert f"2 customers wrote to {S1}" in counted.stdout and "nothing stored" in counted.stdout
    wide = run(cli_settings, "send", *sticker, "--to-window", "--from", "+919000000002",
               "--since", "2d", "--dry-run", "--json")  # fmt: skip
    assert_clean_exit(wide, 0)
    assert json.loads(wide.stdout) == {
        "sender": "+919000000002", "recipients": 1, "dry_run": True
    }  # fmt: skip
    listed = run(cli_settings, "campaigns", "list", "--json")
    assert json.loads(listed.stdout) == []
    alone = run(cli_settings, "send", *sticker, "--to", A, "--dry-run")
    assert_clean_exit(alone, 2)
    assert "--dry-run goes with --to-window" in alone.stdout + alone.stderr
    both = run(cli_settings, "send", *sticker, "--to", A, "--to-window", "--from", S1)
    assert_clean_exit(both, 2)
    assert "give only one" in both.stdout + both.stderr
