"""Alembic environment: runs on the connection `fleetlog migrate` hands it, or on the settings'."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from fleetlog.config import Settings
from fleetlog.store.engine import create_store_engine
from fleetlog.store.tables import metadata


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_on_settings() -> None:
    engine = create_store_engine(Settings())
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_on_settings())
