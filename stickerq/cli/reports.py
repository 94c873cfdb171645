"""`stickerq report` and `stickerq export` (registered on the main app by stickerq.cli)."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, cast

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import (
    EXIT_REJECTED,
    CampaignId,
    console,
    err_console,
    fail,
    load_settings,
)

if TYPE_CHECKING:
    from stickerq.producer.reports import Breakdown, CampaignReport, RefColumn, RefGroup


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command("report")(report)
    app.command("export")(export)


def report(
    campaign_id: CampaignId,
    by: Annotated[
        str | None, typer.Option("--by", help="break down by ref, ref1 or ref2", metavar="REF")
    ] = None,
    top: Annotated[int, typer.Option(help="groups shown in the breakdown (rest: other)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Totals by status and code, success rate, pace (rate, ETA), duration, delivered/read."""
    from stickerq.db import open_sessions
    from stickerq.errors import StickerqError
    from stickerq.producer.reports import REF_COLUMNS, campaign_report
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.reports import ReportView

    if by is not None and by not in REF_COLUMNS:
        err_console.print(f"[red]error:[/] --by {by!r}: choose one of {', '.join(REF_COLUMNS)}")
        raise typer.Exit(EXIT_REJECTED)
    if top < 1:
        err_console.print(f"[red]error:[/] --top must be at least 1, not {top}")
        raise typer.Exit(EXIT_REJECTED)

    settings = load_settings()
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            result = campaign_report(session, campaign_id, cast("RefColumn", by), top=top)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(ReportView.of_report(result)))
        return
    console.print(report_table(result))
    if result.breakdown is not None:
        console.print(breakdown_table(result.breakdown))


def export(
    campaign_id: CampaignId,
    csv_path: Annotated[
        str, typer.Option("--csv", help="file to write, or - for stdout", metavar="PATH|-")
    ],
) -> None:
    """Write one CSV row per recipient: recipient, message_id, ref, ref1, ref2, status,
    error_code, attempts, timestamps (ISO 8601 UTC) and outside_window (131047: only a
    template message reaches them), streamed in constant memory.

    Formula-safe: a cell starting with = + - @ (or tab, CR, LF) gets a leading ' so that no
    spreadsheet runs it. Recipients are E.164, so they are written '+919812345678; programs
    reading the file back drop that one leading ' (see docs/export.md).
    """
    from stickerq.db import open_sessions
    from stickerq.errors import CampaignNotFound, MessagesPurged
    from stickerq.export import export_campaign

    settings = load_settings()
    try:
        with (
            open_sessions(settings.database_url) as sessions,
            sessions() as session,
            _output(csv_path) as out,
        ):
            rows = export_campaign(session, campaign_id, out)
    except (CampaignNotFound, MessagesPurged) as exc:
        raise fail(exc) from None
    except BrokenPipeError:
        # The reader stopped early (`export 7 --csv - | head`): not an error. Point stdout at
        # /dev/null so that Python's own flush at exit does not complain again.
        with suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot write {csv_path}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_REJECTED) from None
    where = "stdout" if csv_path == "-" else csv_path
    err_console.print(f"campaign {campaign_id}: {rows:,} rows written to {where}")


@contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """stdout for `-`; otherwise a temporary file beside PATH, renamed over it once complete
    (an interrupted export leaves no half-written file behind)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _share(part: int, whole: int, of: str) -> str:
    return f"{part / whole:.1%} of {of}" if whole else ""


def report_table(result: CampaignReport) -> Table:
    """The report as one rich table: statuses, codes, then rates and times."""
    from stickerq.cli.watch import eta_text, rate_text
    from stickerq.producer.reports import CODE_MEANINGS
    from stickerq.producer.window import LABEL, describe

    table = Table(title=f"campaign {result.campaign_id}: {escape(result.name)} ({result.status})")
    table.add_column("")
    table.add_column("messages", justify="right")
    table.add_column("")
    for status, count in result.by_status.items():
        if count:
            table.add_row(status, f"{count:,}", _percent(count / result.recipients))
    table.add_row("[bold]recipients", f"[bold]{result.recipients:,}", "")
    if result.by_code:
        table.add_section()
        for code, count in result.by_code.items():
            table.add_row(f"code {code}", f"{count:,}", CODE_MEANINGS.get(code, ""))
    table.add_section()
    table.add_row("succeeded (sent or better)", f"{result.succeeded:,}",
                  _share(result.succeeded, result.recipients, "recipients"))  # fmt: skip
    table.add_row("delivered (callbacks)", f"{result.delivered:,}",
                  _share(result.delivered, result.sent, "sent"))  # fmt: skip
    table.add_row("read (callbacks)", f"{result.read:,}", _share(result.read, result.sent, "sent"))
    table.add_row("API attempts", f"{result.attempts:,}", "")
    if result.outside_window:
        table.add_row(f"[yellow]{LABEL}", f"{result.outside_window:,}",
                      _share(result.outside_window, result.recipients, "recipients"))  # fmt: skip
        table.caption = describe(result.outside_window)
    table.add_section()
    table.add_row("rate", rate_text(result.pace) or "—", "settled per second since started")
    if result.pace.eta:
        table.add_row("ETA", eta_text(result.pace), "at that rate")
    table.add_row("duration", _duration(result.duration_seconds),
                  "" if result.finished_at else "so far")  # fmt: skip
    if result.messages_purged_at is not None:
        table.add_section()
        table.add_row("[yellow]messages purged on", f"{result.messages_purged_at:%Y-%m-%d}",
                      "retention: these are its kept counts")  # fmt: skip
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not started"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def breakdown_table(breakdown: Breakdown) -> Table:
    """One row per ref value (largest first), with the statuses that occur."""
    groups = list(breakdown.groups)
    if breakdown.other is not None:
        groups.append(breakdown.other)
    statuses = (
        [s for s in groups[0].by_status if any(g.by_status[s] for g in groups)] if groups else []
    )
    shown = f"top {len(breakdown.groups)} of {breakdown.group_count}"
    table = Table(title=f"by {breakdown.by} ({shown})")
    table.add_column(breakdown.by)
    table.add_column("recipients", justify="right")
    for status in statuses:
        table.add_column(status, justify="right")
    table.add_column("success", justify="right")
    for group in breakdown.groups:
        label = "[dim](none)" if group.value is None else escape(group.value)
        table.add_row(label, *_group_cells(group, statuses))
    if breakdown.other is not None:
        table.add_section()
        others = breakdown.group_count - len(breakdown.groups)
        table.add_row(f"[italic]other ({others:,} more)", *_group_cells(breakdown.other, statuses))
    return table


def _group_cells(group: RefGroup, statuses: list[str]) -> list[str]:
    return [
        f"{group.recipients:,}",
        *(f"{group.by_status[s]:,}" for s in statuses),
        _percent(group.succeeded / group.recipients if group.recipients else None),
    ]
