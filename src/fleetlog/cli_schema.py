"""`fleetlog migrate`, `backup` and `restore`: the store's schema, up or down to a revision,
and consistent copies of the embedded store. Each exits 2 when asked what it refuses."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetlog.config import Settings
from fleetlog.logconfig import configure_logging
from fleetlog.store.backup import BackupRefused, backup_sqlite, restore_sqlite
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
    except UnknownRevision as unknown:
        stderr.print(f"[red]{unknown}[/]")
        raise typer.Exit(2) from None
    where = "up to date" if to == "head" else f"at revision {to}"
    stderr.print(f"[green]schema {where}[/] ({settings.mode})")


def embedded_settings(command: str, tool: str) -> Settings:
    """The settings, when fleetlog is embedded; PostgreSQL has its own tools (exit 2)."""
    settings = Settings()
    if not settings.embedded:
        stderr.print(
            f"[red]fleetlog {command} is for the embedded store only[/]: with PostgreSQL use "
            f"{tool} (docs/operations.md, Backup and restore)"
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def backup(
    path: Annotated[Path, typer.Argument(help="The new file to write the copy to")],
) -> None:
    """Copy the embedded store to PATH, consistent while `fleetlog serve` is writing."""
    settings = embedded_settings("backup", "pg_dump")
    try:
        logs = backup_sqlite(settings.sqlite_path, path)
    except BackupRefused as refused:
        stderr.print(f"[red]{refused}[/]")
        raise typer.Exit(2) from None
    stderr.print(f"[green]backed up[/] {logs:,} logs to {path}")


def restore(
    path: Annotated[Path, typer.Argument(help="A copy `fleetlog backup` wrote")],
) -> None:
    """Put a backup in place of the embedded store; fleetlog must be stopped. What the store
    holds now is replaced: back it up first if it may be wanted."""
    settings = embedded_settings("restore", "pg_restore")
    try:
        logs = restore_sqlite(path, settings.sqlite_path)
    except BackupRefused as refused:
        stderr.print(f"[red]{refused}[/]")
        raise typer.Exit(2) from None
    stderr.print(f"[green]restored[/] {logs:,} logs into {settings.sqlite_path}")
