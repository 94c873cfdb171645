"""`stickerq campaigns list|show|pause|resume|cancel` (registered on the main app by stickerq.cli).

A thin shell over producer.lifecycle; stickerq.cli's helpers are imported inside the
commands because stickerq.cli imports this module while it is being loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import (
    EXIT_REJECTED,
    ID_MAX,
    CampaignId,
    console,
    err_console,
    fail,
    load_settings,
    warn_if_no_beat,
)
from stickerq.errors import StickerqError
from stickerq.states import CampaignStatus

if TYPE_CHECKING:
    from stickerq.producer.lifecycle import CampaignDetails, CampaignSummary, LifecycleResult
    from stickerq.settings import Settings

LIST_LIMIT = 50  # campaigns shown by `campaigns list` unless --limit says otherwise

campaigns_app = typer.Typer(
    help="List, inspect, pause, resume and cancel campaigns.", no_args_is_help=True
)

# The --json keys are part of the interface (scripts, the HTTP API): stable, described in
# producer/views/campaigns.py and docs/json.md (tests/test_json_docs.py: each is named here).
SUMMARY_KEYS = (
    "campaign_id, name, status, sender, recipients, scheduled_at_utc, scheduled_at_local "
    "(in the campaign's zone), timezone, created_at, pause_reason; times are ISO 8601 with "
    "their offset, or null (docs/json.md)"
)
ListJson = Annotated[
    bool, typer.Option("--json", help=f"print a JSON list of objects with the keys: {SUMMARY_KEYS}")
]
ShowJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help=f"print one JSON object with the keys: {SUMMARY_KEYS}; then sid, sticker_id, "
        "sticker_link, wa_source, ref, ref1, ref2, started_at, finished_at, schedule_id, "
        "suppressed_at_enqueue and "
        "progress: {by_status, by_code, retries_waiting, attempts, retried, pause {scope, sid, "
        "sender, code, since, reason}, paused_senders [the same], settled, outside_window "
        "{messages, advice}}, pace: {rate_per_second, remaining, eta_at}, valid_until, "
        "senders and in_window",
    ),
]
ResultJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="print one JSON object with the keys: campaign_id, action, status (after), changed "
        "(false: it already was so), message, batches (dispatched), cancelled_messages, warnings "
        "(docs/json.md)",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(campaigns_app, name="campaigns")


@campaigns_app.command("list")
def list_command(
    status: Annotated[
        str | None,
        typer.Option(help=f"only campaigns in this status: {', '.join(CampaignStatus)}"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=ID_MAX, help="at most this many")] = LIST_LIMIT,
    as_json: ListJson = False,
) -> None:
    """List campaigns, newest first; with --status scheduled, in the order they will go."""
    from stickerq.db import open_sessions
    from stickerq.producer.lifecycle import list_campaigns
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.campaigns import CampaignView

    settings = load_settings()
    try:
        with open_sessions(settings.database_url) as sessions:
            rows = list_campaigns(sessions, status=status, limit=limit)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json([CampaignView.of_summary(row) for row in rows]))
    else:
        console.print(_list_table(rows, status, console.width))
    warn_if_no_beat(settings)


@campaigns_app.command("show")
def show_command(campaign_id: CampaignId, as_json: ShowJson = False) -> None:
    """Every field of a campaign and the counts of its messages by status and error code."""
    from stickerq.cli.watch import progress_table
    from stickerq.db import open_sessions
    from stickerq.producer.lifecycle import show_campaign
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.campaigns import CampaignDetailsView

    try:
        with open_sessions(load_settings().database_url) as sessions:
            details = show_campaign(sessions, campaign_id)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(CampaignDetailsView.of_details(details)))
        return
    console.print(_details_table(details))
    console.print(progress_table(details.progress))


@campaigns_app.command("pause")
def pause_command(
    campaign_id: CampaignId,
    reason: Annotated[str | None, typer.Option(help="why (shown by list and show)")] = None,
    as_json: ResultJson = False,
) -> None:
    """Pause a queued or running campaign: nothing new goes out (in-flight requests finish)."""
    from stickerq.producer.lifecycle import pause_campaign

    _act(lambda settings: pause_campaign(settings, campaign_id, reason, actor=cli_actor()), as_json)


@campaigns_app.command("resume")
def resume_command(campaign_id: CampaignId, as_json: ResultJson = False) -> None:
    """Resume a paused campaign (also one auto-paused after WA400s) and dispatch what is left."""
    from stickerq.producer.lifecycle import resume_campaign

    _act(lambda settings: resume_campaign(settings, campaign_id, actor=cli_actor()), as_json)


@campaigns_app.command("cancel")
def cancel_command(
    campaign_id: CampaignId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    as_json: ResultJson = False,
) -> None:
    """Cancel a scheduled, queued, running or paused campaign: its unsent messages are cancelled."""
    from stickerq.db import open_sessions
    from stickerq.producer.lifecycle import cancel_campaign, show_campaign

    settings = load_settings()
    if not yes:
        try:
            with open_sessions(settings.database_url) as sessions:
                details = show_campaign(sessions, campaign_id)
        except StickerqError as exc:
            raise fail(exc) from None
        pending = details.progress.by_status.get("pending", 0)
        question = (
            f"cancel campaign {campaign_id} ({details.summary.name}, "
            f"{details.summary.status}, {pending:,} message(s) not yet sent)?"
        )
        if not _confirm(question):
            err_console.print(f"campaign {campaign_id} left as it is (--yes skips this question)")
            raise typer.Exit(EXIT_REJECTED)
    _act(
        lambda settings: cancel_campaign(settings, campaign_id, actor=cli_actor()),
        as_json,
        settings,
    )


def _act(
    action: Callable[[Settings], LifecycleResult],
    as_json: bool,
    settings: Settings | None = None,
) -> None:
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.campaigns import LifecycleView

    try:
        result = action(settings or load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(LifecycleView.of(result)))
        return
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(escape(result.message))


def _confirm(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except click.exceptions.Abort:  # no answer (stdin closed)
        return False


# Below this many columns the list shows one time per campaign, compactly.
WIDE_LIST = 140


def _list_table(rows: list[CampaignSummary], status: str | None, width: int) -> Table:
    title = f"{status or 'all'} campaigns ({len(rows)} shown)"
    wide = width >= WIDE_LIST
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=12)
    table.add_column("status", min_width=9)
    table.add_column("sender", no_wrap=True)
    table.add_column("recipients", justify="right", no_wrap=True)
    if wide:
        table.add_column("scheduled (campaign's zone)")
        table.add_column("scheduled (UTC)")
        table.add_column("created (UTC)")
    else:
        table.add_column("scheduled or created", no_wrap=True)
    for row in rows:
        status_cell = row.status + (f" ({row.pause_reason})" if row.pause_reason else "")
        cells = [
            str(row.campaign_id),
            escape(row.name),
            escape(status_cell),
            row.sender or "from column",
            f"{row.recipients:,}",
        ]
        if wide:
            cells += [
                _local(row.scheduled_local, row.timezone),
                _utc(row.scheduled_at),
                _utc(row.created_at),
            ]
        elif row.scheduled_local is not None:
            cells.append(f"{row.scheduled_local:%Y-%m-%d %H:%M %z}")  # with its UTC offset
        else:
            cells.append(f"{row.created_at:%Y-%m-%d %H:%M} UTC")
        table.add_row(*cells)
    return table


def _details_table(details: CampaignDetails) -> Table:
    from stickerq.cli.watch import eta_text, rate_text

    s = details.summary
    table = Table(title=f"campaign {s.campaign_id}: {escape(s.name)}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    refs = (details.ref, details.ref1, details.ref2)
    fields = [
        ("status", s.status),
        ("pause reason", s.pause_reason),
        ("account (sid)", details.sid),
        ("sender", s.sender if len(details.senders) < 2 else None),
        ("senders (from column)", ", ".join(details.senders) if len(details.senders) > 1 else None),
        ("sticker", details.sticker_id or details.sticker_link),
        ("wa_source", details.wa_source),
        ("ref / ref1 / ref2", " / ".join(r or "-" for r in refs)),
        ("recipients", f"{s.recipients:,}"),
        ("suppressed at enqueue", _count(details.suppressed_at_enqueue)),
        ("scheduled", _both(s)),
        ("created", _utc(s.created_at)),
        ("started", _utc(details.started_at)),
        ("finished", _utc(details.finished_at)),
        ("schedule", str(details.schedule_id) if details.schedule_id else None),
        ("rate", rate_text(details.pace)),
        ("ETA", eta_text(details.pace)),
        ("valid until", _utc(details.valid_until) if details.valid_until else None),
        ("in window only", "yes: the others end outside_window" if details.in_window else None),
    ]  # fmt: skip
    for name, value in fields:
        if value:
            table.add_row(name, escape(value))
    return table


def _count(number: int) -> str | None:
    return f"{number:,}" if number else None


def _both(summary: CampaignSummary) -> str:
    if summary.scheduled_at is None:
        return ""
    return f"{_local(summary.scheduled_local, summary.timezone)} = {_utc(summary.scheduled_at)}"


def _local(moment: datetime | None, zone: str | None) -> str:
    if moment is None:
        return "-"
    return f"{moment:%Y-%m-%d %H:%M %Z} ({zone or 'UTC'})"


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "-"
