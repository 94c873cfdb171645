"""No api-key in logs, exceptions, Celery task arguments, the database or reports."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.logs import make_formatter, secrets_of
from stickerq.models import Base
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import REDIS_URL, STICKER_ID, TEST_API_KEY, make_settings, wait_until
from tests.helpers import Db
from tests.queued import queued_bodies

FAULTS = ["WA500", "WA400", "HTML_502", "DROP", "UNKNOWN_CODE", "NO_MESSAGE_ID"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_api_key_appears_in_no_log_queue_table_or_report(
    sqlite_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    spawn_worker: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    log_format: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(sqlite_database, redis_prefix, sandbox.url, log_format=log_format)
    recipients = [f"+91981234{n:04d}" for n in range(40)]
    sandbox.script({number: [fault] for number, fault in zip(recipients, FAULTS, strict=False)})
    campaign_id = enqueue_campaign(
        settings,
        CampaignRequest(
            sticker_id=STICKER_ID, to=",".join(recipients), ref="r", ref1="r1", ref2="r2"
        ),
    ).campaign_id

    queued = queued_bodies(redis.Redis.from_url(REDIS_URL), redis_prefix)
    assert queued and all(TEST_API_KEY.encode() not in body for body in queued)
    task = json.loads(queued[0])
    assert task["headers"]["task"] == "stickerq.send_batch"

    worker_log = spawn_worker(settings, "--loglevel", "DEBUG")
    db = Db(settings)
    wait_until(lambda: db.settled(campaign_id), timeout=60, interval=0.2)

    env = settings.as_environment()
    runner = CliRunner()
    report = runner.invoke(app, ["status", str(campaign_id)], env=env)
    report_json = runner.invoke(app, ["status", str(campaign_id), "--json"], env=env)
    pauses = runner.invoke(app, ["pauses", "--json"], env=env)
    assert report.exit_code == report_json.exit_code == pauses.exit_code == 0

    dumped = []
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(text(f"SELECT * FROM {table.name}")).all()
            dumped.append(repr(rows))
    everything = {
        "worker log": worker_log.read_text(),
        "captured log": caplog.text,
        "tables": "\n".join(dumped),
        "report": report.output + report_json.output + pauses.output,
    }
    for where, content in everything.items():
        assert TEST_API_KEY not in content, f"the api-key leaked into the {where}"
    # phone numbers are personal data: logs show them masked
    for number in recipients:
        assert number not in everything["worker log"], f"{number} unmasked in the worker log"
    assert "+91******0001" in everything["worker log"]
    # and the run really did something worth grepping
    assert "send_batch" in everything["worker log"]
    if log_format == "json":  # every line a JSON object, the masked number in its field
        lines = [json.loads(line) for line in worker_log.read_text().splitlines() if line]
        about = [line for line in lines if line.get("recipient") == "+91******0001"]
        assert about and about[0]["campaign_id"] == campaign_id
        assert isinstance(about[0]["message_pk"], int)
    db.close()


def test_log_lines_in_both_formats_redact_every_secret_of_the_settings() -> None:
    settings = make_settings(
        "sqlite://",
        "p:",
        "http://127.0.0.1:9",
        api_tokens="rw-token-aaaa-aaaa-aaaa,ro-token-bbbb-bbbb-bbbb:ro",
        metrics_token="metrics-cccc",
    )
    secrets = [TEST_API_KEY, "rw-token-aaaa-aaaa-aaaa", "ro-token-bbbb-bbbb-bbbb", "metrics-cccc"]
    assert set(secrets) <= set(secrets_of(settings))
    try:
        raise ValueError(f"bad key {TEST_API_KEY}")
    except ValueError:
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, "POST %s %s", None, sys.exc_info()
        )
    record.args = (
        "/callbacks/kaleyra/rw-token-aaaa-aaaa-aaaa",
        "ro-token-bbbb-bbbb-bbbb metrics-cccc",
    )
    for log_format in ("text", "json"):
        line = make_formatter(log_format, secrets_of(settings)).format(record)  # type: ignore[arg-type]
        assert not any(secret in line for secret in secrets), line
        assert "/callbacks/kaleyra/***" in line
        assert "ValueError" in line
    parsed = json.loads(make_formatter("json", secrets_of(settings)).format(record))
    assert parsed["logger"] == "uvicorn.access" and "bad key ***" in parsed["exception"]


ACCOUNT_KEYS = ["acct-key-one-5e1f", "acct-key-two-9b3d"]


def every_secret_setting(**listed: object) -> tuple[Settings, list[str]]:
    """Settings with each SecretStr setting set to a value of its own (a setting added later
    is included by its type), the accounts as `listed` says; and every secret they hold."""
    values: dict[str, object] = {
        name: f"{name}-secret-{index:04d}"
        for index, (name, field) in enumerate(Settings.model_fields.items())
        if field.annotation is SecretStr and name != "accounts"
    }
    values["callback_basic_auth"] = "kaleyra-user:basic-pass-7c2a"
    values.update(listed)
    if listed:  # each listed account has its own key: the single one must be unset
        values["kaleyra_api_key"] = ""
    settings = make_settings("sqlite://", "p:", "http://127.0.0.1:9", **values)
    secrets = [str(value) for name, value in values.items() if name in Settings.model_fields]
    secrets = [secret for secret in secrets if secret and not secret.startswith(("[", "/"))]
    secrets += ["basic-pass-7c2a", base64.b64encode(b"kaleyra-user:basic-pass-7c2a").decode()]
    if listed:
        secrets += ACCOUNT_KEYS
    return settings, secrets


@pytest.mark.parametrize("listed", ["none", "variable", "file"])
def test_a_log_line_holding_every_secret_setting_and_account_key_shows_none(
    tmp_path: Path, listed: str
) -> None:
    accounts = json.dumps(
        [{"sid": f"HXIN{n}", "api_key": key} for n, key in enumerate(ACCOUNT_KEYS)]
    )
    where: dict[str, object] = {}
    if listed == "variable":
        where["accounts"] = accounts
    elif listed == "file":
        where["accounts_file"] = tmp_path / "accounts.json"
        (tmp_path / "accounts.json").write_text(accounts)
    settings, secrets = every_secret_setting(**where)
    record = logging.LogRecord("stickerq", logging.INFO, __file__, 1, "%s", None, None)
    record.args = (" | ".join(secrets),)

    for log_format in ("text", "json"):
        line = make_formatter(log_format, secrets_of(settings)).format(record)  # type: ignore[arg-type]
        assert not [secret for secret in secrets if secret in line], line


PRODUCT = [
    Path(__file__).resolve().parents[1] / name for name in ("stickerq", "worker", "producer")
]
BUILT_SQL = re.compile(
    r"""(text|exec_driver_sql|execute)\(\s*f["']|["'](SELECT|INSERT|UPDATE|DELETE)\b[^"']*["']\s*%""",
    re.IGNORECASE,
)


def test_sql_is_only_built_with_bound_parameters() -> None:
    """No SQL made by formatting strings in the product code: values go as parameters."""
    offenders = [
        f"{path}:{number}"
        for package in PRODUCT
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BUILT_SQL.search(line)
    ]
    assert offenders == []
