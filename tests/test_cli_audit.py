"""The audit log through the CLI, on PostgreSQL and Redis (no worker): every command that
changes something records its entry under `cli:<user>@<host>` (a dry run and a refusal do
not), and `stickerq audit` reads them back, filtered, as a table or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import update
from typer.testing import CliRunner

from stickerq.actors import cli_actor
from stickerq.audit import record
from stickerq.cli import app
from stickerq.db import make_engine, make_session_factory
from stickerq.models import Campaign, Message, Pause, utcnow
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import SENDER, STICKER_ID, make_settings

A, B = "+919812377701", "+919812377702"
KEY = "cli-audit-erasure-key-0123456789"


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", erasure_key=KEY)


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="250")
    return CliRunner().invoke(app, list(args), env=env)


def ok(settings: Settings, *args: str) -> Result:
    result = run(settings, *args)
    assert result.exit_code == 0, result.output
    return result


def audit(settings: Settings, *args: str) -> dict[str, Any]:
    page: dict[str, Any] = json.loads(ok(settings, "audit", "--json", *args).stdout)
    return page


def test_each_command_records_its_change_under_the_cli_user(
    cli_settings: Settings, tmp_path: Path
) -> None:
    sessions = make_session_factory(make_engine(cli_settings.database_url))
    sid = cli_settings.kaleyra_sid
    sent = json.loads(
        ok(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", f"{A},{B}", "--json").stdout
    )
    made = sent["campaign_id"]
    ok(cli_settings, "campaigns", "pause", str(made), "--reason", "wrong sticker")
    ok(cli_settings, "campaigns", "resume", str(made))
    with sessions.begin() as session:  # what a worker would have done: failed, completed
        session.execute(
            update(Message).values(status=MessageStatus.FAILED, last_error_code="WA400")
        )
        session.execute(
            update(Campaign).values(status=CampaignStatus.COMPLETED, finished_at=utcnow())
        )
    ok(cli_settings, "requeue", "--campaign", str(made), "--status", "failed", "--dry-run")
    ok(cli_settings, "requeue", "--campaign", str(made), "--status", "failed")
    ok(cli_settings, "campaigns", "cancel", str(made), "--yes")
    ok(cli_settings, "suppress", "add", A, "--reason", "STOP")
    csv = tmp_path / "optouts.csv"
    csv.write_text(f"phone\n{B}\n")
    ok(cli_settings, "suppress", "import", str(csv))
    ok(cli_settings, "suppress", "remove", B)
    ok(cli_settings, "senders", "set-rate", SENDER, "20")
    ok(cli_settings, "senders", "reset", SENDER)
    with sessions.begin() as session:  # the pause a worker records after E110
        session.add(Pause(scope="account", sid=sid, code="E110", reason="balance"))
    ok(cli_settings, "resume", "--account", sid)
    ok(cli_settings, "purge", "--campaign", str(made), "--dry-run")
    ok(cli_settings, "purge", "--campaign", str(made))
    ok(cli_settings, "erase", A, "--dry-run")
    ok(cli_settings, "erase", A)
    assert run(cli_settings, "campaigns", "pause", str(made)).exit_code == 2  # refused

    page = audit(cli_settings, "--show-numbers")
    found = [(e["actor"], e["action"], e["target"]) for e in reversed(page["entries"])]
    me, campaign = cli_actor(), f"campaign:{made}"
    erased = next(e for e in page["entries"] if e["action"] == "number.erased")["target"]
    assert found == [
        (me, "campaign.created", campaign),
        (me, "campaign.paused", campaign),
        (me, "campaign.resumed", campaign),
        (me, "campaign.requeued", campaign),
        (me, "campaign.cancelled", campaign),
        (me, "suppression.added", erased.replace("number:", "suppression:")),  # A: erased
        (me, "suppressions.imported", f"account:{sid}"),
        (me, "suppression.removed", f"suppression:{B}"),
        (me, "sender_rate.set", f"sender:{SENDER}"),
        (me, "sender_rate.reset", f"sender:{SENDER}"),
        (me, "pause.lifted", f"account:{sid}"),
        (me, "campaign.purged", campaign),
        (me, "number.erased", erased),
    ]
    assert me.startswith("cli:") and erased.startswith("number:hmac:")
    requeued = next(e for e in page["entries"] if e["action"] == "campaign.requeued")
    assert requeued["params"] == {"status": "failed", "code": None, "requeued": 2}
    assert A.removeprefix("+") not in json.dumps(page)


def test_audit_filters_masks_numbers_and_says_when_more_matched(cli_settings: Settings) -> None:
    sessions = make_session_factory(make_engine(cli_settings.database_url))
    with sessions.begin() as session:
        for n in range(3):
            record(session, "key:crm", "suppression.added", f"suppression:{A}", n=n)
        record(session, "env:1", "campaign.paused", "campaign:7", reason="x")

    page = audit(cli_settings)
    assert [e["target"] for e in page["entries"]] == ["campaign:7"] + [
        "suppression:+91******7701"
    ] * 3
    assert page["more"] is False and page["actor"] is None
    assert [e["actor"] for e in audit(cli_settings, "--actor", "env:1")["entries"]] == ["env:1"]
    assert audit(cli_settings, "--since", "2030-01-01T00:00Z")["entries"] == []
    shown = audit(cli_settings, "--show-numbers", "--limit", "2")
    assert [e["target"] for e in shown["entries"]] == ["campaign:7", f"suppression:{A}"]
    assert shown["more"] is True

    table = ok(cli_settings, "audit", "--limit", "2")
    assert "campaign.paused" in table.stdout and "suppression:+91******7701" in table.stdout
    assert A not in table.stdout
    assert "more:" in table.stderr and "--limit" in table.stderr
    nothing = ok(cli_settings, "audit", "--actor", "key:nobody")
    assert "no change by key:nobody since" in nothing.stdout

    bad = run(cli_settings, "audit", "--since", "last week")
    assert bad.exit_code == 2 and "--since 'last week' is neither a duration" in bad.stderr
    assert run(cli_settings, "audit", "--limit", "0").exit_code == 2
