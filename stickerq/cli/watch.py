"""Live progress of a campaign in the terminal (rich), until it settles or a pause holds it;
and how a campaign's progress and pace are shown (`campaigns show`, `report` use these too)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from stickerq.producer.pace import read_pace
from stickerq.producer.progress import CampaignProgress, campaign_progress
from stickerq.producer.window import LABEL, describe
from stickerq.states import CampaignStatus, MessageStatus

if TYPE_CHECKING:
    from stickerq.producer.pace import Pace


def watch_campaign(
    sessions: sessionmaker[Session],
    campaign_id: int,
    console: Console,
    *,
    poll_seconds: float = 0.5,
    timeout_seconds: float | None = None,
    no_worker_hint: str = "",
    hint_after_seconds: float = 10.0,
) -> CampaignProgress:
    """Poll the database and draw the bar; return once every message is settled or blocked.

    The bar's rate and ETA are the campaign's pace (producer/pace.py), as `campaigns show` and
    `report` give them.

    A campaign still `queued` (nothing claimed) `hint_after_seconds` after it was first seen
    so gets `no_worker_hint` printed once: most often no worker listens to this shell's
    Redis and prefix, and the wait would otherwise be silent for ever.
    """
    started = time.monotonic()
    queued_since: float | None = None
    hinted = False
    with Progress(
        TextColumn("[bold]campaign {task.fields[campaign]}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("send", total=None, campaign=campaign_id, counts="", rate="", eta="")
        while True:
            with sessions() as session:
                progress = campaign_progress(session, campaign_id)
                pace = read_pace(session, progress)
            elapsed = time.monotonic() - started
            bar.update(
                task,
                total=progress.recipients,
                completed=progress.settled,
                counts=_counts(progress),
                rate=rate_text(pace) or "- msg/s",
                eta=eta_text(pace) or "-",
            )
            if progress.all_settled or progress.blocked:
                return progress
            if progress.status == CampaignStatus.QUEUED:
                queued_since = queued_since or time.monotonic()
                if not hinted and time.monotonic() - queued_since >= hint_after_seconds:
                    waited = time.monotonic() - queued_since
                    bar.console.print(
                        f"[yellow]nothing claimed for {waited:.0f} s:[/] {escape(no_worker_hint)}"
                    )
                    hinted = True
            if timeout_seconds is not None and elapsed > timeout_seconds:
                return progress
            time.sleep(poll_seconds)


def rate_text(pace: Pace) -> str | None:
    """The pace's rate as every screen shows it (None: no rate yet)."""
    return f"{pace.rate:,.1f} msg/s" if pace.rate else None


def eta_text(pace: Pace) -> str | None:
    """The pace's ETA as every screen shows it (None: no ETA)."""
    return f"{pace.eta:%Y-%m-%d %H:%M:%S} UTC" if pace.eta else None


def _counts(progress: CampaignProgress) -> str:
    s = progress.count
    return (
        f"[green]sent {s(MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)}[/] "
        f"[yellow]retried {progress.retried}[/] "
        f"[magenta]parked {s(MessageStatus.PARKED)}[/] "
        f"[red]failed {s(MessageStatus.FAILED)}[/] "
        f"unknown {s(MessageStatus.UNKNOWN)} "
        f"expired {s(MessageStatus.EXPIRED)}"
    )


def progress_table(progress: CampaignProgress) -> Table:
    table = Table(
        title=f"campaign {progress.campaign_id}: {escape(progress.name)} ({progress.status})"
    )
    table.add_column("status")
    table.add_column("messages", justify="right")
    for status in MessageStatus:
        if progress.by_status.get(status):
            table.add_row(status.value, f"{progress.by_status[status]:,}")
    table.add_row("[bold]total", f"[bold]{progress.recipients:,}")
    if progress.by_code:
        table.add_section()
        for code, count in sorted(progress.by_code.items()):
            table.add_row(f"code {code}", f"{count:,}")
    table.add_section()
    table.add_row("API attempts", f"{progress.attempts:,}")
    table.add_row("WA500 retries", f"{progress.retried:,}")
    if progress.retries_waiting:
        table.add_row("retries due later", f"{progress.retries_waiting:,}")
    if progress.outside_window:
        table.add_section()
        table.add_row(f"[yellow]{LABEL}", f"{progress.outside_window:,}")
    captions = []
    if progress.outside_window:
        captions.append(describe(progress.outside_window))
    for p in [progress.pause] if progress.pause else progress.paused_senders:
        who = p["sender"] or p["sid"]
        reason = p["reason"].split(" | ")[0]
        captions.append(f"paused: {p['scope']} {who} after {p['code']} ({escape(reason)})")
    table.caption = "\n".join(captions) or None
    return table
