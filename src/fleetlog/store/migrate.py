"""Bring a store's schema to the newest Alembic revision (the only source of schema truth)."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# `serve` and `worker` both migrate at start; on PostgreSQL one at a time.
MIGRATION_LOCK = 0x666C6F6D
INCREMENTAL_VACUUM = 2

log = logging.getLogger(__name__)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_on(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


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
    if engine.dialect.name == "sqlite":
        await use_incremental_vacuum(engine)
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_on, revision)
