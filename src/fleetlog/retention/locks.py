"""One retention pass at a time across processes, and SQLite write turns shared with ingest.

PostgreSQL: a session advisory lock, held by one connection for the pass. SQLite: an flock
on a file beside the database (server processes share the file, not a server). A pass that
finds the lock taken does nothing: the other pass does the work.
"""

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.errors import Conflict
from fleetlog.store.engine import connected
from fleetlog.store.sqlite_writer import turns_path

RETENTION_LOCK = 0x666C6F72


class RetentionBusy(Conflict):
    code = "retention_running"


def busy() -> RetentionBusy:
    return RetentionBusy("a retention pass is running already; try again once it is done")


@asynccontextmanager
async def one_pass(engine: AsyncEngine, sqlite_path: Path) -> AsyncIterator[None]:
    """Held for a whole pass; RetentionBusy when another process holds it."""
    if engine.dialect.name == "postgresql":
        async with connected(engine) as conn:
            if not await conn.scalar(text(f"SELECT pg_try_advisory_lock({RETENTION_LOCK})")):
                raise busy()
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text(f"SELECT pg_advisory_unlock({RETENTION_LOCK})"))
                await conn.commit()
        return
    fd = os.open(
        sqlite_path.with_name(f"{sqlite_path.name}.retention-lock"), os.O_RDWR | os.O_CREAT, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy() from None
        yield
    finally:
        os.close(fd)


@asynccontextmanager
async def write_turn(engine: AsyncEngine, sqlite_path: Path) -> AsyncIterator[AsyncConnection]:
    """A write transaction. On SQLite it takes the group commit's turn (store/sqlite_writer.py)
    and the write lock at BEGIN, so it neither waits in SQLite's busy handler nor fails on a
    snapshot another writer moved past; it stays short, so ingest waits one batch at most."""
    if engine.dialect.name == "postgresql":
        async with connected(engine, transaction=True) as conn:
            yield conn
        return
    fd = os.open(turns_path(sqlite_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        async with connected(engine, transaction=True) as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
    finally:
        os.close(fd)
