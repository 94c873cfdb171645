"""`stickerq failures`, `stickerq messages show` and `stickerq requeue`: what did not go out,
what happened to one message, and sending the chosen ones again.

A thin shell over producer.failures and producer.requeue. Recipients are personal data: the
tables and JSON mask them unless --show-numbers is given. stickerq.cli's helpers are imported
inside the commands because stickerq.cli imports this module while it is being loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import ID_MAX, console, fail, load_settings
from stickerq.errors import StickerqError
from stickerq.masking import numbers_shown

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from stickerq.producer.failures import FailureFilters, FailureRow, SummaryRow

messages_app = typer.Typer(help="Look up single messages and their attempts.", no_args_is_help=True)

ShowNumbers = Annotated[
    bool, typer.Option("--show-numbers", help="show recipients in full (masked by default)")
]
# The --json keys are part of the interface (scripts, the HTTP API): stable, described in
# producer/views/failures.py and docs/json.md (tests/test_json_docs.py: each is named here).
FailuresJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="print one JSON object with the keys: filters {campaign_id, status, code, since}, "
        "summary [{status, code, count}], total, truncated, rows [{campaign_id, recipient, "
        "status, code, http_status, message, why_unknown, attempts, last_attempt_at}]; times "
        "are ISO 8601 with their offset, or null (docs/json.md)",
    ),
]
HistoryJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="print one JSON object with the keys: messages [{campaign_id, campaign_name, "
        "recipient, status, message_id, ref, ref1, ref2, last_error_code, last_error_detail, "
        "created_at, sent_at, delivered_at, read_at, next_attempt_at, attempts [{number, "
        "started_at, http_status, code, action, latency_ms, detail}]}]; times are ISO 8601 "
        "with their offset, or null (docs/json.md)",
    ),
]
RequeueJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="print one JSON object with the keys: campaign_id, status, code, dry_run, requeued "
        "(moved, or would be), batches (dispatched), pauses_lifted, pauses [{scope, sid, "
        "sender, code, since, reason}] (in force when it began), campaign_status (docs/json.md)",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command("failures")(failures)
    app.command("requeue")(requeue)
    app.add_typer(messages_app, name="messages")


@contextmanager
def _session() -> Iterator[Session]:
    from stickerq.db import open_sessions

    with open_sessions(load_settings().database_url) as sessions, sessions() as session:
        yield session


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def failures(
    campaign: Annotated[
        int | None, typer.Option("--campaign", min=1, max=ID_MAX, help="campaign id")
    ] = None,
    status: Annotated[str | None, typer.Option(help="parked, failed, unknown or expired")] = None,
    code: Annotated[str | None, typer.Option(help="last error code, e.g. E110")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="last attempt at or after: 30m, 2h, 1d or 2024-05-01T09:00+05:30"),
    ] = None,
    limit: Annotated[int, typer.Option(help="rows to list (0: all)", min=0, max=ID_MAX)] = 50,
    show_numbers: ShowNumbers = False,
    as_json: FailuresJson = False,
) -> None:
    """Parked, failed and unknown messages: counts by status and code, then the messages
    (unknown ones with why they are unknown: the request may have gone out)."""
    from stickerq.producer.failures import (
        FailureFilters,
        failure_rows,
        failure_summary,
        parse_since,
        parse_status,
    )

    try:
        filters = FailureFilters(
            campaign_id=campaign,
            status=parse_status(status) if status is not None else None,
            code=code,
            since=parse_since(since) if since is not None else None,
        )
        with _session() as session:
            summary = failure_summary(session, filters)
            total = sum(row.count for row in summary)
            rows = failure_rows(session, filters, limit or None)
            truncated = bool(limit) and total > limit
            show = numbers_shown(show_numbers)
            if as_json:
                _print_failures_json(filters, summary, total, truncated, rows, show)
                return
            _print_failures(summary, total, truncated, rows, show)
    except StickerqError as exc:
        raise fail(exc) from None


def _print_failures_json(
    filters: FailureFilters,
    summary: list[SummaryRow],
    total: int,
    truncated: bool,
    rows: Iterable[FailureRow],
    show: Callable[[str], str],
) -> None:
    """One JSON object, the rows streamed: a listing of millions does not sit in memory."""
    from stickerq.producer.views.base import write_streamed
    from stickerq.producer.views.failures import (
        FailureCountView,
        FailureFiltersView,
        FailureRowView,
        FailuresView,
    )

    head = FailuresView(
        filters=FailureFiltersView.of(filters),
        summary=[FailureCountView.of(row) for row in summary],
        total=total,
        truncated=truncated,
        rows=[],
    )
    views = (FailureRowView.of(row, recipient=show(row.recipient)) for row in rows)
    write_streamed(sys.stdout, head, views)


def _print_failures(
    summary: list[SummaryRow],
    total: int,
    truncated: bool,
    rows: Iterable[FailureRow],
    show: Callable[[str], str],
) -> None:

    if not summary:
        console.print("no parked, failed, unknown or expired messages match")
        return
    console.print(f"{total:,} message(s) by status and code")
    counts = Table()
    for column in ("status", "code", "count"):
        counts.add_column(column, justify="right" if column == "count" else "left")
    for group in summary:
        counts.add_row(group.status, group.code or "-", f"{group.count:,}")
    console.print(counts)
    table = Table(title="messages" + (" (first shown; --limit 0 lists all)" if truncated else ""))
    columns = ("campaign", "recipient", "status", "code", "HTTP", "attempts", "last attempt UTC")
    for column in (*columns, "message", "why unknown"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.campaign_id),
            show(row.recipient),
            row.status,
            row.code or "-",
            str(row.http_status or "-"),
            str(row.attempts),
            _when(row.last_attempt_at),
            escape(row.message or ""),
            escape(row.why_unknown or ""),
        )
    console.print(table)


@messages_app.command("show")
def show_message(
    recipient_or_message_id: Annotated[
        str, typer.Argument(metavar="RECIPIENT|MESSAGE_ID", help="+9198... or a message_id")
    ],
    show_numbers: ShowNumbers = False,
    as_json: HistoryJson = False,
) -> None:
    """The whole history of a message: every attempt with its time, HTTP status, code and
    latency. A recipient of several campaigns shows one history per campaign."""
    from stickerq.producer.failures import message_history
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.failures import HistoryView, MessageHistoryView

    try:
        with _session() as session:
            histories = message_history(session, recipient_or_message_id)
    except StickerqError as exc:
        raise fail(exc) from None
    show = numbers_shown(show_numbers)
    if as_json:
        messages = [MessageHistoryView.of_history(h, show(h.recipient)) for h in histories]
        print(to_json(HistoryView(messages=messages)))
        return
    for history in histories:
        refs = ", ".join(f"{name}={value}" for name, value in zip(
            ("ref", "ref1", "ref2"), history.refs, strict=True) if value)  # fmt: skip
        console.print(
            f"campaign [bold]{history.campaign_id}[/] ({history.campaign_name}): "
            f"{show(history.recipient)} [bold]{history.status}[/]"
            + (f", message_id {history.message_id}" if history.message_id else "")
            + (f", {refs}" if refs else "")
        )
        events = [("created", history.created_at), ("sent", history.sent_at)]
        events += [("delivered", history.delivered_at), ("read", history.read_at)]
        events += [("next attempt due", history.next_attempt_at)]
        console.print("  " + "; ".join(f"{name} {_when(at)}" for name, at in events if at) + " UTC")
        if history.last_error_code or history.last_error_detail:
            console.print(
                f"  last error: {history.last_error_code or '-'} {history.last_error_detail or ''}"
            )
        table = Table(title=f"{len(history.attempts)} attempt(s)")
        for column in ("#", "time UTC", "HTTP", "code", "action", "latency ms", "detail"):
            table.add_column(column, overflow="fold")
        for attempt in history.attempts:
            table.add_row(
                str(attempt.number),
                _when(attempt.started_at),
                str(attempt.http_status or "-"),
                attempt.code or "-",
                attempt.action,
                f"{attempt.latency_ms:.0f}" if attempt.latency_ms is not None else "-",
                escape(attempt.detail or ""),
            )
        console.print(table)


def requeue(
    campaign: Annotated[int, typer.Option("--campaign", min=1, max=ID_MAX, help="campaign id")],
    status: Annotated[str, typer.Option(help="parked, failed, unknown or expired")],
    code: Annotated[str | None, typer.Option(help="only this last error code, e.g. E110")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, change nothing")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="lift the account/sender pause in force first")
    ] = False,
    valid_for: Annotated[
        str | None, typer.Option(help="a new deadline, this long from now (6h, 90m)")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option(help="a new deadline, ISO 8601 with its offset")
    ] = None,
    as_json: RequeueJson = False,
) -> None:
    """Move the chosen messages back to pending and dispatch them; prints how many. Refused
    while the campaign's account or sender is paused, unless --resume lifts the pause, and
    for expired messages (or past the campaign's deadline) unless given a new deadline. Safe
    to repeat: a second requeue finds nothing, and no task sends a message twice. Requeueing
    `unknown` messages may send a second copy to those whose first request did arrive."""
    from stickerq.producer.requeue import requeue as requeue_messages
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.failures import RequeueView

    try:
        result = requeue_messages(
            load_settings(),
            campaign,
            status,
            code=code,
            dry_run=dry_run,
            resume=resume,
            valid_for=valid_for,
            valid_until=valid_until,
            actor=cli_actor(),
        )
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(RequeueView.of(result)))
        return
    chosen = f"{result.status}" + (f" {result.code}" if result.code else "")
    if result.dry_run:
        console.print(
            f"would requeue {result.requeued:,} {chosen} message(s) of campaign {campaign}"
        )
        for pause in result.pauses:
            console.print(
                f"[yellow]{pause['scope']} paused after {pause['code']}:[/] the requeue needs "
                "--resume to lift it"
            )
        return
    if result.pauses_lifted:
        console.print(f"lifted {result.pauses_lifted} pause(s)")
    console.print(
        f"requeued {result.requeued:,} {chosen} message(s) of campaign {campaign}; "
        f"{result.batches} batch(es) dispatched"
    )
    if result.campaign_status == "paused" and result.requeued:
        console.print(
            "[yellow]the campaign itself is paused:[/] they go out when it is resumed "
            f"(`stickerq campaigns resume {campaign}`)"
        )
