"""Giving back the space of deleted rows (stickerq/space.py, `stickerq db vacuum`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.db import make_engine
from stickerq.migrate import upgrade
from stickerq.space import INCREMENTAL, give_space_back
from tests.conftest import make_settings
from tests.test_cli import assert_clean_exit, environment

ROWS = 5_000


def auto_vacuum(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA auto_vacuum").fetchone()[0])


def file_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def fill_then_delete(path: Path) -> None:
    """A campaign of ROWS messages, then all of them deleted: pages the file keeps."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO campaigns (id, name, sid, sender, wa_source, status, created_at, "
            "recipient_count, wa400_streak, suppressed_count, senders_per_row) VALUES "
            "(1, 'big', 'SID', '+919000000001', 'api', 'completed', '2026-12-07', 0, 0, 0, 0)"
        )
        db.executemany(
            "INSERT INTO messages (campaign_id, recipient, ref, status, attempts, "
            "delayed_retries, created_at) VALUES (1, ?, ?, 'sent', 1, 0, '2026-12-07')",
            [(f"+9198{n:08d}", "r" * 200) for n in range(ROWS)],
        )
        db.commit()
        db.execute("DELETE FROM messages")
        db.commit()


def test_a_file_made_by_the_code_gives_back_its_free_pages(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    upgrade(f"sqlite:///{path}")
    assert auto_vacuum(path) == INCREMENTAL
    fill_then_delete(path)
    full = file_bytes(path)

    engine = make_engine(f"sqlite:///{path}")
    given = give_space_back(engine)
    engine.dispose()

    assert "incremental_vacuum" in given.action
    assert given.bytes_before == full
    assert given.bytes_after is not None and given.bytes_after < full / 4
    assert file_bytes(path) == given.bytes_after


def test_db_vacuum_converts_an_older_file_and_shrinks_it(tmp_path: Path, redis_prefix: str) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # as stickerq made files before: no auto_vacuum
        db.execute("PRAGMA auto_vacuum = NONE")
        db.execute("CREATE TABLE made_first (x)")
    upgrade(f"sqlite:///{path}")
    assert auto_vacuum(path) == 0
    fill_then_delete(path)
    full = file_bytes(path)
    settings = make_settings(f"sqlite:///{path}", redis_prefix, "http://127.0.0.1:9")

    result = CliRunner().invoke(app, ["db", "vacuum"], env=environment(settings))

    assert_clean_exit(result, 0)
    assert "converted the file to auto_vacuum=INCREMENTAL" in result.stdout
    assert "given back" in result.stdout
    assert auto_vacuum(path) == INCREMENTAL
    assert file_bytes(path) < full / 4
    again = CliRunner().invoke(app, ["db", "vacuum"], env=environment(settings))
    assert_clean_exit(again, 0)
    assert "incremental_vacuum" in again.stdout


def test_db_vacuum_on_postgresql_vacuums_and_says_the_tables_keep_their_size(
    pg_database: str, redis_prefix: str
) -> None:
    settings = make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")

    result = CliRunner().invoke(app, ["db", "vacuum"], env=environment(settings))

    assert_clean_exit(result, 0)
    assert "VACUUM (ANALYZE)" in result.stdout
    assert "keep their size" in result.stdout
