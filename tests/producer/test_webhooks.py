"""Webhook endpoints managed: URL checks, the secret shown once and never again, the audit
log, and the same through `stickerq webhooks` and `/webhooks`."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stickerq.accounts import UnknownAccount
from stickerq.cli import app
from stickerq.db import open_sessions
from stickerq.models import AuditEntry, WebhookEndpoint, WebhookOutboxEvent, utcnow
from stickerq.producer.webhooks import (
    WebhookError,
    WebhookNotFound,
    add_webhook,
    check_url,
    deliveries,
    list_webhooks,
    queue_test_event,
    remove_webhook,
)
from stickerq.settings import Settings
from tests.conftest import make_settings
from tests.test_cli import assert_clean_exit, environment

PUBLIC = "93.184.216.34"


def resolving_to(address: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


@pytest.fixture
def hook_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", webhook_allow_hosts="127.0.0.1"
    )


@pytest.mark.parametrize(
    ("url", "address", "refusal"),
    [
        ("http://hooks.example/x", PUBLIC, "is not https"),
        ("https://hooks.example/x", "10.1.2.3", "a private address"),
        ("https://hooks.example/x", "127.0.0.1", "a loopback address"),
        ("https://hooks.example/x", "169.254.169.254", "a cloud metadata address"),
        ("https://user:pw@hooks.example/x", PUBLIC, "holds a user or password"),
        ("ftp://hooks.example/x", PUBLIC, "is not an http(s) URL"),
    ],
)
def test_a_url_that_is_not_https_to_a_public_address_is_refused(
    url: str, address: str, refusal: str
) -> None:
    with pytest.raises(WebhookError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, "", resolving_to(address))


def test_a_public_https_url_passes_and_the_allow_list_admits_a_local_receiver() -> None:
    assert check_url("https://hooks.example/x", "", resolving_to(PUBLIC))
    assert check_url("http://127.0.0.1:8000/x", "127.0.0.1", resolving_to("127.0.0.1"))
    with pytest.raises(WebhookError, match="STICKERQ_WEBHOOK_ALLOW_HOSTS"):
        check_url("https://127.0.0.1:8000/x", "", resolving_to("127.0.0.1"))


def test_added_with_a_made_secret_shown_once_and_audited_without_it(
    hook_settings: Settings,
) -> None:
    added = add_webhook(
        hook_settings,
        "http://127.0.0.1:8000/x?token=receiver-token-1",
        ["message.status, campaign.completed"],
        "cli:tester@host",
    )
    assert added.secret.startswith("whsec_") and len(added.secret) > 40
    assert added.webhook["events"] == ["campaign.completed", "message.status"]
    [listed] = list_webhooks(hook_settings)
    assert added.secret not in json.dumps(listed, default=str)
    assert listed["state"] == "ok" and listed["waiting"] == 0
    remove_webhook(hook_settings, listed["id"], "cli:tester@host")
    assert list_webhooks(hook_settings) == []
    with open_sessions(hook_settings.database_url) as sessions, sessions() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.action, e.target, e.actor) for e in entries] == [
        ("webhook.added", f"webhook:{listed['id']}", "cli:tester@host"),
        ("webhook.removed", f"webhook:{listed['id']}", "cli:tester@host"),
    ]
    for entry in entries:
        assert added.secret not in entry.params
        # the query may hold the receiver's own token: the audit log keeps none of it
        assert json.loads(entry.params)["url"] == "http://127.0.0.1:8000/x"


def test_a_refused_webhook_stores_nothing(hook_settings: Settings) -> None:
    with pytest.raises(WebhookError, match=r"unknown event type.*choose among"):
        add_webhook(hook_settings, "http://127.0.0.1:8000/x", ["campaign.done"], "t")
    with pytest.raises(WebhookError, match="--secret must be"):
        add_webhook(hook_settings, "http://127.0.0.1:8000/x", ["pause.started"], "t", secret="x")
    with pytest.raises(WebhookError, match="not https"):
        add_webhook(hook_settings, "http://hooks.example/x", ["pause.started"], "t")
    with pytest.raises(UnknownAccount, match="NOPE"):
        add_webhook(
            hook_settings, "http://127.0.0.1:8000/x", ["pause.started"], "t", account="NOPE"
        )
    with open_sessions(hook_settings.database_url) as sessions, sessions() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []
        assert session.scalars(select(AuditEntry)).all() == []


def test_a_test_event_is_queued_for_that_endpoint_and_shown_in_its_deliveries(
    hook_settings: Settings,
) -> None:
    first = add_webhook(hook_settings, "http://127.0.0.1:8000/a", ["pause.started"], "t")
    add_webhook(hook_settings, "http://127.0.0.1:8000/b", ["pause.started"], "t")
    event_id = queue_test_event(hook_settings, first.webhook["id"], "cli:tester@host")
    [shown] = deliveries(hook_settings, first.webhook["id"])
    assert (shown["event_id"], shown["type"], shown["state"]) == (
        event_id,
        "webhook.test",
        "waiting",
    )
    assert deliveries(hook_settings, first.webhook["id"], failed_only=True) == []
    with open_sessions(hook_settings.database_url) as sessions, sessions() as session:
        assert len(session.scalars(select(WebhookOutboxEvent)).all()) == 1
    with pytest.raises(WebhookNotFound, match="no webhook 999"):
        deliveries(hook_settings, 999)


def test_a_test_event_brings_a_disabled_webhook_back_and_says_who_did(
    hook_settings: Settings,
) -> None:
    added = add_webhook(hook_settings, "http://127.0.0.1:8000/a", ["pause.started"], "t")
    webhook_id = added.webhook["id"]
    queue_test_event(hook_settings, webhook_id, "cli:tester@host")  # enabled: no entry
    with open_sessions(hook_settings.database_url) as sessions:
        with sessions.begin() as session:
            endpoint = session.get(WebhookEndpoint, webhook_id)
            assert endpoint is not None
            endpoint.disabled_at = utcnow()
            endpoint.disabled_reason = "failing for 3 days"
        queue_test_event(hook_settings, webhook_id, "cli:tester@host")
        with sessions() as session:
            endpoint = session.get(WebhookEndpoint, webhook_id)
            assert endpoint is not None and endpoint.disabled_at is None
            entries = session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target).order_by(
                    AuditEntry.id
                )
            ).all()
    assert [tuple(e) for e in entries] == [
        ("t", "webhook.added", f"webhook:{webhook_id}"),
        ("cli:tester@host", "webhook.enabled", f"webhook:{webhook_id}"),
    ]


def test_the_cli_adds_lists_and_removes_showing_the_secret_once(hook_settings: Settings) -> None:
    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["webhooks", *args], env=environment(hook_settings))

    added = run("add", "http://127.0.0.1:8000/x", "--events", "pause.started,pause.lifted")
    assert_clean_exit(added, 0)
    assert "secret (shown once" in added.output
    secret = added.output.split("keep it with the receiver): ")[1].split()[0]
    listed = run("list")
    assert_clean_exit(listed, 0)
    assert "127.0.0.1:8000/x" in listed.output and secret not in listed.output
    refused = run("add", "http://hooks.example/x", "--events", "pause.started")
    assert_clean_exit(refused, 2)
    assert "not https" in refused.output
    [shown] = json.loads(run("list", "--json").output)
    assert (shown["id"], shown["state"], shown["events"]) == (
        1,
        "ok",
        ["pause.lifted", "pause.started"],
    )
    assert "secret" not in shown
    assert_clean_exit(run("test", "1"), 0)
    assert "webhook.test" in run("deliveries", "1").output
    [delivery] = json.loads(run("deliveries", "1", "--json").output)
    assert (delivery["type"], delivery["state"]) == ("webhook.test", "waiting")
    assert_clean_exit(run("remove", "1"), 0)
    assert_clean_exit(run("remove", "1"), 2)


def test_a_disabled_webhook_is_shown_by_pauses_and_list(hook_settings: Settings) -> None:
    added = add_webhook(hook_settings, "http://127.0.0.1:8000/x", ["pause.started"], "t")
    with open_sessions(hook_settings.database_url) as sessions, sessions.begin() as session:
        endpoint = session.get(WebhookEndpoint, added.webhook["id"])
        assert endpoint is not None
        endpoint.disabled_at = endpoint.failing_since = utcnow()
        endpoint.disabled_reason = "every POST failed for 3 days; last: HTTP 503"
    env = environment(hook_settings)
    pauses = CliRunner().invoke(app, ["pauses"], env=env)
    assert_clean_exit(pauses, 0)
    assert f"webhook {added.webhook['id']} (http://127.0.0.1:8000/x) disabled" in pauses.output
    assert "HTTP 503" in pauses.output
    listed = CliRunner().invoke(app, ["webhooks", "list"], env=env)
    assert "disabled" in listed.output
    assert list_webhooks(hook_settings)[0]["state"] == "disabled"
