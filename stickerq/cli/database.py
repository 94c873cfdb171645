"""`stickerq db upgrade|current|history|downgrade`: the schema, by Alembic; `stickerq db
vacuum`: the space of deleted rows given back."""

from __future__ import annotations

import typer
from rich.markup import escape

from stickerq.cli.common import EXIT_REJECTED, console, load_settings

database_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(database_app, name="db")


@database_app.command("current")
def db_current() -> None:
    """Print the revision the database is at, and whether that is the newest."""
    from stickerq.masking import redact_url
    from stickerq.migrate import current, head

    settings = load_settings()
    at, newest = current(settings.database_url), head()
    where = redact_url(settings.database_url)
    if at is None:
        console.print(f"database {where} was never upgraded: run `stickerq db upgrade`")
    elif at == newest:
        console.print(f"database {where} is at {at} (head)")
    else:
        console.print(f"database {where} is at {at}; head is {newest}: run `stickerq db upgrade`")


@database_app.command("history")
def db_history() -> None:
    """List the migrations this version ships, oldest first."""
    from stickerq.migrate import history

    for revision, doc in history():
        console.print(f"{revision}  {escape(doc)}")


@database_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="the revision to go back to (`base`: no tables)"),
    yes: bool = typer.Option(False, "--yes", help="do not ask first"),
) -> None:
    """Undo migrations down to REVISION. What later migrations stored is dropped."""
    from stickerq.masking import redact_url
    from stickerq.migrate import downgrade

    settings = load_settings()
    where = redact_url(settings.database_url)
    if not yes and not typer.confirm(f"downgrade {where} to {revision}, dropping data?"):
        raise typer.Exit(EXIT_REJECTED)
    downgrade(settings.database_url, revision)
    console.print(f"database {where} is at {revision}")


@database_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the Alembic migrations up to REVISION (default: head)."""
    from stickerq.masking import redact_url
    from stickerq.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    console.print(f"database {redact_url(settings.database_url)} is at {revision}")


@database_app.command("vacuum")
def db_vacuum() -> None:
    """Give back the space of deleted rows: SQLite shrinks its file (an older file is
    converted to incremental auto-vacuum first); PostgreSQL gets VACUUM (ANALYZE), which
    frees the space for new rows without shrinking the tables."""
    from stickerq.db import make_engine
    from stickerq.masking import redact_url
    from stickerq.space import give_space_back

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        given = give_space_back(engine)
    finally:
        engine.dispose()
    console.print(f"database {redact_url(settings.database_url)}: {escape(given.action)}")
    if given.bytes_before is not None and given.bytes_after is not None:
        console.print(
            f"file {_size(given.bytes_before)} -> {_size(given.bytes_after)} "
            f"({_size(given.bytes_before - given.bytes_after)} given back)"
        )


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:,.1f} MiB" if n_bytes >= 1024 * 1024 else f"{n_bytes:,} bytes"
