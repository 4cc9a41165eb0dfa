"""Engines for the log store: SQLite tuned for durable group commits, or PostgreSQL."""

import logging
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.search.sql import text_matches

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1.0
SQLITE_MMAP_BYTES = 1 << 30
# SQLite calls the progress handler every this many virtual machine steps (well under 1 ms).
PROGRESS_STEPS = 10_000
REGEX_CACHE = 64


class Deadline:
    """When the statement running on one SQLite connection must give up (SQLite has no
    statement timeout): its progress handler interrupts the statement past `at`."""

    def __init__(self) -> None:
        self.at = math.inf

    def passed(self) -> bool:
        return time.monotonic() > self.at


_patterns: dict[str, re.Pattern[str]] = {}


def regexp(pattern: str, value: str | None) -> bool:
    """SQLite's REGEXP: Python's `re.search`, with the patterns compiled once."""
    compiled = _patterns.get(pattern)
    if compiled is None:
        if len(_patterns) >= REGEX_CACHE:
            _patterns.clear()
        compiled = _patterns[pattern] = re.compile(pattern)
    return value is not None and compiled.search(value) is not None


def dumps_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_store_engine(settings: Settings) -> AsyncEngine:
    """The engine of `settings.store_url`; SQLite gets WAL and the configured `synchronous`."""
    if settings.database_url is not None:
        return create_postgres_engine(settings.store_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        settings.store_url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        json_serializer=dumps_json,
        json_deserializer=orjson.loads,
    )
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine.sync_engine, "connect")
    def tune_sqlite(dbapi_connection: Any, record: Any) -> None:
        deadline = record.info["deadline"] = Deadline()
        await_(record.driver_connection.set_progress_handler(deadline.passed, PROGRESS_STEPS))
        dbapi_connection.create_function("regexp", 2, regexp, deterministic=True)
        dbapi_connection.create_function("fleetlog_text", 2, text_matches, deterministic=True)
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the single writer; FULL fsyncs every commit, so an
        # acknowledged log survives a power cut, not only a crash of the process.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Reads go through the OS's page cache, shared by every connection and process,
        # instead of each connection's 2 MB cache: a search walks rows out of rowid order.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    return engine


def create_postgres_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        json_serializer=dumps_json,
        json_deserializer=orjson.loads,
    )


def create_replica_engines(settings: Settings) -> list[AsyncEngine]:
    return [create_postgres_engine(url) for url in settings.replica_store_urls]


@asynccontextmanager
async def connected(
    engine: AsyncEngine, *, transaction: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A connection (in a transaction if asked) whose failure to reach the database is a 503."""
    try:
        async with engine.begin() if transaction else engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError, OSError) as exc:
        log.warning("the store cannot be reached: %s", exc)
        raise StoreUnavailable("the store cannot be reached", retry_after=RETRY_AFTER_S) from exc
