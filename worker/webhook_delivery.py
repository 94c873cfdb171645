"""Delivery of the webhook outbox: at least once, in order per campaign, batched, signed.

A round (beat's `deliver_webhooks`, every STICKERQ_WEBHOOK_INTERVAL_SECONDS) takes each
endpoint with due events under a lease on its row (`leased_until`): one round at a time per
endpoint, on SQLite and PostgreSQL alike, so its order needs no row locks; a worker that
dies holding one lets it lapse. Within the lease, its waiting events are read in id order
(`worker/webhook_posts.py` groups them into POSTs) and each POST is sent with no
transaction open, then recorded: delivered, or retried after a capped exponential backoff
with half jitter (`worker/backoff.py`) until STICKERQ_WEBHOOK_RETRY_FOR_SECONDS after the
event, then failed. The first failure stops the endpoint's round; an endpoint whose every
POST failed for STICKERQ_WEBHOOK_DISABLE_AFTER_SECONDS is disabled, its waiting events
failed. A POST that reached the receiver but whose answer was lost is sent again: receivers
drop copies by event id.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import WebhookEndpoint, WebhookOutboxEvent, utcnow
from stickerq.outside_address import AddressRefused, Resolver, allowed_hosts, pin
from stickerq.settings import Settings
from stickerq.webhook_outbox import forget_subscribers
from stickerq.worker.backoff import half_jitter_delay
from stickerq.worker.webhook_posts import Post, posts_of, request_of

log = logging.getLogger(__name__)
WAITING = (WebhookOutboxEvent.delivered_at.is_(None), WebhookOutboxEvent.failed_at.is_(None))
ADVICE = (
    "add the webhook again with an https URL",
    "add the webhook again with a public URL, or name its host in STICKERQ_WEBHOOK_ALLOW_HOSTS",
)
ERROR_MAX = 500  # characters of a receiver's answer kept as the last error


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout: float
    batch_size: int
    first: float  # backoff: the first wait's bound, doubled each failure...
    cap: float  # ...up to this
    retry_for: timedelta  # after the event: then failed
    disable_after: timedelta  # of failing POSTs: then the endpoint is disabled
    round_seconds: float  # one endpoint's share of a round
    allow_hosts: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            timeout=settings.webhook_timeout_seconds,
            batch_size=settings.webhook_batch_size,
            first=settings.webhook_retry_first_seconds,
            cap=settings.webhook_retry_cap_seconds,
            retry_for=timedelta(seconds=settings.webhook_retry_for_seconds),
            disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
            round_seconds=max(0.5, settings.webhook_interval_seconds),
            allow_hosts=allowed_hosts(settings.webhook_allow_hosts),
        )

    @property
    def lease(self) -> timedelta:
        """Longer than a round can hold the endpoint: its share, then one last POST's
        timeout; a worker that died holding it lets it lapse this long after."""
        return timedelta(seconds=self.round_seconds + 2 * self.timeout)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    url: str
    secret: str


def deliver_due(
    sessions: sessionmaker[Session],
    client: httpx.Client,
    policy: DeliveryPolicy,
    resolve: Resolver = socket.getaddrinfo,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """One round over every endpoint with due events; returns how many events arrived."""
    with sessions.begin() as session:
        due = set(
            session.scalars(
                select(WebhookOutboxEvent.endpoint_id)
                .where(*WAITING, WebhookOutboxEvent.next_attempt_at <= clock())
                .distinct()
            )
        )
        if not due:
            return 0  # no write at all: SQLite's one writer is not taken every second
        known = set(session.scalars(select(WebhookEndpoint.id)))
        if due - known:
            _drop_orphans(session, due - known)
    return sum(
        deliver_endpoint(sessions, client, policy, i, resolve, clock) for i in sorted(due & known)
    )


def deliver_endpoint(
    sessions: sessionmaker[Session],
    client: httpx.Client,
    policy: DeliveryPolicy,
    endpoint_id: int,
    resolve: Resolver = socket.getaddrinfo,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    endpoint = _lease(sessions, endpoint_id, policy, clock())
    if endpoint is None:
        return 0  # another round holds it, or it is disabled
    delivered = 0
    ends = time.monotonic() + policy.round_seconds
    try:
        while time.monotonic() < ends:
            with sessions.begin() as session:
                posts = posts_of(session, endpoint_id, policy.batch_size, clock())
            if not posts:
                break
            for post in posts:
                error = _send(client, endpoint, post, policy, resolve)
                _record(sessions, endpoint, post, error, policy, clock())
                if error is not None:
                    return delivered  # it is failing: its round ends here
                delivered += len(post.rows)
    finally:
        with sessions.begin() as session:
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id)
                .values(leased_until=None)
            )
    return delivered


def _lease(
    sessions: sessionmaker[Session], endpoint_id: int, policy: DeliveryPolicy, now: datetime
) -> Endpoint | None:
    with sessions.begin() as session:
        row = session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.disabled_at.is_(None),
                (WebhookEndpoint.leased_until.is_(None)) | (WebhookEndpoint.leased_until < now),
            )
            .values(leased_until=now + policy.lease)
            .returning(WebhookEndpoint.url, WebhookEndpoint.secret),
            execution_options={"synchronize_session": False},
        ).first()
    return None if row is None else Endpoint(endpoint_id, row.url, row.secret)


def _send(
    client: httpx.Client, endpoint: Endpoint, post: Post, policy: DeliveryPolicy, resolve: Resolver
) -> str | None:
    """POST it, no transaction open; None when the receiver took it, else what went wrong."""
    url = httpx.URL(endpoint.url)
    try:
        target, host = pin(url, policy.allow_hosts, resolve, advice=ADVICE)
    except AddressRefused as exc:
        return str(exc)
    headers, body = request_of(post, endpoint.secret, int(time.time()))
    headers["Host"] = url.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    try:
        response = client.post(
            target, content=body, headers=headers, timeout=policy.timeout, extensions=extensions
        )
    except httpx.TimeoutException:
        return f"no answer within {policy.timeout:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:ERROR_MAX]}"


def _record(
    sessions: sessionmaker[Session],
    endpoint: Endpoint,
    post: Post,
    error: str | None,
    policy: DeliveryPolicy,
    now: datetime,
) -> None:
    pks = [row.id for row in post.rows]
    with sessions.begin() as session:
        if error is None:
            session.execute(
                update(WebhookOutboxEvent)
                .where(WebhookOutboxEvent.id.in_(pks))
                .values(delivered_at=now, attempts=WebhookOutboxEvent.attempts + 1, last_error=None)
            )
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(failing_since=None)
            )
            return
        log.warning("webhook %s: POST of %s event(s) failed: %s", endpoint.id, len(pks), error)
        for row in post.rows:
            attempts = row.attempts + 1
            retry_at = now + timedelta(
                seconds=half_jitter_delay(attempts, policy.first, policy.cap)
            )
            gave_up = retry_at > row.created_at + policy.retry_for
            session.execute(
                update(WebhookOutboxEvent)
                .where(WebhookOutboxEvent.id == row.id)
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=retry_at,
                    failed_at=now if gave_up else None,
                )
            )
        _note_failure(session, endpoint, error, policy, now)


def _note_failure(
    session: Session, endpoint: Endpoint, error: str, policy: DeliveryPolicy, now: datetime
) -> None:
    """The endpoint fails since its first failed POST after a success; failing long enough,
    it is disabled and what waits for it is failed."""
    row = session.get(WebhookEndpoint, endpoint.id)
    if row is None:
        return
    if row.failing_since is None:
        row.failing_since = now
    elif now - row.failing_since >= policy.disable_after:
        days = policy.disable_after.total_seconds() / 86400
        row.disabled_at = now
        row.disabled_reason = (
            f"every POST failed for {days:g} days (since {row.failing_since.isoformat()}); "
            f"last: {error}"
        )
        session.execute(
            update(WebhookOutboxEvent)
            .where(WebhookOutboxEvent.endpoint_id == endpoint.id, *WAITING)
            .values(failed_at=now, last_error="the endpoint was disabled")
        )
        log.error("webhook %s disabled: %s", endpoint.id, row.disabled_reason)
        forget_subscribers()


def _drop_orphans(session: Session, endpoint_ids: set[int]) -> None:
    """Events written for an endpoint removed meanwhile (see stickerq/webhook_outbox.py)."""
    session.execute(
        delete(WebhookOutboxEvent).where(WebhookOutboxEvent.endpoint_id.in_(endpoint_ids))
    )
