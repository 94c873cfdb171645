"""`stickerq db upgrade|downgrade|current|history`: Alembic, with the migrations shipped
inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from stickerq import migrations


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # '%' is ConfigParser's interpolation character; URLs may hold it (encoded passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at (None: never upgraded)."""
    from stickerq.db import shared_engine

    with shared_engine(database_url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def history() -> list[tuple[str, str]]:
    """Every revision the package ships, oldest first: (revision, what it does)."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = reversed(list(scripts.walk_revisions()))
    return [(r.revision, (r.doc or "").strip()) for r in revisions]


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
