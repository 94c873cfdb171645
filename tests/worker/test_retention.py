"""Beat's purge of unknown callbacks, run as a plain function on a real database (SQLite and
PostgreSQL): past STICKERQ_UNKNOWN_CALLBACK_DAYS they go, beyond
STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS the oldest go, in bounded batches, counted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import UnknownCallback, utcnow
from stickerq.queue import PURGE_UNKNOWN_CALLBACKS, app, configure_celery
from stickerq.settings import Settings
from stickerq.worker import runtime, tasks
from stickerq.worker.retention import Purged, purge_unknown_callbacks
from tests.conftest import make_settings


def keep(sessions: sessionmaker[Session], count: int, received_at: datetime, tag: str) -> None:
    rows = [
        {
            "message_id": f"{tag}{n}",
            "status": "delivered",
            "occurred_at": received_at,
            "received_at": received_at,
        }
        for n in range(count)
    ]
    with sessions.begin() as session:
        session.execute(insert(UnknownCallback), rows)


def kept(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(select(UnknownCallback.message_id).order_by(UnknownCallback.id))
        )


def dropped(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "stickerq_unknown_callbacks_dropped_total", {"reason": reason}
    )
    return value or 0.0


def test_callbacks_older_than_the_retention_are_deleted_in_batches_and_counted(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    keep(sessions, 2_500, now - timedelta(days=8), "OLD")
    keep(sessions, 10, now - timedelta(days=6), "NEW")
    before = dropped("expired")
    purged = purge_unknown_callbacks(sessions, days=7, max_rows=100_000, now=now, batch=1_000)
    assert purged == Purged(expired=2_500, over_cap=0)
    assert kept(sessions) == [f"NEW{n}" for n in range(10)]
    assert dropped("expired") == before + 2_500
    assert purge_unknown_callbacks(sessions, days=7, max_rows=100_000, now=now) == Purged(0, 0)


def test_a_run_deletes_at_most_max_batches_and_the_next_goes_on(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    keep(sessions, 25, now - timedelta(days=30), "OLD")
    first = purge_unknown_callbacks(
        sessions, days=7, max_rows=1_000, now=now, batch=10, max_batches=2
    )
    assert first == Purged(expired=20, over_cap=0)
    assert len(kept(sessions)) == 5
    second = purge_unknown_callbacks(sessions, days=7, max_rows=1_000, now=now, batch=10)
    assert second == Purged(expired=5, over_cap=0)
    assert kept(sessions) == []


def test_beyond_the_cap_the_oldest_are_deleted_and_counted(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    keep(sessions, 30, now - timedelta(hours=1), "A")
    keep(sessions, 5, now, "B")
    before = dropped("over_cap")
    purged = purge_unknown_callbacks(sessions, days=7, max_rows=10, now=now, batch=7)
    assert purged == Purged(expired=0, over_cap=25)
    assert kept(sessions) == [f"A{n}" for n in range(25, 30)] + [f"B{n}" for n in range(5)]
    assert dropped("over_cap") == before + 25
    assert purge_unknown_callbacks(sessions, days=7, max_rows=10, now=now) == Purged(0, 0)


def test_the_settings_and_the_beat_task_run_the_purge(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STICKERQ_UNKNOWN_CALLBACK_DAYS", "2.5")
    monkeypatch.setenv("STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS", "3")
    from_environment = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_environment.unknown_callback_days == 2.5
    assert from_environment.unknown_callback_max_rows == 3
    monkeypatch.delenv("STICKERQ_UNKNOWN_CALLBACK_DAYS")
    monkeypatch.delenv("STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS")
    defaults = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    assert (defaults.unknown_callback_days, defaults.unknown_callback_max_rows) == (7, 100_000)

    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", unknown_callback_days=2.5,
        unknown_callback_max_rows=3,
    )  # fmt: skip
    configure_celery(settings)
    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == PURGE_UNKNOWN_CALLBACKS)
    assert entry["schedule"] == 60.0
    assert PURGE_UNKNOWN_CALLBACKS in app.tasks
    keep(sessions, 2, utcnow() - timedelta(days=3), "OLD")
    keep(sessions, 5, utcnow(), "NEW")
    runtime.configure(settings)
    try:
        tasks.purge_unknown_callbacks()  # the task's body, here
    finally:
        runtime.shutdown()
    assert kept(sessions) == ["NEW2", "NEW3", "NEW4"]
