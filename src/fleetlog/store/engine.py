"""Engines for the log store: SQLite tuned for durable group commits, or PostgreSQL."""

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fleetlog.config import Settings

SQLITE_BUSY_TIMEOUT_S = 30.0


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
    def tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the single writer; FULL fsyncs every commit, so an
        # acknowledged log survives a power cut, not only a crash of the process.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
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
