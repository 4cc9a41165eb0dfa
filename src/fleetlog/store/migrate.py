"""Move a store's schema along the Alembic revisions (the only source of schema truth): up to
the newest at start, or up or down to a named one when an operator upgrades or rolls back."""

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# `serve` and `worker` both migrate at start; on PostgreSQL one at a time.
MIGRATION_LOCK = 0x666C6F6D
INCREMENTAL_VACUUM = 2

log = logging.getLogger(__name__)


class UnknownRevision(ValueError):
    """A revision that no migration of this fleetlog names: asked for, or the store's own (a
    newer fleetlog migrated it). The message says which, and what to do."""


@dataclass(frozen=True, slots=True)
class Revision:
    id: str
    title: str


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def revisions() -> list[Revision]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    found = [Revision(rev.revision, title(rev.doc or "")) for rev in script.walk_revisions()]
    return found[::-1]


def title(doc: str) -> str:
    """A revision's first sentence, from the first paragraph of its docstring."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    return paragraph.split(". ", 1)[0].removesuffix(".")


def lock_schema(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})


def current_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def move_on(connection: Connection, revision: str) -> None:
    """Up to `revision` if it is newer than the store's, down to it if older."""
    lock_schema(connection)
    order = [known.id for known in revisions()]
    target = order[-1] if revision == "head" else revision
    if target not in order:
        known = ", ".join(order)
        raise UnknownRevision(f"unknown revision {revision!r}: the revisions are {known}, or head")
    current = current_on(connection)
    if current is not None and current not in order:
        raise UnknownRevision(
            f"the store is at revision {current!r}, which this fleetlog does not know: a newer "
            f"fleetlog migrated it; take it down with that one first (migrate --to {order[-1]})"
        )
    config = alembic_config()
    config.attributes["connection"] = connection
    if current is not None and order.index(target) < order.index(current):
        command.downgrade(config, target)
    else:
        command.upgrade(config, target)


async def use_incremental_vacuum(engine: AsyncEngine) -> None:
    """SQLite hands the pages retention frees back step by step only in incremental
    auto-vacuum mode, which a database takes by a VACUUM once its file exists (WAL mode
    creates it): a new one at once, one made before it is rewritten once (which takes time
    and free disk about its size)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if await autocommit.scalar(text("PRAGMA auto_vacuum")) == INCREMENTAL_VACUUM:
            return
        log.info("switching the database to incremental auto-vacuum (a one-time VACUUM)")
        await autocommit.execute(text("PRAGMA auto_vacuum=INCREMENTAL"))
        await autocommit.execute(text("VACUUM"))


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the store up or down to `revision`; raises UnknownRevision for a name no
    migration has."""
    if engine.dialect.name == "sqlite":
        await use_incremental_vacuum(engine)
    async with engine.begin() as connection:
        await connection.run_sync(move_on, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The store's revision; None before the first migration."""
    async with engine.connect() as connection:
        return await connection.run_sync(current_on)
