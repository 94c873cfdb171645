"""The Alembic migration creates exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from stickerq.db import make_engine
from stickerq.migrate import downgrade, upgrade
from stickerq.models import Base, UnknownCallback, utcnow

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
