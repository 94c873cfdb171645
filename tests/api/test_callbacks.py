"""POST /callbacks/kaleyra/{secret} over a real database (SQLite and PostgreSQL): messages
move only forward whatever the order and the duplicates, unknown message_ids are kept, the
secret guards the route and never reaches a log."""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from typer.testing import CliRunner
from uvicorn.logging import AccessFormatter

from stickerq.api import create_app
from stickerq.cli import app as cli_app
from stickerq.db import open_sessions
from stickerq.models import Campaign, Message, UnknownCallback, utcnow
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import make_settings
from tests.producer.test_callbacks import SENT_AGO, T0, callback

SECRET = "cb-secret-4f9a1d77e2"
URL = f"/callbacks/kaleyra/{SECRET}"
TIMES = "stickerq_callback_times_replaced"


def settings_for(database_url: str, redis_prefix: str, **overrides: object) -> Settings:
    return make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", callback_secret=SECRET, **overrides
    )


def sent_messages(database_url: str, count: int = 3) -> int:
    with open_sessions(database_url) as sessions, sessions.begin() as session:
        campaign = Campaign(name="c", sid="SID", sender="+919000000001", sticker_id="1")
        session.add(campaign)
        session.flush()
        rows = [
            {
                "campaign_id": campaign.id,
                "recipient": f"+9198123456{n:02d}",
                "status": MessageStatus.SENT,
                "message_id": f"M{n}",
                "sent_at": utcnow() - SENT_AGO,
            }
            for n in range(count)
        ]
        session.execute(insert(Message), rows)
        return campaign.id


def message(database_url: str, message_id: str) -> Message:
    with open_sessions(database_url) as sessions, sessions() as session:
        return session.scalars(select(Message).where(Message.message_id == message_id)).one()


def callbacks_client(database_url: str, redis_prefix: str) -> Iterator[TestClient]:
    """The app with a callback secret, as a client (for a fixture to yield from)."""
    # `with`: the app's lifespan runs, so its callback writer is closed at the end
    with TestClient(
        create_app(settings_for(database_url, redis_prefix)), raise_server_exceptions=False
    ) as client:
        client.database_url = database_url  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def client(database_url: str, redis_prefix: str) -> Iterator[TestClient]:
    yield from callbacks_client(database_url, redis_prefix)


def test_callbacks_out_of_order_and_duplicated_end_as_if_in_order(client: TestClient) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    for payload in (
        callback("M0", "read", T0 + 60),  # before its delivered
        callback("M0", "sent", T0),  # late: changes nothing
        callback("M0", "delivered", T0 + 30),
        callback("M0", "delivered", T0 + 30),  # duplicate
        callback("M0", "read", T0 + 90),  # a later read: read_at stays the first
        callback("M0", "read", T0 + 45),  # an earlier one: read_at, not delivered_at
        callback("M1", "delivered", T0 + 30),
        callback("M1", "delivered", T0 + 30),
    ):
        answer = client.post(URL, json=payload)  # no bearer token: the secret is the key
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "ok"}
    read = message(database_url, "M0")
    assert read.status == MessageStatus.READ
    assert read.delivered_at.timestamp() == T0 + 30
    assert read.read_at.timestamp() == T0 + 45
    delivered = message(database_url, "M1")
    assert delivered.status == MessageStatus.DELIVERED
    assert delivered.delivered_at.timestamp() == T0 + 30
    # the same, in one request: one bulk statement per status
    in_one = [callback("M2", s, T0 + t) for s, t in (("read", 60), ("delivered", 40), ("read", 50))]
    assert client.post(URL, json=in_one).status_code == 200
    batched = message(database_url, "M2")
    assert batched.status == MessageStatus.READ
    assert (batched.delivered_at.timestamp(), batched.read_at.timestamp()) == (T0 + 40, T0 + 50)


def test_failed_keeps_metas_code_and_title_and_a_late_read_does_not_undo_it(
    client: TestClient,
) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    errors = [{"code": 131047, "title": "Re-engagement message"}]
    batch = [callback("M0", "failed", errors=errors), callback("M1", "not-sent")]
    assert client.post(URL, json=batch).status_code == 200  # a list is taken too
    assert client.post(URL, json=callback("M0", "read")).status_code == 200
    failed = message(database_url, "M0")
    assert (failed.status, failed.last_error_code) == (MessageStatus.FAILED, "131047")
    assert failed.last_error_detail == "Re-engagement message"
    not_sent = message(database_url, "M1")
    assert (not_sent.status, not_sent.last_error_code) == (MessageStatus.FAILED, "not-sent")


def test_unknown_message_ids_are_kept_and_listed_not_refused(
    client: TestClient, redis_prefix: str
) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    payload = callback("NOT-OURS-1", "delivered", T0)
    payload["extra_info"]["ref1"] = "crm-x"
    assert client.post(URL, json=payload).status_code == 200
    with open_sessions(database_url) as sessions, sessions() as session:
        kept = session.scalars(select(UnknownCallback)).one()
    assert (kept.message_id, kept.status, kept.ref, kept.ref1) == (
        "NOT-OURS-1",
        "delivered",
        "customer1",
        "crm-x",
    )
    env = settings_for(database_url, redis_prefix).as_environment()
    listed = CliRunner().invoke(cli_app, ["callbacks", "unknown", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert '"message_id": "NOT-OURS-1"' in listed.stdout


def test_fifty_copies_of_an_unknown_callback_make_one_row(client: TestClient) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    for _ in range(25):
        assert client.post(URL, json=callback("NOT-OURS-2", "delivered")).status_code == 200
    copies = [callback("NOT-OURS-2", "delivered") for _ in range(25)]
    assert client.post(URL, json=[*copies, callback("NOT-OURS-2", "read")]).status_code == 200
    with open_sessions(database_url) as sessions, sessions() as session:
        kept = session.scalars(select(UnknownCallback.status).order_by(UnknownCallback.id)).all()
    assert kept == ["delivered", "read"]


def test_impossible_status_times_are_recorded_as_received_and_counted(
    client: TestClient,
) -> None:
    """A `delivered` of timestamp 0 (1970) or a `read` of year 1 is before the message was
    sent; a `read` tomorrow is in the future: each is recorded as when it was received."""
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    before = {reason: counted(client, TIMES, reason) for reason in ("before_sent", "in_future")}
    now = int(time.time())
    batch = [
        callback("M0", "delivered", 0),
        callback("M0", "read", -62_135_596_800),  # 0001-01-01
        callback("M1", "read", now + 86_400),
        callback("M2", "delivered", T0),  # a sane one stays
    ]
    start = utcnow()
    assert client.post(URL, json=batch).status_code == 200
    end = utcnow()
    m0, m1, m2 = (message(database_url, f"M{n}") for n in range(3))
    assert start <= m0.delivered_at == m0.read_at <= end
    assert start <= m1.delivered_at == m1.read_at <= end
    assert m2.delivered_at.timestamp() == T0
    assert counted(client, TIMES, "before_sent") == before["before_sent"] + 2
    assert counted(client, TIMES, "in_future") == before["in_future"] + 1


@pytest.mark.parametrize("path", [f"/callbacks/kaleyra/{SECRET}x", "/callbacks/kaleyra/wrong"])
def test_a_wrong_secret_is_a_404_that_changes_nothing(client: TestClient, path: str) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    answer = client.post(path, json=callback("M0", "delivered"))
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert SECRET not in answer.text
    assert message(database_url, "M0").status == MessageStatus.SENT


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_without_a_usable_secret_setting_every_callback_is_refused(
    sqlite_database: str, redis_prefix: str, secret: str
) -> None:
    settings = make_settings(
        sqlite_database, redis_prefix, "http://127.0.0.1:9", callback_secret=secret
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/callbacks/kaleyra/", "/callbacks/kaleyra/anything"):
            answer = client.post(path, json=callback("M0", "delivered"))
            assert answer.status_code == 503
        answer = client.post(f"/callbacks/kaleyra/{secret}", json=callback("M0", "delivered"))
    assert answer.json()["code"] == "callbacks_not_configured"
    assert "STICKERQ_CALLBACK_SECRET" in answer.json()["detail"]


def test_basic_auth_when_configured(sqlite_database: str, redis_prefix: str) -> None:
    settings = settings_for(sqlite_database, redis_prefix, callback_basic_auth="kaleyra:pw-93")
    sent_messages(sqlite_database)
    good = "Basic " + base64.b64encode(b"kaleyra:pw-93").decode()
    bad = "Basic " + base64.b64encode(b"kaleyra:nope").decode()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for headers in ({}, {"Authorization": bad}, {"Authorization": "Basic %%%"}):
            answer = client.post(URL, json=callback("M0", "read"), headers=headers)
            assert answer.status_code == 401
        assert message(sqlite_database, "M0").status == MessageStatus.SENT
        answer = client.post(URL, json=callback("M0", "read"), headers={"Authorization": good})
        assert answer.status_code == 200
    assert message(sqlite_database, "M0").status == MessageStatus.READ


def test_bad_bodies_are_problems(client: TestClient) -> None:
    cases = [
        (b"not json", 400, "invalid_json"),
        (b'{"status": "read"}', 422, "invalid_callback"),
        (b'{"message_id": "M0", "status": "exploded"}', 422, "invalid_callback"),
        (b"[]", 422, "invalid_callback"),
        (b"42", 422, "invalid_callback"),
    ]
    for body, status, code in cases:
        answer = client.post(URL, content=body, headers={"content-type": "application/json"})
        assert (answer.status_code, answer.json()["code"]) == (status, code), body


def test_the_secret_is_redacted_from_the_access_log_and_200s_are_not_logged(
    client: TestClient,
) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:  # what uvicorn's access log writes for each request
        for status in (200, 503):
            access.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", URL, "1.1", status)
    finally:
        access.removeHandler(handler)
    line = '127.0.0.1:5000 - "POST /callbacks/kaleyra/*** HTTP/1.1" 503 Service Unavailable\n'
    assert out.getvalue() == line


def test_callbacks_url_prints_the_url_to_give_kaleyra(
    sqlite_database: str, redis_prefix: str
) -> None:
    runner = CliRunner()
    env = settings_for(sqlite_database, redis_prefix).as_environment()
    shown = runner.invoke(cli_app, ["callbacks", "url", "https://hooks.example.com/"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.strip() == f"https://hooks.example.com/callbacks/kaleyra/{SECRET}"
    env["STICKERQ_CALLBACK_SECRET"] = ""
    unset = runner.invoke(cli_app, ["callbacks", "url"], env=env)
    assert unset.exit_code == 2
    assert "set STICKERQ_CALLBACK_SECRET" in unset.output


def test_config_shows_the_callback_secret_as_set_never_its_value(
    sqlite_database: str, redis_prefix: str
) -> None:
    settings = settings_for(sqlite_database, redis_prefix, callback_basic_auth="kaleyra:pw-93")
    shown = CliRunner().invoke(cli_app, ["config", "--json"], env=settings.as_environment())
    assert shown.exit_code == 0, shown.output
    assert SECRET not in shown.stdout and "pw-93" not in shown.stdout
    assert '"callback_secret": "(set)"' in shown.stdout


def counted(client: TestClient, family: str, reason: str) -> float:
    """A counter's value by reason on /metrics (0 before its first count)."""
    line = f'{family}_total{{reason="{reason}"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def _callbacks_counted(client: TestClient, status: str) -> float:
    scraped = client.get("/metrics").text
    line = f'stickerq_callbacks_total{{status="{status}"}} '
    found = [row for row in scraped.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_stored_callbacks_are_counted_by_status_on_metrics_and_refused_ones_are_not(
    client: TestClient,
) -> None:
    sent_messages(client.database_url)  # type: ignore[attr-defined]
    delivered, read = _callbacks_counted(client, "delivered"), _callbacks_counted(client, "read")
    batch = [callback("M0", "delivered"), callback("M1", "delivered"), callback("M0", "read")]
    assert client.post(URL, json=batch).status_code == 200
    assert client.post("/callbacks/kaleyra/wrong-secret", json=batch).status_code == 404
    assert _callbacks_counted(client, "delivered") == delivered + 2
    assert _callbacks_counted(client, "read") == read + 1
