"""`stickerq send|status|pauses|resume`: a campaign sent and followed, and the pauses that hold
senders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli import schedules
from stickerq.cli.common import (
    EXIT_PAUSED,
    CampaignId,
    console,
    err_console,
    fail,
    load_settings,
    warn_if_no_beat,
)
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.producer.api import EnqueueResult
    from stickerq.producer.idempotency import IdempotentSend
    from stickerq.producer.request import CampaignRequest, Timing
    from stickerq.producer.schedule import ScheduledCampaign
    from stickerq.settings import Settings

# How long `send --idempotency-key` retries a key whose first request another process is still
# storing (a store of a million recipients takes under a minute): the waiting is the CLI's,
# in its own process, never a server's.
KEY_IN_USE_WAIT_SECONDS = 60.0


def register(app: typer.Typer) -> None:
    for command in (send, status, pauses, resume):
        app.command()(command)


def send(
    sticker_id: str | None = typer.Option(None, help="uploaded media id of the sticker"),
    sticker_link: str | None = typer.Option(None, help="https URL of the sticker (WebP)"),
    to: str | None = typer.Option(None, help="comma-separated recipients, E.164"),
    to_file: Path | None = typer.Option(
        None, help="CSV with a phone column (+ ref, ref1, ref2; from: each row's business number)"
    ),
    sender: str | None = typer.Option(None, "--from", help="business number (STICKERQ_SENDER)"),
    account: str | None = typer.Option(
        None, help="the Kaleyra account (SID) to send on; default: the only one configured"
    ),
    name: str | None = typer.Option(None, help="campaign name"),
    ref: str | None = None,
    ref1: str | None = None,
    ref2: str | None = None,
    wa_source: str = typer.Option("api", help="api, clevertap, zoho, ... (others become api)"),
    skip_invalid: bool = typer.Option(False, help="store the valid rows, report the rest"),
    no_check: bool = typer.Option(
        False, help="store a --sticker-link without fetching it (WebP, 512x512, size) first"
    ),
    wait: bool = typer.Option(
        False,
        help="show progress until every message is settled (exit 0), or a pause holds the "
        "rest (exit 3)",
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as JSON (docs/json.md)")
    ] = False,
    at: str | None = typer.Option(None, help=f"send at this time: {schedules.AT_HELP}"),
    tz: str | None = typer.Option(None, help=schedules.TZ_HELP),
    now_if_past: bool = typer.Option(False, help="an --at in the past sends at once"),
    every: str | None = typer.Option(
        None, help="recurring: a cron expression read in --tz, e.g. '0 9 * * 1'"
    ),
    valid_for: str | None = typer.Option(
        None,
        help="messages not sent this long after the start (each run's, when recurring) "
        "expire: 6h, 90m, 1d (default STICKERQ_VALID_FOR; unset: no limit)",
    ),
    valid_until: str | None = typer.Option(
        None, help="messages not sent by this time expire: ISO 8601, with its offset or --tz"
    ),
    idempotency_key: str | None = typer.Option(
        None, help="a retry with the same key and options prints the first campaign, sends nothing"
    ),
    in_window: bool | None = typer.Option(
        None,
        "--in-window/--no-in-window",
        help="send only where the recipient's 24-hour window with the sender is open (the "
        "window ledger); the others end outside_window, never sent (default "
        "STICKERQ_IN_WINDOW; on with --to-window)",
    ),
    to_window: bool = typer.Option(
        False,
        "--to-window",
        help="the recipients are every customer who wrote to --from within --since, from the "
        "window ledger",
    ),
    since: str | None = typer.Option(
        None, help="with --to-window: how far back, 24h (default), 2d, or an ISO time"
    ),
    dry_run: bool = typer.Option(
        False, help="with --to-window: print how many recipients it would have; store nothing"
    ),
) -> None:
    """Validate, store and enqueue a sticker campaign (or schedule it); prints the campaign id."""
    from stickerq.producer.request import CampaignRequest, Timing
    from stickerq.producer.send import send_campaign
    from stickerq.producer.store import RecipientsRejected

    settings = load_settings()
    request = CampaignRequest(
        sticker_id=sticker_id,
        sticker_link=sticker_link,
        to=to,
        to_file=to_file,
        sender=sender,
        account=account,
        name=name,
        ref=ref,
        ref1=ref1,
        ref2=ref2,
        wa_source=wa_source,
        skip_invalid=skip_invalid,
        no_check=no_check,
        valid_for=valid_for,
        valid_until=valid_until,
        in_window=in_window,
        to_window=to_window,
        window_since=since,
    )
    timing = Timing(at=at, tz=tz, every=every, now_if_past=now_if_past)
    if dry_run:
        _print_audience(settings, request, as_json)
        return
    try:
        if idempotency_key is None:
            result, scheduled = send_campaign(settings, request, timing, actor=cli_actor())
        else:
            once = _send_once(settings, idempotency_key, request, timing)
            if once.result is None:
                _print_replayed(settings, once.campaign_id, as_json)
                return
            result, scheduled = once.result, once.scheduled
    except RecipientsRejected as exc:
        if exc.report.invalid_count:
            _print_invalid(exc.report.invalid, exc.report.invalid_count)
        raise fail(exc) from None
    except StickerqError as exc:
        raise fail(exc) from None
    done = f"{result.batches} batches queued"
    if scheduled is not None:
        done = schedules.describe(scheduled)
    if as_json and not wait:
        from stickerq.producer.views.base import to_json
        from stickerq.producer.views.sending import send_view

        print(to_json(send_view(result, scheduled)))
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
            f"skipped, {result.suppressed:,} suppressed), {done}"
        )
    warn_if_no_beat(settings)
    if wait:
        _wait(settings, result, scheduled, as_json)


def _print_audience(settings: Settings, request: CampaignRequest, as_json: bool) -> None:
    """`send --to-window --dry-run`: how many customers the campaign would have."""
    from stickerq.producer.window_audience import audience_size

    if not request.to_window:
        raise fail(StickerqError("--dry-run goes with --to-window: it counts that audience"))
    try:
        sender, customers = audience_size(settings, request)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(json.dumps({"sender": sender, "recipients": customers, "dry_run": True}))
    else:
        console.print(
            f"{customers:,} customers wrote to {sender} in that time: the campaign would "
            "have them as recipients (nothing stored: --dry-run)"
        )


def _send_once(
    settings: Settings, key: str, request: CampaignRequest, timing: Timing
) -> IdempotentSend:
    """send_campaign_once, tried again after each Retry-After while another process is still
    storing the key's first request, for KEY_IN_USE_WAIT_SECONDS; then an error saying what
    to do (exit 2)."""
    import time

    from stickerq.producer.idempotency import IdempotencyInProgress, send_campaign_once

    deadline = time.monotonic() + KEY_IN_USE_WAIT_SECONDS
    told = False
    while True:
        try:
            return send_campaign_once(settings, key, request, timing, actor=cli_actor())
        except IdempotencyInProgress as exc:
            if time.monotonic() + exc.retry_after > deadline:
                raise IdempotencyInProgress(
                    f"another request with idempotency key {key!r} is still storing its "
                    f"campaign after {KEY_IN_USE_WAIT_SECONDS:.0f} s: this command sent "
                    "nothing; run it again later and it prints that campaign"
                ) from None
            if not told:
                told = True
                err_console.print(
                    f"another request with idempotency key {escape(repr(key))} is still "
                    f"storing its campaign: waiting for it (up to "
                    f"{KEY_IN_USE_WAIT_SECONDS:.0f} s)"
                )
            time.sleep(exc.retry_after)


def _wait(
    settings: Settings,
    result: EnqueueResult,
    scheduled: ScheduledCampaign | None,
    as_json: bool,
) -> None:
    from stickerq.cli.watch import progress_table, watch_campaign
    from stickerq.db import open_sessions
    from stickerq.masking import redact_url
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.sending import send_view

    hint = (
        "is a worker running (`stickerq worker --beat`) on the same Redis and prefix as this "
        f"shell? STICKERQ_REDIS_URL={redact_url(settings.redis_url)}, "
        f"STICKERQ_REDIS_PREFIX={settings.redis_prefix}"
    )
    with open_sessions(settings.database_url) as sessions:
        progress = watch_campaign(
            sessions, result.campaign_id, err_console if as_json else console, no_worker_hint=hint
        )
    if as_json:
        print(to_json(send_view(result, scheduled, progress)))
    elif progress.all_settled:
        console.print(progress_table(progress))
        console.print("every message is settled")
    else:
        console.print(progress_table(progress))
        from stickerq.pauses import resume_command

        for p in progress.holding:
            lift = resume_command(p["scope"], p["sid"], p["sender"])
            who = p["scope"] if p["scope"] == "account" else f"sender {p['sender']}"
            console.print(
                f"[yellow]campaign cannot go on:[/] {who} paused after {p['code']}; "
                f"lift it with `{lift}`"
            )
    if not progress.all_settled:
        raise typer.Exit(EXIT_PAUSED)


def _print_replayed(settings: Settings, campaign_id: int, as_json: bool) -> None:
    """A retried --idempotency-key: the campaign the first send made (`campaigns show`)."""
    if not as_json:
        console.print(
            f"campaign [bold]{campaign_id}[/]: already made with this idempotency key; "
            "nothing sent again"
        )
        return
    from stickerq.db import open_sessions
    from stickerq.producer.lifecycle import show_campaign
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.campaigns import CampaignDetailsView

    with open_sessions(settings.database_url) as sessions:
        print(to_json(CampaignDetailsView.of_details(show_campaign(sessions, campaign_id))))


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


def status(
    campaign_id: CampaignId,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Counts of a campaign's messages by status and by error code."""
    from stickerq.cli.watch import progress_table
    from stickerq.db import open_sessions
    from stickerq.producer.progress import campaign_progress
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.sending import ProgressView

    settings = load_settings()
    try:
        with open_sessions(settings.database_url) as sessions, sessions() as session:
            progress = campaign_progress(session, campaign_id)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(ProgressView.of_progress(progress)))
    else:
        console.print(progress_table(progress))
    warn_if_no_beat(settings)


def pauses(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """List the account and sender pauses in force."""
    from stickerq.producer.operations import list_active_pauses
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.sending import PauseView

    settings = load_settings()
    rows = list_active_pauses(settings)
    if as_json:
        print(to_json([PauseView.model_validate(row) for row in rows]))
        return
    if not rows:
        console.print("no pause in force: every account and sender may send")
    else:
        table = Table(title="pauses in force")
        columns = ("scope", "sid", "sender", "code", "since", "reason")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(str(row[key])) for key in columns))
        console.print(table)
    _print_disabled_webhooks(settings)


def _print_disabled_webhooks(settings: Settings) -> None:
    """Webhooks disabled for failing stop no sending, but someone must look: shown here."""
    from stickerq.db import open_sessions
    from stickerq.producer.webhooks import disabled_webhooks

    with open_sessions(settings.database_url) as sessions, sessions() as session:
        disabled = disabled_webhooks(session)
    for webhook in disabled:
        console.print(
            f"webhook {webhook['id']} ({escape(webhook['url'])}) disabled since "
            f"{webhook['disabled_at'].isoformat(timespec='seconds')}: "
            f"{escape(webhook['disabled_reason'] or '')}; fix the receiver, then "
            f"`stickerq webhooks test {webhook['id']}`"
        )


def resume(
    account: str | None = typer.Option(None, help="lift the pause of this account (SID)"),
    sender: str | None = typer.Option(None, help="lift the pause of this sender number"),
) -> None:
    """Lift an account or sender pause and dispatch the work that waited for it."""
    from stickerq.producer.operations import resume_sending

    try:
        lifted, batches = resume_sending(
            load_settings(), actor=cli_actor(), account=account, sender=sender
        )
    except StickerqError as exc:
        raise fail(exc) from None
    console.print(f"lifted {lifted} pause(s); {batches} batch(es) dispatched")
