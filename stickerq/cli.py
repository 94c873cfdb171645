"""The `stickerq` command: a thin shell over the producer and worker functions."""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stickerq import cli_callbacks, cli_campaigns, cli_failures, cli_reports, cli_schedules
from stickerq.errors import ServiceUnavailable, StickerqError
from stickerq.settings import Settings

app = typer.Typer(help="Bulk sender of Kaleyra WhatsApp sticker messages.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True)

EXIT_REJECTED = 2
EXIT_UNAVAILABLE = 1
EXIT_PAUSED = 3  # `send --wait`: a pause holds messages that are not settled


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"stickerq {version('stickerq')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Bulk sender of Kaleyra WhatsApp sticker messages."""


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError on a bad STICKERQ_* value
        err_console.print(f"[red]configuration error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_REJECTED) from None


def _fail(exc: StickerqError) -> typer.Exit:
    err_console.print(f"[red]error:[/] {escape(str(exc))}")
    code = EXIT_UNAVAILABLE if isinstance(exc, ServiceUnavailable) else EXIT_REJECTED
    return typer.Exit(code)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def config(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the settings in force (STICKERQ_* variables, .env, defaults): where the database
    is, which Redis and prefix, which account; the api-key only as set or not."""
    from stickerq.masking import redact_url

    settings = _settings()
    shown: dict[str, object] = settings.model_dump(mode="json")
    shown["kaleyra_api_key"] = "(set)" if settings.kaleyra_api_key.get_secret_value() else None
    shown["database_url"] = redact_url(settings.database_url)
    shown["redis_url"] = redact_url(settings.redis_url)
    if as_json:
        print(json.dumps(shown))
        return
    table = Table(title="stickerq settings")
    table.add_column("variable")
    table.add_column("value")
    for name, value in shown.items():
        text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
        table.add_row(f"STICKERQ_{name.upper()}", escape(text))
    console.print(table)


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at, and whether that is the newest."""
    from stickerq.masking import redact_url
    from stickerq.migrate import current, head

    settings = _settings()
    at, newest = current(settings.database_url), head()
    where = redact_url(settings.database_url)
    if at is None:
        console.print(f"database {where} was never upgraded: run `stickerq db upgrade`")
    elif at == newest:
        console.print(f"database {where} is at {at} (head)")
    else:
        console.print(f"database {where} is at {at}; head is {newest}: run `stickerq db upgrade`")


@db_app.command("history")
def db_history() -> None:
    """List the migrations this version ships, oldest first."""
    from stickerq.migrate import history

    for revision, doc in history():
        console.print(f"{revision}  {escape(doc)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="the revision to go back to (`base`: no tables)"),
    yes: bool = typer.Option(False, "--yes", help="do not ask first"),
) -> None:
    """Undo migrations down to REVISION. What later migrations stored is dropped."""
    from stickerq.masking import redact_url
    from stickerq.migrate import downgrade

    settings = _settings()
    where = redact_url(settings.database_url)
    if not yes and not typer.confirm(f"downgrade {where} to {revision}, dropping data?"):
        raise typer.Exit(EXIT_REJECTED)
    downgrade(settings.database_url, revision)
    console.print(f"database {where} is at {revision}")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the Alembic migrations up to REVISION (default: head)."""
    from stickerq.masking import redact_url
    from stickerq.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    console.print(f"database {redact_url(settings.database_url)} is at {revision}")


@app.command()
def sandbox(
    port: int = 8077,
    host: str = "127.0.0.1",
    sid: str = typer.Option("HXAP16XXXXXX97IN", help="account SID the sandbox accepts"),
    api_key: str = typer.Option("sandbox-key", envvar="STICKERQ_SANDBOX_API_KEY"),
    sender: list[str] = typer.Option(["+919000000001"], help="registered sender (repeatable)"),
    latency_ms: float = typer.Option(0.0, help="added to every send"),
    wa500_rate: float = typer.Option(0.0, help="fraction of sends answered WA500"),
    balance: int | None = typer.Option(None, help="answer E110 after this many accepted sends"),
    seed: int | None = typer.Option(None, help="seed of the random WA500s"),
) -> None:
    """Run the Kaleyra-compatible sandbox API (with fault injection)."""
    from stickerq.sandbox import SandboxConfig, run_sandbox

    config = SandboxConfig(
        sid=sid,
        api_key=api_key,
        senders=frozenset(sender),
        latency_ms=latency_ms,
        wa500_rate=wa500_rate,
        balance=balance,
        seed=seed,
    )
    console.print(f"sandbox on http://{host}:{port} (sid {sid}, senders {', '.join(sender)})")
    run_sandbox(config, host=host, port=port)


def _start_celery(settings: Settings) -> None:
    from worker import runtime
    from worker.celery_app import configure_celery
    from worker.quiet_logs import quiet_periodic_tasks

    app = configure_celery(settings)
    quiet_periodic_tasks(entry["task"] for entry in app.conf.beat_schedule.values())
    runtime.configure(settings)


@app.command()
def worker(
    beat: bool = typer.Option(False, help="also run the beat scheduler (due retries)"),
    concurrency: int = typer.Option(2, help="worker processes"),
    pool: str = typer.Option("prefork", help="prefork, threads or solo"),
    loglevel: str = "INFO",
    quiet: bool = typer.Option(False, help="no start-up banner"),
) -> None:
    """Run a Celery worker that sends the queued batches."""
    from worker.celery_app import app as celery_app
    from worker.celery_app import worker_queues

    settings = _settings()
    _logging(loglevel)
    _start_celery(settings)
    argv = ["worker", f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={loglevel}"]
    argv += ["--queues", ",".join(worker_queues()), "--without-gossip", "--without-mingle"]
    if beat:
        argv += ["--beat", f"--scheduler={BEAT_SCHEDULER}"]
    celery_app.start((["--quiet"] if quiet else []) + argv)


@app.command()
def beat(loglevel: str = "INFO") -> None:
    """Run the beat scheduler alone (dispatches due retries)."""
    from worker.celery_app import app as celery_app

    settings = _settings()
    _logging(loglevel)
    _start_celery(settings)
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--scheduler={BEAT_SCHEDULER}"])


# Beat keeps its schedule in memory: every entry runs every few seconds and scheduled work
# lives in the database, so the default PersistentScheduler's shelve files in /tmp (three
# per run) kept nothing worth keeping.
BEAT_SCHEDULER = "celery.beat:Scheduler"


@app.command()
def send(
    sticker_id: str | None = typer.Option(None, help="uploaded media id of the sticker"),
    sticker_link: str | None = typer.Option(None, help="https URL of the sticker (WebP)"),
    to: str | None = typer.Option(None, help="comma-separated recipients, E.164"),
    to_file: Path | None = typer.Option(None, help="CSV with a phone column (+ ref, ref1, ref2)"),
    sender: str | None = typer.Option(None, "--from", help="business number (STICKERQ_SENDER)"),
    name: str | None = typer.Option(None, help="campaign name"),
    ref: str | None = None,
    ref1: str | None = None,
    ref2: str | None = None,
    wa_source: str = typer.Option("api", help="api, clevertap, zoho, ... (others become api)"),
    skip_invalid: bool = typer.Option(False, help="store the valid rows, report the rest"),
    wait: bool = typer.Option(
        False,
        help="show progress until every message is settled (exit 0), or a pause holds the "
        "rest (exit 3)",
    ),
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    at: str | None = typer.Option(None, help=f"send at this time: {cli_schedules.AT_HELP}"),
    tz: str | None = typer.Option(None, help=cli_schedules.TZ_HELP),
    now_if_past: bool = typer.Option(False, help="an --at in the past sends at once"),
    every: str | None = typer.Option(
        None, help="recurring: a cron expression read in --tz, e.g. '0 9 * * 1'"
    ),
) -> None:
    """Validate, store and enqueue a sticker campaign (or schedule it); prints the campaign id."""
    from producer.store import RecipientsRejected

    settings = _settings()
    campaign = {
        "sticker_id": sticker_id,
        "sticker_link": sticker_link,
        "to": to,
        "to_file": to_file,
        "sender": sender,
        "name": name,
        "ref": ref,
        "ref1": ref1,
        "ref2": ref2,
        "wa_source": wa_source,
        "skip_invalid": skip_invalid,
    }
    try:
        result, scheduled = cli_schedules.store_for_send(
            settings, campaign, at=at, tz=tz, every=every, now_if_past=now_if_past
        )
    except RecipientsRejected as exc:
        if exc.report.invalid_count:
            _print_invalid(exc.report.invalid, exc.report.invalid_count)
        raise _fail(exc) from None
    except StickerqError as exc:
        raise _fail(exc) from None
    done = f"{result.batches} batches queued"
    if scheduled is not None:
        done = cli_schedules.describe(scheduled)
    if as_json and not wait:
        print(json.dumps((scheduled or result).as_dict()))
    elif as_json:
        err_console.print(
            f"campaign {result.campaign_id}: {result.recipients:,} recipients, {done}"
        )
    else:
        for warning in result.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}")
        if result.invalid_count:
            _print_invalid(result.invalid, result.invalid_count)
        console.print(
            f"campaign [bold]{result.campaign_id}[/]: {result.recipients:,} recipients "
            f"({result.duplicates:,} duplicates dropped, {result.invalid_count:,} invalid "
            f"skipped), {done}"
        )
    if wait:
        _wait(settings, result.campaign_id, as_json, extra=(scheduled or result).as_dict())


def _wait(settings: Settings, campaign_id: int, as_json: bool, extra: dict | None = None) -> None:
    from stickerq.db import open_sessions
    from stickerq.masking import redact_url
    from stickerq.watch import progress_table, watch_campaign

    hint = (
        "is a worker running (`stickerq worker --beat`) on the same Redis and prefix as this "
        f"shell? STICKERQ_REDIS_URL={redact_url(settings.redis_url)}, "
        f"STICKERQ_REDIS_PREFIX={settings.redis_prefix}"
    )
    with open_sessions(settings.database_url) as sessions:
        progress = watch_campaign(
            sessions, campaign_id, err_console if as_json else console, no_worker_hint=hint
        )
    if as_json:
        print(json.dumps({**(extra or {}), "progress": progress.as_dict()}))
    elif progress.all_settled:
        console.print(progress_table(progress))
        console.print("every message is settled")
    else:
        console.print(progress_table(progress))
        p = progress.pause or {}
        flag = (
            f"--account {p.get('sid')}"
            if p.get("scope") == "account"
            else f"--sender {p.get('sender')}"
        )
        console.print(
            f"[yellow]campaign cannot go on:[/] {p.get('scope')} paused after {p.get('code')}; "
            f"lift it with `stickerq resume {flag}`"
        )
    if not progress.all_settled:
        raise typer.Exit(EXIT_PAUSED)


def _print_invalid(rows: list, count: int) -> None:
    table = Table(
        title=f"{count:,} invalid recipient(s)" + (" (first shown)" if count > len(rows) else "")
    )
    table.add_column("line", justify="right")
    table.add_column("value")
    table.add_column("reason")
    for row in rows[:20]:
        table.add_row(str(row.line), escape(row.value), escape(row.reason))
    err_console.print(table)


@app.command()
def status(
    campaign_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Counts of a campaign's messages by status and by error code."""
    from producer.progress import campaign_progress
    from stickerq.db import open_sessions
    from stickerq.watch import progress_table

    settings = _settings()
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            progress = campaign_progress(session, campaign_id)
    except StickerqError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(progress.as_dict()))
    else:
        console.print(progress_table(progress))


@app.command()
def pauses(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the account and sender pauses in force."""
    from producer.operations import list_active_pauses

    rows = list_active_pauses(_settings())
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no pause in force: every account and sender may send")
        return
    table = Table(title="pauses in force")
    columns = ("scope", "sid", "sender", "code", "since", "reason")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(str(row[key])) for key in columns))
    console.print(table)


@app.command()
def resume(
    account: str | None = typer.Option(None, help="lift the pause of this account (SID)"),
    sender: str | None = typer.Option(None, help="lift the pause of this sender number"),
) -> None:
    """Lift an account or sender pause and dispatch the work that waited for it."""
    from producer.operations import resume_sending

    if (account is None) == (sender is None):
        err_console.print("[red]error:[/] give exactly one of --account SID or --sender +91...")
        raise typer.Exit(EXIT_REJECTED)
    try:
        lifted, batches = resume_sending(_settings(), account=account, sender=sender)
    except StickerqError as exc:
        raise _fail(exc) from None
    console.print(f"lifted {lifted} pause(s); {batches} batch(es) dispatched")


@app.command()
def demo(
    recipients: int = typer.Option(2000, help="recipients of the main campaign"),
    keep: bool = typer.Option(False, help="keep the demo database file afterwards"),
) -> None:
    """Run a demo campaign against the sandbox: worker, progress bar, report."""
    from stickerq.demo import run_demo

    try:
        run_demo(console, recipients=recipients, keep=keep)
    except StickerqError as exc:
        raise _fail(exc) from None


for _module in (cli_campaigns, cli_failures, cli_reports, cli_callbacks, cli_schedules):
    _module.register(app)


def main() -> None:
    """Console entry: the app, with the database problems users meet turned into advice."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from stickerq.db import UPGRADE_ADVICE, lacks_schema

    try:
        app()
    except (OperationalError, ProgrammingError) as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if lacks_schema(exc):
            err_console.print(f"[red]error:[/] {escape(UPGRADE_ADVICE)}")
        else:
            err_console.print(f"[red]error:[/] the database cannot be used: {escape(message)}")
        sys.exit(EXIT_UNAVAILABLE)


if __name__ == "__main__":  # pragma: no cover
    main()
