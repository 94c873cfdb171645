"""The Alembic migration creates exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import make_engine
from stickerq.migrate import downgrade, upgrade
from stickerq.models import Base, UnknownCallback, utcnow
from stickerq.worker.results import write_results
from tests.worker.test_claims import claim_in_own_session, stored_campaign
from tests.worker.test_sending_attempts import answered, sent

TABLES = {"campaigns", "messages", "attempts", "pauses"}


def test_migration_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    downgrade(database_url, "base")
    engine = make_engine(database_url)
    assert TABLES.isdisjoint(inspect(engine).get_table_names())
    upgrade(database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_database: str) -> None:
    engine = make_engine(sqlite_database)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_0011_keeps_the_first_unknown_callback_of_each_message_id_and_status(
    database_url: str,
) -> None:
    """Rows kept before the unique index, copies included, are deduplicated by the upgrade."""
    downgrade(database_url, "0010")
    now = utcnow()
    rows = [
        ("A", "delivered"), ("A", "delivered"), ("A", "read"), ("B", "failed"),
        ("A", "delivered"), ("B", "failed"), ("C", "read"),
    ]  # fmt: skip
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(UnknownCallback),
                [
                    {"message_id": m, "status": s, "occurred_at": now, "received_at": now}
                    for m, s in rows
                ],
            )
        upgrade(database_url)
        with engine.connect() as connection:
            kept = connection.execute(
                select(
                    UnknownCallback.id, UnknownCallback.message_id, UnknownCallback.status
                ).order_by(UnknownCallback.id)
            ).all()
            indexes = inspect(connection).get_indexes("unknown_callbacks")
    finally:
        engine.dispose()
    assert [tuple(row) for row in kept] == [
        (1, "A", "delivered"), (3, "A", "read"), (4, "B", "failed"), (7, "C", "read"),
    ]  # fmt: skip
    unique = {i["name"]: i["unique"] for i in indexes}
    assert unique.get("uq_unknown_callbacks_message_id_status") in (True, 1)
    assert "ix_unknown_callbacks_message_id" not in unique


def test_0021_downgrade_gives_each_send_kept_on_its_message_a_row_of_its_own(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    """The code before 0021 reads a send only from `attempts`."""
    campaign_id, (wa202, with_row) = stored_campaign(sessions, 2)
    claim_in_own_session(sessions, campaign_id, [wa202, with_row])
    started = utcnow()
    with sessions.begin() as session:
        write_results(session, "T1", [sent(wa202, answered(1, started, "WA500", "WA202"))])
    with sessions.begin() as session:  # a send written before 0021 keeps its one row
        write_results(
            session, "T1", [sent(with_row, answered(1, started, "WA202"))], before_cuts=True
        )

    downgrade(database_url, "0020")

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT message_pk, number, code, action, http_status, latency_ms, "
                    "started_at FROM attempts ORDER BY message_pk, number"
                )
            ).all()
            columns = {c["name"] for c in inspect(connection).get_columns("messages")}
    finally:
        engine.dispose()
    assert [tuple(row[:6]) for row in rows] == [
        (wa202, 1, "WA500", "retry", 500, 80.5),
        (wa202, 2, "WA202", "sent", 202, 81.5),
        (with_row, 1, "WA202", "sent", 202, 80.5),
    ]
    assert "sent_latency_ms" not in columns
    upgrade(database_url)
