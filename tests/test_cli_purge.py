"""`stickerq purge` on PostgreSQL: a dry run that deletes nothing, the purge by hand, and what
`report`, `export` and `requeue` say of a purged campaign afterwards, in the CLI and the HTTP
API (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stickerq.api import create_app
from stickerq.db import make_engine, make_session_factory, open_sessions
from stickerq.models import utcnow
from stickerq.settings import Settings
from stickerq.worker.purge import Retention, purge
from tests.api.conftest import TOKEN, WRITE
from tests.conftest import make_settings
from tests.test_cli import assert_clean_exit, run
from tests.worker.test_purge import finished_campaign, rows


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", retention_days=30)


@pytest.fixture
def sessions(cli_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(cli_settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_purge_says_what_it_would_delete_then_deletes_it(
    cli_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    old = finished_campaign(sessions, days_ago=31, copies=2)
    young = finished_campaign(sessions, days_ago=29, copies=2)

    dry = run(cli_settings, "purge", "--dry-run")
    assert_clean_exit(dry, 0)
    assert "would be purged (dry run)" in dry.output
    assert "12 message(s), 14 attempt(s) and 0 idempotency key(s) would be deleted" in dry.output
    assert rows(sessions, old) == (12, 14)

    done = run(cli_settings, "purge")
    assert_clean_exit(done, 0)
    assert "12 message(s), 14 attempt(s) and 0 idempotency key(s) deleted" in done.output
    assert rows(sessions, old) == (0, 0) and rows(sessions, young) == (12, 14)

    report = run(cli_settings, "report", str(old))
    assert_clean_exit(report, 0)
    assert "messages purged on" in report.output and "12" in report.output

    export = run(cli_settings, "export", str(old), "--csv", "-")
    assert_clean_exit(export, 2)
    assert f"campaign {old}'s messages were purged on" in export.output
    assert f"`stickerq report {old}`" in export.output

    requeue = run(cli_settings, "requeue", "--campaign", str(old), "--status", "failed")
    assert_clean_exit(requeue, 2)
    assert "nothing to requeue" in requeue.output

    nothing = run(cli_settings, "purge")
    assert_clean_exit(nothing, 0)
    assert "no finished campaign is past its retention" in nothing.output


def test_purge_of_named_campaigns_and_its_refusals(
    cli_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    young = finished_campaign(sessions, days_ago=1, copies=1)
    by_hand = run(cli_settings, "purge", "--campaign", str(young))
    assert_clean_exit(by_hand, 0)
    assert rows(sessions, young) == (0, 0)

    for args, says in [
        (["--campaign", "999"], "no campaign 999"),
        (["--older-than", "soon"], "--older-than 'soon' is neither a duration"),
        (["--older-than", "99999999999999d"], "reaches back before year 1"),
    ]:
        refused = run(cli_settings, "purge", *args)
        assert_clean_exit(refused, 2)
        assert says in refused.output

    later = finished_campaign(sessions, days_ago=3, copies=1)
    kept = run(cli_settings, "purge", "--older-than", "4d")
    assert_clean_exit(kept, 0)
    assert rows(sessions, later) == (6, 7)


def test_the_api_reports_a_purged_campaign_and_refuses_its_export(
    database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=TOKEN, retention_days=30
    )
    with open_sessions(database_url) as sessions:
        old = finished_campaign(sessions, days_ago=31, copies=1)
        purge(sessions, Retention(30).past(utcnow()))
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    report = client.get(f"/campaigns/{old}/report", headers=WRITE)
    assert report.status_code == 200, report.text
    assert report.json()["messages_purged_at"] is not None
    assert report.json()["by_status"]["read"] == 1 and report.json()["recipients"] == 6
    for path in (f"/campaigns/{old}/export.csv", f"/campaigns/{old}/report?by=ref1"):
        refused = client.get(path, headers=WRITE)
        assert refused.status_code == 410, refused.text
        assert refused.json()["code"] == "messages_purged"
