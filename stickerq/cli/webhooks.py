"""`stickerq webhooks add|list|remove|deliveries|test`: signed POSTs of events to URLs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

webhooks_app = typer.Typer(
    help="Webhooks: URLs that get signed POSTs of campaign, pause and message events.",
    no_args_is_help=True,
)
WebhookId = Annotated[int, typer.Argument(help="the webhook's id (`stickerq webhooks list`)")]
AsJson = Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="where events are POSTed: https, a public address")],
    events: Annotated[
        str,
        typer.Option(
            help="comma-separated: campaign.completed, campaign.paused, pause.started, "
            "pause.lifted, message.failed, message.status"
        ),
    ],
    secret: Annotated[
        str | None, typer.Option(help="the signing secret (default: one is made and shown once)")
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="only this account's (SID) events (default: every one)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Add a webhook; its secret is shown this once (receivers check each POST with it)."""
    from stickerq.actors import cli_actor
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.webhooks import AddedWebhookView
    from stickerq.producer.webhooks import add_webhook

    try:
        added = add_webhook(
            load_settings(), url, [events], cli_actor(), secret=secret, account=account
        )
    except StickerqError as exc:
        raise fail(exc) from None
    webhook = added.webhook
    if as_json:
        print(
            to_json(AddedWebhookView.model_validate({"webhook": webhook, "secret": added.secret}))
        )
        return
    console.print(f"webhook {webhook['id']} added: {escape(webhook['url'])}")
    console.print(f"events: {', '.join(webhook['events'])}")
    if secret is None:
        console.print(f"secret (shown once, keep it with the receiver): {added.secret}")


@webhooks_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every webhook: its events, state (ok, failing, disabled), events waiting and failed."""
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.webhooks import WebhookView
    from stickerq.producer.webhooks import list_webhooks

    try:
        rows = list_webhooks(load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json([WebhookView.model_validate(row) for row in rows]))
        return
    if not rows:
        console.print("no webhook: `stickerq webhooks add URL --events ...` adds one")
        return
    table = Table(title="webhooks")
    for column in ("id", "url", "events", "account", "state", "waiting", "failed", "since"):
        table.add_column(column)
    for row in rows:
        since = row["disabled_at"] or row["failing_since"]
        table.add_row(
            str(row["id"]),
            escape(row["url"]),
            ", ".join(row["events"]),
            row["account"] or "every",
            row["state"],
            str(row["waiting"]),
            str(row["failed"]),
            since.isoformat(timespec="seconds") if since else "",
        )
    console.print(table)
    for row in rows:
        if row["disabled_reason"]:
            err_console.print(
                f"webhook {row['id']} disabled: {escape(row['disabled_reason'])}; "
                f"`stickerq webhooks test {row['id']}` enables it again"
            )


@webhooks_app.command("remove")
def remove(webhook_id: WebhookId) -> None:
    """Remove a webhook and the events waiting for it."""
    from stickerq.actors import cli_actor
    from stickerq.producer.webhooks import remove_webhook

    try:
        removed = remove_webhook(load_settings(), webhook_id, cli_actor())
    except StickerqError as exc:
        raise fail(exc) from None
    console.print(f"webhook {webhook_id} removed: {escape(removed['url'])}")


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: WebhookId,
    failed: Annotated[bool, typer.Option("--failed", help="only the failed events")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 100,
    as_json: AsJson = False,
) -> None:
    """A webhook's events, newest first: waiting, delivered or failed, and the last error."""
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.webhooks import DeliveryView
    from stickerq.producer.webhooks import deliveries as find

    try:
        rows = find(load_settings(), webhook_id, failed_only=failed, limit=limit)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json([DeliveryView.model_validate(row) for row in rows]))
        return
    if not rows:
        console.print(f"webhook {webhook_id}: no {'failed ' if failed else ''}event")
        return
    table = Table(title=f"webhook {webhook_id}: events")
    for column in ("event id", "type", "campaign", "state", "attempts", "at", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["event_id"],
            row["type"],
            str(row["campaign_id"] or ""),
            row["state"],
            str(row["attempts"]),
            _when(row),
            escape(row["last_error"] or ""),
        )
    console.print(table)


def _when(row: dict[str, Any]) -> str:
    at = row["delivered_at"] or row["failed_at"] or row["next_attempt_at"]
    return at.isoformat(timespec="seconds") if at else ""


@webhooks_app.command("test")
def test(webhook_id: WebhookId) -> None:
    """Queue a webhook.test event for this webhook (enabling it again if it was disabled)."""
    from stickerq.actors import cli_actor
    from stickerq.producer.webhooks import queue_test_event

    try:
        event_id = queue_test_event(load_settings(), webhook_id, cli_actor())
    except StickerqError as exc:
        raise fail(exc) from None
    console.print(
        f"test event {event_id} queued for webhook {webhook_id}; a worker with beat delivers "
        f"it: `stickerq webhooks deliveries {webhook_id}` shows how it went"
    )
