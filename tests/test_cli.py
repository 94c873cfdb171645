"""The `stickerq` command line: help, send (errors, JSON, --wait), status, pauses, resume and
db upgrade, against real PostgreSQL / SQLite, Redis, the sandbox and a Celery worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from click.testing import Result
from sqlalchemy import inspect
from typer.testing import CliRunner

from stickerq.cli import app, sending
from stickerq.db import make_engine
from stickerq.pauses import pause_keys
from stickerq.queue import queued_tasks
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import STICKER_ID, make_settings, wait_until
from tests.helpers import Db, stored_counts
from tests.key_holder import KeyHolder

RECIPIENTS = [f"+91981234{n:04d}" for n in range(12)]
SUBCOMMANDS = [
    ["db"],
    ["db", "upgrade"],
    ["db", "current"],
    ["db", "history"],
    ["db", "downgrade"],
    ["db", "vacuum"],
    ["config"],
    ["sandbox"],
    ["worker"],
    ["beat"],
    ["send"],
    ["status"],
    ["pauses"],
    ["resume"],
    ["demo"],
    ["failures"],
    ["messages", "show"],
    ["requeue"],
    ["report"],
    ["export"],
    ["reschedule"],
    ["schedules", "list"],
    ["schedules", "stop"],
    ["campaigns", "list"],
    ["campaigns", "show"],
    ["campaigns", "pause"],
    ["campaigns", "resume"],
    ["campaigns", "cancel"],
    ["media", "upload"],
    ["suppress", "add"],
    ["suppress", "remove"],
    ["suppress", "list"],
    ["suppress", "import"],
    ["purge"],
]


def environment(settings: Settings, **extra: str) -> dict[str, str | None]:
    """Exactly these settings as STICKERQ_* variables (any others unset), wide rich output."""
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment())
    env.update(COLUMNS="200", **extra)
    return env


def run(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=environment(settings))


def assert_clean_exit(result: Result, code: int) -> None:
    """The expected exit code, and no traceback or escaped exception."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def queue_length(settings: Settings) -> int:
    return queued_tasks(redis.Redis.from_url(settings.redis_url), settings.redis_prefix)


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    """PostgreSQL and Redis, no worker: nothing is sent."""
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", batch_size=5)


@pytest.fixture
def db(settings: Settings) -> Iterator[Db]:
    reader = Db(settings)
    yield reader
    reader.close()


# --- help -------------------------------------------------------------------------------------


def test_installed_stickerq_script_prints_help() -> None:
    script = Path(sys.executable).parent / "stickerq"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Bulk sender of Kaleyra WhatsApp sticker messages" in done.stdout
    for command in ("db", "sandbox", "worker", "beat", "send", "status", "pauses", "resume"):
        assert command in done.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert_clean_exit(result, 0)
    [usage] = [line for line in result.output.splitlines() if "Usage:" in line]
    assert f" {' '.join(command)} [OPTIONS]" in usage


def test_send_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["send", "--help"], env={"COLUMNS": "200"})
    assert_clean_exit(result, 0)
    for option in ("--sticker-id", "--sticker-link", "--to-file", "--from", "--skip-invalid"):
        assert option in result.output
    for option in ("--wait", "--json", "--wa-source", "--ref1"):
        assert option in result.output


# --- send: rejections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--sticker-id", STICKER_ID, "--to", f"{RECIPIENTS[0]},+91123,abc"],
            ["2 invalid recipient(s)", "nothing was stored", "too short for a +91 number", "abc"],
        ),
        (["--to", RECIPIENTS[0]], ["sticker", "no sticker given"]),
        (
            ["--sticker-id", STICKER_ID, "--sticker-link", "https://e.com/s.webp", "--to", "+91"],
            ["both a media id and a link given"],
        ),
        (
            ["--sticker-link", "http://example.com/s.webp", "--to", RECIPIENTS[0]],
            ["sticker_link", "the link must be https, not http"],
        ),
        (["--sticker-id", STICKER_ID], ["no recipients"]),
        (["--sticker-id", STICKER_ID, "--to-file", "/nonexistent/r.csv"], ["no such file"]),
        (["--sticker-id", STICKER_ID, "--to", RECIPIENTS[0], "--from", "12"], ["sender"]),
    ],
    ids=["invalid-numbers", "no-sticker", "id-and-link", "http-link", "no-recipients",
         "missing-file", "bad-sender"],
)  # fmt: skip
def test_send_with_bad_input_exits_2_with_a_readable_error_and_stores_nothing(
    cli_settings: Settings, args: list[str], expected: list[str]
) -> None:
    result = run(cli_settings, "send", *args)

    assert_clean_exit(result, 2)
    assert "error:" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert result.stdout == ""
    assert stored_counts(cli_settings) == (0, 0)
    assert queue_length(cli_settings) == 0


def test_send_rejection_shows_each_invalid_row_with_its_line_and_reason(
    cli_settings: Settings, tmp_path: Path
) -> None:
    csv_file = tmp_path / "r.csv"
    csv_file.write_text(f"phone,ref\n{RECIPIENTS[0]},a\n+91123,b\n{RECIPIENTS[1]},c\nabc,d\n")

    result = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to-file", str(csv_file))

    assert_clean_exit(result, 2)
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stderr.splitlines()
        if line.startswith("│")
    ]
    assert cells == [
        ["3", "+91123", "too short for a +91 number"],
        ["5", "abc", "only digits, a leading +, spaces, dashes, dots and parentheses are allowed"],
    ]
    assert "--skip-invalid" in result.stderr
    assert stored_counts(cli_settings) == (0, 0)


def test_send_with_a_malformed_csv_exits_2_naming_file_and_line(
    cli_settings: Settings, tmp_path: Path
) -> None:
    csv_file = tmp_path / "r.csv"
    csv_file.write_bytes(b"phone\n+919812340000\n+91981234\xff0001\n")

    result = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to-file", str(csv_file))

    assert_clean_exit(result, 2)
    assert "line 3: the file is not UTF-8" in result.stderr.replace("\n", "")
    assert stored_counts(cli_settings) == (0, 0)


def test_send_with_redis_down_exits_1_and_stores_nothing(cli_settings: Settings) -> None:
    settings = cli_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    result = run(settings, "send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0])

    assert_clean_exit(result, 1)
    assert "Redis is not reachable" in result.stderr
    assert stored_counts(settings) == (0, 0)


# --- send: success ----------------------------------------------------------------------------


def test_send_json_prints_one_json_object_with_the_result(cli_settings: Settings) -> None:
    to = ",".join([*RECIPIENTS[:7], RECIPIENTS[0]])
    result = run(
        cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to,
        "--wa-source", "nosuchsource", "--json",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    assert len(result.stdout.strip().splitlines()) == 1
    document = json.loads(result.stdout)
    assert isinstance(document["campaign_id"], int)
    assert document["recipients"] == 7
    assert document["duplicates"] == 1
    assert document["invalid_count"] == 0
    assert document["invalid"] == []
    assert document["batches"] == 2  # batch_size 5
    [warning] = document["warnings"]
    assert "'nosuchsource'" in warning
    assert stored_counts(cli_settings) == (1, 7)
    assert queue_length(cli_settings) == 2


def test_send_skip_invalid_exits_0_storing_valid_rows_and_listing_the_rest(
    cli_settings: Settings,
) -> None:
    to = f"{RECIPIENTS[0]},+91123,{RECIPIENTS[1]}"
    result = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to, "--skip-invalid")

    assert_clean_exit(result, 0)
    assert "too short for a +91 number" in result.stderr
    assert (
        "2 recipients (0 duplicates dropped, 1 invalid skipped, 0 suppressed), 1 batches queued"
        in (result.stdout)
    )
    assert stored_counts(cli_settings) == (1, 2)

    as_json = run(
        cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to, "--skip-invalid", "--json"
    )
    assert_clean_exit(as_json, 0)
    document = json.loads(as_json.stdout)
    assert (document["recipients"], document["invalid_count"]) == (2, 1)
    assert document["invalid"] == [
        {"line": 2, "value": "+91123", "reason": "too short for a +91 number"}
    ]


# --- status -----------------------------------------------------------------------------------


def test_status_json_counts_a_stored_campaign_by_status(cli_settings: Settings) -> None:
    sent = run(
        cli_settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS[:3]),
        "--name", "spring", "--json",
    )  # fmt: skip
    campaign_id = json.loads(sent.stdout)["campaign_id"]

    result = run(cli_settings, "status", str(campaign_id), "--json")

    assert_clean_exit(result, 0)
    document = json.loads(result.stdout)
    assert document["campaign_id"] == campaign_id
    assert (document["name"], document["status"], document["recipients"]) == ("spring", "queued", 3)
    assert document["by_status"] == {"pending": 3}
    assert document["by_code"] == {}
    assert (document["settled"], document["pause"]) == (False, None)

    table = run(cli_settings, "status", str(campaign_id))
    assert_clean_exit(table, 0)
    assert f"campaign {campaign_id}: spring (queued)" in table.stdout
    assert "pending" in table.stdout


def test_status_of_an_unknown_campaign_exits_2_with_a_message(cli_settings: Settings) -> None:
    result = run(cli_settings, "status", "424242", "--json")

    assert_clean_exit(result, 2)
    assert "no campaign 424242" in result.stderr
    assert result.stdout == ""


def test_status_of_an_unknown_campaign_only_suggests_commands_that_exist(
    cli_settings: Settings,
) -> None:
    result = run(cli_settings, "status", "424242")

    assert_clean_exit(result, 2)
    suggested = re.findall(r"`stickerq ([a-z][a-z -]*?)`", result.stderr)
    for command in suggested:
        helped = CliRunner().invoke(app, [*command.split(), "--help"])
        assert helped.exit_code == 0, f"`stickerq {command}` does not exist: {helped.output}"


# --- with a worker and the sandbox ------------------------------------------------------------


def test_send_wait_exits_0_once_every_message_is_settled_and_prints_the_report(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None], db: Db
) -> None:
    run_worker(settings)
    result = run(
        settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS[:8]),
        "--name", "waited", "--wait",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    assert "every message is settled" in result.stdout
    campaign_id = int(re.search(r"campaign (\d+): waited", result.stdout).group(1))  # type: ignore[union-attr]
    assert re.search(r"sent\s*\W\s*8\b", result.stdout), result.stdout  # the report table
    assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.SENT}
    assert sandbox.stats()["accepted_total"] == 8

    status = run(settings, "status", str(campaign_id), "--json")
    assert_clean_exit(status, 0)
    document = json.loads(status.stdout)
    assert document["by_status"] == {"sent": 8}
    assert document["settled"] is True
    assert document["attempts"] == 8


def test_send_wait_json_prints_one_object_with_the_final_progress(
    settings: Settings, run_worker: Callable[[Settings], None]
) -> None:
    run_worker(settings)
    result = run(
        settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS[:3]),
        "--wait", "--json",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    assert len(result.stdout.strip().splitlines()) == 1
    document = json.loads(result.stdout)
    assert (document["recipients"], document["batches"]) == (3, 1)
    assert document["progress"]["campaign_id"] == document["campaign_id"]
    assert document["progress"]["by_status"] == {"sent": 3}
    assert document["progress"]["settled"] is True


def test_send_wait_returns_saying_the_campaign_cannot_go_on_when_the_account_is_paused(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None], db: Db
) -> None:
    settings = settings.model_copy(update={"in_flight": 1, "batch_size": 2})
    sandbox.script({RECIPIENTS[0]: ["E110"]})
    run_worker(settings)

    result = run(
        settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS), "--wait"
    )

    assert_clean_exit(result, 3)  # not 0: messages wait for an operator
    assert "campaign cannot go on: account paused after E110" in result.stdout
    assert f"stickerq resume --account {settings.kaleyra_sid}" in result.stdout
    assert "every message is settled" not in result.stdout
    [pause] = db.active_pauses()
    assert (pause.scope, pause.code) == ("account", "E110")
    campaign_id = int(re.search(r"campaign (\d+):", result.stdout).group(1))  # type: ignore[union-attr]
    statuses = {m.recipient: m.status for m in db.messages(campaign_id)}
    assert statuses[RECIPIENTS[0]] == MessageStatus.PARKED
    assert MessageStatus.PENDING in statuses.values()
    assert MessageStatus.SENDING not in statuses.values()


def test_pauses_lists_the_e110_pause_and_resume_account_lifts_it_and_sends_the_rest(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None], db: Db
) -> None:
    settings = settings.model_copy(update={"in_flight": 1, "batch_size": 2})
    sandbox.script({RECIPIENTS[0]: ["E110"]})
    run_worker(settings)
    sent = run(settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS), "--json")
    campaign_id = json.loads(sent.stdout)["campaign_id"]

    def paused_and_nothing_in_flight() -> bool:
        sending = [m for m in db.messages(campaign_id) if m.status == MessageStatus.SENDING]
        return bool(db.active_pauses()) and not sending

    wait_until(paused_and_nothing_in_flight)

    listed = run(settings, "pauses", "--json")
    assert_clean_exit(listed, 0)
    [pause] = json.loads(listed.stdout)
    assert (pause["scope"], pause["sid"], pause["sender"], pause["code"]) == (
        "account",
        settings.kaleyra_sid,
        "",
        "E110",
    )
    assert pause["reason"]
    assert pause["since"]
    table = run(settings, "pauses")
    assert_clean_exit(table, 0)
    assert "E110" in table.stdout

    lifted = run(settings, "resume", "--account", settings.kaleyra_sid)

    assert_clean_exit(lifted, 0)
    assert "lifted 1 pause(s)" in lifted.stdout
    after = run(settings, "pauses", "--json")
    assert_clean_exit(after, 0)
    assert json.loads(after.stdout) == []
    account_key, _ = pause_keys(settings.redis_prefix, settings.kaleyra_sid, "")
    assert not redis.Redis.from_url(settings.redis_url).exists(account_key)

    wait_until(lambda: db.settled(campaign_id))
    status = run(settings, "status", str(campaign_id), "--json")
    document = json.loads(status.stdout)
    assert document["by_status"] == {"parked": 1, "sent": len(RECIPIENTS) - 1}
    assert document["by_code"]["E110"] == 1
    assert document["pause"] is None
    assert sandbox.stats()["accepted_total"] == len(RECIPIENTS) - 1


def test_resume_needs_exactly_one_of_account_and_sender(cli_settings: Settings) -> None:
    for args in ([], ["--account", "SID", "--sender", "+919000000001"]):
        result = run(cli_settings, "resume", *args)
        assert_clean_exit(result, 2)
        assert "give exactly one of --account SID or --sender" in result.stderr


# --- db upgrade -------------------------------------------------------------------------------


def test_db_upgrade_creates_the_tables_in_a_fresh_sqlite_file(
    tmp_path: Path, redis_prefix: str
) -> None:
    path = tmp_path / "fresh.db"
    settings = make_settings(f"sqlite:///{path}", redis_prefix, "http://127.0.0.1:9")

    result = run(settings, "db", "upgrade")

    assert_clean_exit(result, 0)
    assert "is at head" in result.stdout
    engine = make_engine(settings.database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"campaigns", "messages", "attempts", "pauses", "alembic_version"} <= tables
    again = run(settings, "db", "upgrade")  # a second run is a no-op
    assert_clean_exit(again, 0)
    sent = run(settings, "send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0], "--json")
    assert_clean_exit(sent, 0)
    assert stored_counts(settings) == (1, 1)


def test_db_current_history_and_downgrade_say_where_the_schema_stands(
    tmp_path: Path, redis_prefix: str
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'db.db'}", redis_prefix, "http://127.0.0.1:9")
    never = run(settings, "db", "current")
    assert_clean_exit(never, 0)
    assert "was never upgraded: run `stickerq db upgrade`" in never.stdout

    history = run(settings, "db", "history")
    assert_clean_exit(history, 0)
    revisions = [line.split()[0] for line in history.stdout.splitlines()]
    assert revisions[0] == "0001" and len(revisions) >= 3
    head = revisions[-1]

    assert_clean_exit(run(settings, "db", "upgrade"), 0)
    assert f"is at {head} (head)" in run(settings, "db", "current").stdout

    refused = CliRunner().invoke(
        app, ["db", "downgrade", "0001"], env=environment(settings), input="n\n"
    )
    assert_clean_exit(refused, 2)
    assert f"is at {head} (head)" in run(settings, "db", "current").stdout
    assert_clean_exit(run(settings, "db", "downgrade", "0001", "--yes"), 0)
    behind = run(settings, "db", "current").stdout
    assert f"is at 0001; head is {head}: run `stickerq db upgrade`" in behind


def test_an_unmigrated_database_gets_advice_not_a_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STICKERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "stickerq", "status", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "stickerq db upgrade" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert_clean_exit(result, 0)
    assert re.fullmatch(r"stickerq \d+\.\d+\.\d+\S*\n", result.stdout)


def test_pauses_with_none_in_force_says_so_instead_of_an_empty_table(settings: Settings) -> None:
    result = run(settings, "pauses")
    assert_clean_exit(result, 0)
    assert result.stdout == "no pause in force: every account and sender may send\n"
    assert json.loads(run(settings, "pauses", "--json").stdout) == []


def test_config_shows_where_the_default_database_is_and_never_the_api_key(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    env = {**environment(settings), "STICKERQ_DATABASE_URL": None}  # unset: the default
    result = CliRunner().invoke(app, ["config", "--json"], env=env)
    assert_clean_exit(result, 0)
    shown = json.loads(result.stdout)
    assert shown["database_url"] == f"sqlite:///{tmp_path / 'data' / 'stickerq' / 'stickerq.db'}"
    assert shown["kaleyra_api_key"] == "(set)"
    assert settings.kaleyra_api_key.get_secret_value() not in result.stdout
    table = CliRunner().invoke(app, ["config"], env=env)
    assert_clean_exit(table, 0)
    assert "STICKERQ_DATABASE_URL" in table.stdout
    assert settings.kaleyra_api_key.get_secret_value() not in table.stdout


def test_the_default_sqlite_file_is_the_same_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("STICKERQ_DATABASE_URL", raising=False)
    urls = set()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        urls.add(Settings(_env_file=None).database_url)  # type: ignore[call-arg]
    [url] = urls
    engine = make_engine(url)  # its folder is made on first use
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    engine.dispose()
    assert (tmp_path / "data" / "stickerq" / "stickerq.db").exists()


def test_help_loads_neither_the_database_nor_the_queue_libraries() -> None:
    # What keeps `stickerq --help` fast: the commands import these inside their bodies.
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from stickerq.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "heavy = ('sqlalchemy', 'pydantic', 'celery', 'redis', 'phonenumbers', 'producer')\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & set(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_send_with_an_idempotency_key_twice_makes_one_campaign(cli_settings: Settings) -> None:
    args = ("send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0], "--idempotency-key", "k1")
    first = run(cli_settings, *args, "--json")
    again = run(cli_settings, *args, "--json")
    other = run(cli_settings, *args[:-3], RECIPIENTS[1], *args[-2:])

    assert_clean_exit(first, 0)
    assert_clean_exit(again, 0)
    assert json.loads(again.stdout)["campaign_id"] == json.loads(first.stdout)["campaign_id"]
    assert_clean_exit(other, 2)
    assert "different request" in other.output
    assert stored_counts(cli_settings) == (1, 1)


KEYED = ("send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0], "--idempotency-key", "k2")
KEYED_BODY = {"sticker_id": STICKER_ID, "recipients": RECIPIENTS[0]}  # what KEYED asks for


def test_send_with_a_key_another_process_is_storing_waits_for_it(cli_settings: Settings) -> None:
    with (
        KeyHolder(cli_settings.database_url, cli_settings.redis_prefix, "k2", KEYED_BODY) as first,
        ThreadPoolExecutor(1) as pool,
    ):
        waiting = pool.submit(run, cli_settings, *KEYED, "--json")
        time.sleep(3)  # the command has met the key in use and waits after its Retry-After
        made = first.store()
        done = waiting.result(timeout=60)
    assert_clean_exit(done, 0)
    assert "still storing its campaign: waiting for it" in done.output
    assert json.loads(done.stdout)["campaign_id"] == made
    assert stored_counts(cli_settings) == (1, 1)


def test_send_with_a_key_stored_too_long_by_another_process_says_what_to_do(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "KEY_IN_USE_WAIT_SECONDS", 1.5)
    with KeyHolder(cli_settings.database_url, cli_settings.redis_prefix, "k2", KEYED_BODY):
        busy = run(cli_settings, *KEYED)
    assert_clean_exit(busy, 2)
    assert "is still storing its campaign after 2 s" in busy.output
    assert "run it again later" in busy.output
    assert stored_counts(cli_settings) == (0, 0)
