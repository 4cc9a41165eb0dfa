"""`fleetlog migrate` and `fleetlog backup`: the store's schema, up or down a revision at a
time, and a consistent copy of the embedded store. Both exit 2 when asked what they refuse."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetlog.config import Settings
from fleetlog.logconfig import configure_logging
from fleetlog.store.backup import BackupRefused, backup_sqlite
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import UnknownRevision, current_revision, migrate, revisions

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


async def move_schema(settings: Settings, revision: str) -> None:
    engine = create_store_engine(settings)
    try:
        await migrate(engine, revision)
    finally:
        await engine.dispose()


async def store_revision(settings: Settings) -> str | None:
    engine = create_store_engine(settings)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


def show_history(settings: Settings) -> None:
    current = asyncio.run(store_revision(settings))
    for known in revisions():
        mark = "*" if known.id == current else " "
        stdout.print(f"{mark} {known.id}  {known.title}")
    if current is None:
        stdout.print("(the store has no schema yet)")


def migrate_command(
    to: Annotated[
        str, typer.Option("--to", help="Revision to upgrade or downgrade to", metavar="REV")
    ] = "head",
    history: Annotated[
        bool, typer.Option("--history", help="List the revisions, * marking the store's")
    ] = False,
) -> None:
    """Bring the store's schema to the newest revision, or up or down to --to REV."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    if history:
        show_history(settings)
        return
    try:
        asyncio.run(move_schema(settings, to))
    except UnknownRevision:
        known = ", ".join(revision.id for revision in revisions())
        stderr.print(f"[red]unknown revision {to!r}[/]: the revisions are {known} (or head)")
        raise typer.Exit(2) from None
    where = "up to date" if to == "head" else f"at revision {to}"
    stderr.print(f"[green]schema {where}[/] ({settings.mode})")


def backup(
    path: Annotated[Path, typer.Argument(help="The new file to write the copy to")],
) -> None:
    """Copy the embedded store to PATH, consistent while `fleetlog serve` is writing."""
    settings = Settings()
    if not settings.embedded:
        stderr.print(
            "[red]fleetlog backup copies the embedded store only[/]: back PostgreSQL up with "
            "pg_dump (docs/operations.md, Backup and restore)"
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    try:
        logs = backup_sqlite(settings.sqlite_path, path)
    except BackupRefused as refused:
        stderr.print(f"[red]{refused}[/]")
        raise typer.Exit(2) from None
    stderr.print(f"[green]backed up[/] {logs:,} logs to {path}")
