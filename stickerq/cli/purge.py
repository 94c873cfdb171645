"""`stickerq purge`: delete, by hand, what beat's retention purge deletes (worker/purge.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import (
    EXIT_UNAVAILABLE,
    ID_MAX,
    console,
    err_console,
    fail,
    load_settings,
)

if TYPE_CHECKING:
    from stickerq.worker.purge import PurgeReport


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command()(purge)


def purge(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="campaigns finished before this: a duration back from now (30d, 12h) or an "
            "ISO datetime with its zone; default: each account's retention "
            "(STICKERQ_RETENTION_DAYS, or retention_days in the accounts file)",
            metavar="DURATION|DATETIME",
        ),
    ] = None,
    campaign: Annotated[
        list[int] | None,
        typer.Option(
            "--campaign",
            min=1,
            max=ID_MAX,
            help="only this finished campaign (repeatable); without --older-than, whatever its age",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be deleted; delete nothing")
    ] = False,
) -> None:
    """Delete the messages and attempts of finished (completed or cancelled) campaigns past
    their retention, and idempotency keys older than a day. Each campaign keeps its counts
    by status and code: `report` still answers, and says when its messages were purged. With
    STICKERQ_ARCHIVE_DIR, each campaign's export is written there (gzip CSV) first."""
    from sqlalchemy import true

    from stickerq.db import open_sessions
    from stickerq.errors import StickerqError
    from stickerq.models import Campaign, utcnow
    from stickerq.producer.failures import parse_since
    from stickerq.worker.purge import Retention, check_purgeable, would_purge
    from stickerq.worker.purge import purge as purge_messages

    settings = load_settings()
    now = utcnow()
    try:
        if older_than is not None:
            due = Campaign.finished_at < parse_since(older_than, now, "--older-than")
        elif campaign:
            due = true()
        else:
            kept = Retention.of(settings.retention_days, settings.all_accounts())
            due = kept.past(now)
    except StickerqError as exc:
        raise fail(exc) from None
    with open_sessions(settings.database_url) as sessions:
        try:
            check_purgeable(sessions, campaign or [])
        except StickerqError as exc:
            raise fail(exc) from None
        archive_dir = settings.archive_dir
        if dry_run:
            report = would_purge(
                sessions, due, now=now, campaign_ids=campaign, archive_dir=archive_dir
            )
        else:
            report = purge_messages(
                sessions, due, now=now, campaign_ids=campaign, archive_dir=archive_dir,
                max_batches=None, actor=cli_actor(),
            )  # fmt: skip
    console.print(_table(report, dry_run))
    verb = "would be deleted" if dry_run else "deleted"
    err_console.print(
        f"{report.messages:,} message(s), {report.attempts:,} attempt(s) and "
        f"{report.idempotency_keys:,} idempotency key(s) {verb}"
        + ("" if report.campaigns else ": no finished campaign is past its retention")
    )
    if report.space is not None and report.space.bytes_freed is not None:
        err_console.print(f"the SQLite file gave back {report.space.bytes_freed:,} bytes")
    refused = [purged for purged in report.campaigns if purged.error]
    for purged in refused:
        err_console.print(f"[red]error:[/] campaign {purged.campaign_id} kept: {purged.error}")
    if refused:
        raise typer.Exit(EXIT_UNAVAILABLE)


def _table(report: PurgeReport, dry_run: bool) -> Table:
    table = Table(title="would be purged (dry run)" if dry_run else "purged")
    for column in ("campaign", "finished", "messages", "attempts", "archive"):
        table.add_column(column, justify="left" if column in ("finished", "archive") else "right")
    for purged in report.campaigns:
        finished = f"{purged.finished_at:%Y-%m-%d %H:%M} UTC" if purged.finished_at else "—"
        archive = "kept: see below" if purged.error else escape(str(purged.archive or "—"))
        table.add_row(
            str(purged.campaign_id),
            finished,
            f"{purged.messages:,}",
            f"{purged.attempts:,}",
            archive,
        )
    return table
