"""`stickerq accounts list`, `config` and `send --account` with two accounts listed: the SIDs,
pods and senders shown, the api-keys never; an unknown account refused with nothing stored."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import SENDER, STICKER_ID
from tests.helpers import Db, stored_counts
from tests.two_accounts import (
    KEY_A,
    KEY_B,
    SENDER_B,
    SID_A,
    SID_B,
    two_account_sandbox_config,
    two_account_settings,
)
from tests.webp import webp

TO = "+919812345678,+919812345679"


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    result = CliRunner().invoke(app, list(args), env=env)
    assert KEY_A not in result.output and KEY_B not in result.output
    return result


def test_accounts_list_shows_each_account_and_never_its_key(
    pg_database: str, redis_prefix: str
) -> None:
    settings = two_account_settings(pg_database, redis_prefix, "http://127.0.0.1:9")
    listed = run(settings, "accounts", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == {
        "source": "STICKERQ_ACCOUNTS",
        "accounts": [
            {
                "sid": SID_A,
                "pod": "in",
                "url": "http://127.0.0.1:9",
                "api_key_set": True,
                "senders": [SENDER],
                "retention_days": None,
            },
            {
                "sid": SID_B,
                "pod": "eu",
                "url": "http://127.0.0.1:9",
                "api_key_set": True,
                "senders": [SENDER_B],
                "retention_days": None,
            },
        ],
    }
    table = run(settings, "accounts", "list")
    assert table.exit_code == 0 and SID_B in table.stdout and SENDER_B in table.stdout
    shown = run(settings, "config", "--json")
    document = json.loads(shown.stdout)
    assert document["accounts"] == "(set)"
    assert [a["sid"] for a in document["accounts_in_force"]] == [SID_A, SID_B]
    assert SID_B in run(settings, "config").stdout


def test_send_names_its_account_and_an_unknown_one_stores_nothing(
    pg_database: str, redis_prefix: str
) -> None:
    settings = two_account_settings(pg_database, redis_prefix, "http://127.0.0.1:9")
    base = ("send", "--sticker-id", STICKER_ID, "--to", TO)
    refused = run(settings, *base, "--account", "HXNOPE")
    assert refused.exit_code == 2
    assert f"no Kaleyra account 'HXNOPE' is configured; known: {SID_A}, {SID_B}" in refused.stderr
    unnamed = run(settings, *base)
    assert unnamed.exit_code == 2 and "--account" in unnamed.stderr
    assert stored_counts(settings) == (0, 0)
    sent = run(settings, *base, "--account", SID_B, "--json")
    assert sent.exit_code == 0, sent.output
    db = Db(settings)
    campaign = db.campaign(json.loads(sent.stdout)["campaign_id"])
    assert (campaign.sid, campaign.sender) == (SID_B, SENDER_B)
    db.close()


def test_a_broken_accounts_file_is_named_by_every_command_that_needs_it(
    pg_database: str, redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(f'[[accounts]]\nsid = "{SID_A}"\napi_key = "{KEY_A}"\npod = "us"\n')
    settings = two_account_settings(
        pg_database, redis_prefix, "http://127.0.0.1:9", accounts="", accounts_file=path
    )
    for command in (["accounts", "list"], ["config"], ["send", "--to", TO]):
        result = run(settings, *command)
        assert result.exit_code == 2, result.output
        assert f"accounts file {path}: entry 1 (sid {SID_A}), pod" in result.stderr


def test_media_upload_goes_to_the_named_account_with_its_key(
    pg_database: str, redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "sticker.webp"
    path.write_bytes(webp())
    with SandboxServer(two_account_sandbox_config()) as sandbox:
        settings = two_account_settings(pg_database, redis_prefix, sandbox.url)
        uploaded = run(settings, "media", "upload", str(path), "--account", SID_B, "--json")
        assert uploaded.exit_code == 0, uploaded.output
        assert json.loads(uploaded.stdout)["sender"] == SENDER_B  # B's only number
        # B's number is not one of A's: refused before any request
        crossed = run(
            settings, "media", "upload", str(path), "--account", SID_A, "--from", SENDER_B
        )
        assert crossed.exit_code == 2 and "not a business number" in crossed.stderr
