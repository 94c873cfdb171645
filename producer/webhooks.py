"""Webhook endpoints: add, list, remove, their deliveries, a test event. The CLI
(`stickerq webhooks`) and the HTTP API (`/webhooks`) are shells over these functions.

An endpoint's URL passes the checks of a sticker link (stickerq/outside_address.py): https,
to a public address; a host named in STICKERQ_WEBHOOK_ALLOW_HOSTS may be internal and plain
http (a local receiver). Its secret is made when not given and returned once, by `add`;
nothing else returns or logs it. Adding and removing are written to the audit log.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq import audit
from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import WebhookEndpoint, WebhookOutboxEvent
from stickerq.outside_address import AddressRefused, Resolver, allowed_hosts, pin
from stickerq.settings import Settings
from stickerq.webhook_outbox import (
    SUBSCRIBABLE,
    Event,
    EventType,
    Subscriber,
    forget_subscribers,
    write_rows,
)
from stickerq.webhook_signing import new_secret

SECRET_MIN = 16
SECRET_MAX = 128
URL_MAX = 2048
DELIVERIES_MAX = 1000
ADVICE = (
    "give an https URL (a local receiver over http: name its host in STICKERQ_WEBHOOK_ALLOW_HOSTS)",
    "stickerq never posts to internal addresses; give a public https URL, or name the host "
    "in STICKERQ_WEBHOOK_ALLOW_HOSTS (tests and demos only)",
)


class WebhookError(StickerqError):
    """A webhook that cannot be added as given: every problem, each with its fix."""


class WebhookNotFound(StickerqError):
    """No webhook has that id."""


@dataclass(frozen=True, slots=True)
class AddedWebhook:
    webhook: dict[str, Any]
    secret: str  # shown once: nothing returns it again


def describe(endpoint: WebhookEndpoint, waiting: int = 0, failed: int = 0) -> dict[str, Any]:
    """An endpoint as plain data, never with its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events.split(","),
        "account": endpoint.account,
        "created_at": endpoint.created_at,
        "state": "disabled"
        if endpoint.disabled_at
        else "failing"
        if endpoint.failing_since
        else "ok",
        "failing_since": endpoint.failing_since,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "waiting": waiting,
        "failed": failed,
    }


def parse_events(events: Sequence[str]) -> list[str]:
    """`campaign.completed,message.status` (or a list) -> the known types, sorted."""
    names = sorted({e.strip() for item in events for e in item.split(",") if e.strip()})
    unknown = [name for name in names if name not in SUBSCRIBABLE]
    if unknown or not names:
        known = ", ".join(SUBSCRIBABLE)
        given = f"unknown event type(s) {', '.join(unknown)}" if unknown else "no event type"
        raise WebhookError(f"--events: {given}: choose among {known}")
    return names


def check_url(url: str, allow_hosts: str, resolve: Resolver = socket.getaddrinfo) -> str:
    """The URL, if stickerq may post to it; else WebhookError with why and the fix."""
    if len(url) > URL_MAX:
        raise WebhookError(f"the URL is longer than {URL_MAX} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookError(f"{url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WebhookError(f"{url!r} is not an http(s) URL: give https://host/path")
    if parsed.userinfo:
        raise WebhookError("the URL holds a user or password: authenticate with the signature")
    try:
        pin(parsed, allowed_hosts(allow_hosts), resolve, advice=ADVICE)
    except AddressRefused as exc:
        raise WebhookError(f"webhook URL refused: {'; '.join(map(str, exc.args))}") from None
    return url


def add_webhook(
    settings: Settings,
    url: str,
    events: Sequence[str],
    actor: str,
    *,
    secret: str | None = None,
    account: str | None = None,
    sessions: sessionmaker[Session] | None = None,
    resolve: Resolver = socket.getaddrinfo,
) -> AddedWebhook:
    """Store an endpoint (its secret made when not given) and write webhook.added."""
    types = parse_events(events)
    check_url(url, settings.webhook_allow_hosts, resolve)
    if secret is not None and not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise WebhookError(
            f"--secret must be {SECRET_MIN} to {SECRET_MAX} characters: leave it out and "
            "stickerq makes one"
        )
    if account is not None:
        account = settings.account(account).sid  # UnknownAccount: names the known ones
    secret = secret or new_secret()
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        endpoint = WebhookEndpoint(url=url, secret=secret, events=",".join(types), account=account)
        session.add(endpoint)
        session.flush()
        audit.record(
            session,
            actor,
            audit.Action.WEBHOOK_ADDED,
            f"webhook:{endpoint.id}",
            url=audit.without_query(url),
            events=types,
            account=account,
        )
        shown = describe(endpoint)
    forget_subscribers()
    return AddedWebhook(shown, secret)


def list_webhooks(
    settings: Settings, sessions: sessionmaker[Session] | None = None
) -> list[dict[str, Any]]:
    """Every endpoint, with how many events wait for it and how many failed."""
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        counts = _counts(session)
        return [
            describe(endpoint, *counts.get(endpoint.id, (0, 0)))
            for endpoint in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
        ]


def disabled_webhooks(session: Session) -> list[dict[str, Any]]:
    """The endpoints disabled for failing: shown beside the pauses."""
    found = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.disabled_at.is_not(None))
        .order_by(WebhookEndpoint.id)
    )
    return [describe(endpoint) for endpoint in found]


def _counts(session: Session) -> dict[int, tuple[int, int]]:
    waiting = func.sum(
        (WebhookOutboxEvent.delivered_at.is_(None) & WebhookOutboxEvent.failed_at.is_(None)).cast(
            WebhookOutboxEvent.attempts.type
        )
    )
    failed = func.sum(
        WebhookOutboxEvent.failed_at.is_not(None).cast(WebhookOutboxEvent.attempts.type)
    )
    rows = session.execute(
        select(WebhookOutboxEvent.endpoint_id, waiting, failed).group_by(
            WebhookOutboxEvent.endpoint_id
        )
    )
    return {endpoint_id: (int(w or 0), int(f or 0)) for endpoint_id, w, f in rows}


def remove_webhook(
    settings: Settings, webhook_id: int, actor: str, sessions: sessionmaker[Session] | None = None
) -> dict[str, Any]:
    """Delete the endpoint and its events (waiting ones included); writes webhook.removed."""
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        endpoint = _endpoint(session, webhook_id)
        shown = describe(endpoint)
        session.execute(
            delete(WebhookOutboxEvent).where(WebhookOutboxEvent.endpoint_id == webhook_id)
        )
        session.delete(endpoint)
        audit.record(
            session,
            actor,
            audit.Action.WEBHOOK_REMOVED,
            f"webhook:{webhook_id}",
            url=audit.without_query(endpoint.url),
            events=shown["events"],
            account=endpoint.account,
        )
    forget_subscribers()
    return shown


def deliveries(
    settings: Settings,
    webhook_id: int,
    *,
    failed_only: bool = False,
    limit: int = 100,
    sessions: sessionmaker[Session] | None = None,
) -> list[dict[str, Any]]:
    """The endpoint's events, newest first: waiting, delivered or failed, with attempts and
    the last error (`failed_only`: the failed ones)."""
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        _endpoint(session, webhook_id)
        query = select(WebhookOutboxEvent).where(WebhookOutboxEvent.endpoint_id == webhook_id)
        if failed_only:
            query = query.where(WebhookOutboxEvent.failed_at.is_not(None))
        rows = session.scalars(
            query.order_by(WebhookOutboxEvent.id.desc()).limit(min(limit, DELIVERIES_MAX))
        )
        return [_delivery(row) for row in rows]


def _delivery(row: WebhookOutboxEvent) -> dict[str, Any]:
    state = "delivered" if row.delivered_at else "failed" if row.failed_at else "waiting"
    return {
        "event_id": row.event_id,
        "type": row.type,
        "campaign_id": row.campaign_id,
        "state": state,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "next_attempt_at": None if state != "waiting" else row.next_attempt_at,
        "delivered_at": row.delivered_at,
        "failed_at": row.failed_at,
        "last_error": row.last_error,
    }


def queue_test_event(
    settings: Settings,
    webhook_id: int,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> str:
    """Queue a `webhook.test` event for this endpoint only (a disabled one too: it is
    enabled again, its failing time reset, and that is written to the audit log); returns
    its event id. A worker delivers it."""
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        endpoint = _endpoint(session, webhook_id)
        if endpoint.disabled_at is not None:
            audit.record(session, actor, audit.Action.WEBHOOK_ENABLED, f"webhook:{webhook_id}")
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        data = {"webhook": webhook_id, "message": "a test event from `stickerq webhooks test`"}
        write_rows(
            session,
            EventType.WEBHOOK_TEST,
            [Event(None, None, data)],
            [Subscriber(webhook_id, None)],
        )
        session.flush()
        event_id = session.scalar(
            select(WebhookOutboxEvent.event_id)
            .where(WebhookOutboxEvent.endpoint_id == webhook_id)
            .order_by(WebhookOutboxEvent.id.desc())
            .limit(1)
        )
    forget_subscribers()
    return str(event_id)


def webhook_account(
    settings: Settings, webhook_id: int, sessions: sessionmaker[Session] | None = None
) -> str | None:
    """The account a webhook is limited to (None: every account's events)."""
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        return _endpoint(session, webhook_id).account


def _endpoint(session: Session, webhook_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, webhook_id)
    if endpoint is None:
        raise WebhookNotFound(f"no webhook {webhook_id}: `stickerq webhooks list` shows them")
    return endpoint
