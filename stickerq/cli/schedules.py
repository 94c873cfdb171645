"""`stickerq reschedule` and `stickerq schedules list|stop` (registered by stickerq.cli), and
how `stickerq send --at/--every` tells when its campaign goes.

A thin shell over producer.schedule; stickerq.cli's helpers are imported inside the
commands because stickerq.cli imports this module while it is being loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import CampaignId, ScheduleId, console, fail, load_settings
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.producer.schedule import ScheduledCampaign

schedules_app = typer.Typer(help="Recurring broadcasts (send --every).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON (docs/json.md)")]
AT_HELP = "ISO 8601 with its offset (2026-12-01T09:00+05:30), or without one and with --tz"
TZ_HELP = "IANA zone of --at / --every / --valid-until (e.g. Asia/Kolkata)"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command("reschedule")(reschedule_command)
    app.add_typer(schedules_app, name="schedules")


def describe(scheduled: ScheduledCampaign) -> str:
    """When a scheduled campaign goes (its zone and UTC) and, if recurring, how often."""
    text = f"scheduled for {scheduled.when.describe()}"
    if scheduled.when.moved_from_past:
        text += " (the time given was past: it goes at once)"
    if scheduled.schedule_id is not None:
        text += (
            f"; schedule {scheduled.schedule_id} repeats it every {scheduled.cron!r} in "
            f"{scheduled.when.zone} (`stickerq schedules stop {scheduled.schedule_id}` ends it)"
        )
    return text


def reschedule_command(
    campaign_id: CampaignId,
    at: Annotated[str, typer.Option(help=AT_HELP)],
    tz: Annotated[
        str | None, typer.Option(help=TZ_HELP + "; default: the campaign's own zone")
    ] = None,
    now_if_past: Annotated[bool, typer.Option(help="a past time sends at once")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a scheduled campaign to another time (until beat has dispatched it)."""
    from stickerq.producer.schedule import reschedule
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.schedules import RescheduleView

    try:
        when = reschedule(
            load_settings(), campaign_id, at, tz, now_if_past=now_if_past, actor=cli_actor()
        )
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(RescheduleView.of_when(campaign_id, when)))
        return
    console.print(f"campaign {campaign_id} rescheduled for {when.describe()}")


@schedules_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every recurring schedule: its cron, zone, next run (its zone and UTC) and runs so far.

    --json prints a list of objects with the keys: schedule_id, name, every, timezone, active,
    next_run_utc, next_run_local, last_run_utc, template_campaign_id, runs (docs/json.md).
    """
    from stickerq.producer.schedule import list_schedules
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.schedules import ScheduleView

    try:
        rows = [ScheduleView.of_schedule(*row) for row in list_schedules(load_settings())]
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(rows))
        return
    table = Table(title=f"schedules ({len(rows)})")
    for column in ("id", "name", "every", "zone", "active", "next run (its zone)"):
        table.add_column(column)
    for column in ("next run (UTC)", "runs", "template campaign"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(escape(str(value)) for value in (row.schedule_id, row.name, row.every, row.timezone)),
            "yes" if row.active else "stopped",
            _shown(row.next_run_local),
            _shown(row.next_run_utc),
            str(row.runs),
            str(row.template_campaign_id),
        )
    console.print(table)


@schedules_app.command("stop")
def stop_command(schedule_id: ScheduleId) -> None:
    """Stop a recurring schedule: it creates no new run.

    Runs already created stay scheduled and go unless cancelled (`stickerq campaigns cancel`).
    """
    from stickerq.producer.schedule import stop_schedule

    try:
        stopped, waiting = stop_schedule(load_settings(), schedule_id, actor=cli_actor())
    except StickerqError as exc:
        raise fail(exc) from None
    console.print(f"schedule {schedule_id} " + ("stopped" if stopped else "was already stopped"))
    for campaign_id in waiting:
        console.print(
            f"its run, campaign {campaign_id}, is still scheduled: "
            f"`stickerq campaigns cancel {campaign_id}` if it should not go"
        )


def _shown(iso: object) -> str:
    return str(iso).replace("T", " ") if iso else "-"
