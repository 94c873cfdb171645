"""`stickerq erase` through the CLI on PostgreSQL: a dry run counts, an erase removes and
prints rows per table (and JSON), a second one finds nothing, bad input exits 2 with why."""

from __future__ import annotations

import json

from stickerq.settings import Settings
from tests.conftest import STICKER_ID
from tests.test_cli_suppress import cli_settings, run  # noqa: F401 (a fixture)

A, B = "+919812340000", "+919812340001"


def test_erase_dry_run_then_erase_then_nothing(cli_settings: Settings) -> None:  # noqa: F811
    sent = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", f"{A},{B}")
    assert sent.exit_code == 0, sent.output

    dry = run(cli_settings, "erase", "+91 98123 40000", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    counted = json.loads(dry.stdout)
    assert (counted["dry_run"], counted["removed"]["messages"]) == (True, 1)

    erased = run(cli_settings, "erase", A)
    assert erased.exit_code == 0, erased.output
    assert "rows removed" in erased.stdout and "+91******0000" in erased.stdout
    assert A not in erased.output
    assert "messages" in erased.stdout and "1 campaign(s) had a message to it" in erased.stdout

    again = run(cli_settings, "erase", A, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["found"] is False
    assert "nothing found" in run(cli_settings, "erase", A).stdout


def test_erase_refuses_bad_numbers_and_a_suppressed_one_without_the_key(
    cli_settings: Settings,  # noqa: F811
) -> None:
    bad = run(cli_settings, "erase", "not-a-number")
    assert bad.exit_code == 2 and "is not a phone number" in bad.stderr
    assert run(cli_settings, "suppress", "add", A).exit_code == 0
    refused = run(cli_settings, "erase", A)
    assert refused.exit_code == 2
    assert "STICKERQ_ERASURE_KEY" in refused.stderr and "nothing was erased" in refused.stderr
