"""Every revision goes down as it came up, on both stores, and a round trip to the first
revision and back keeps every log as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.config import Settings
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import UnknownRevision, current_revision, migrate, revisions
from tests.fixtures.migrations import downgrade_to
from tests.fixtures.pipeline import make_record
from tests.fixtures.servers import fresh_database

if TYPE_CHECKING:
    from tests.fixtures.stores import StoreUnderTest

pytest_plugins = ["tests.fixtures.stores"]

REVISIONS = [revision.id for revision in revisions()]
Schema = list[tuple[Any, ...]]
# Every object of the store's catalog, and every column, as the catalog names them.
CATALOG = {
    "sqlite": (
        "SELECT type, name, tbl_name FROM sqlite_master",
        'SELECT m.name, c.name, c.type, c."notnull" FROM sqlite_master m,'
        " pragma_table_info(m.name) c WHERE m.type = 'table'",
    ),
    "postgresql": (
        "SELECT relkind::text, relname FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        "SELECT 'f', proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public'",
    ),
}


def schema_of(connection: Connection) -> Schema:
    return sorted(
        tuple(row)
        for query in CATALOG[connection.dialect.name]
        for row in connection.execute(text(query))
    )


async def schema(engine: AsyncEngine) -> Schema:
    async with engine.connect() as connection:
        return await connection.run_sync(schema_of)


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A store of each kind with no schema at all."""
    if request.param == "sqlite":
        engine = create_store_engine(Settings(_env_file=None, data_dir=tmp_path / "data"))
        yield engine
        await engine.dispose()
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        settings = Settings(_env_file=None, database_url=url, redis_url="redis://unused")
        engine = create_store_engine(settings)
        yield engine
        await engine.dispose()


async def test_every_revision_goes_down_to_the_schema_it_came_up_from(
    empty_store: AsyncEngine,
) -> None:
    seen: dict[str, Schema] = {}
    for revision in REVISIONS:
        await migrate(empty_store, revision)
        seen[revision] = await schema(empty_store)
    for revision in reversed(REVISIONS[:-1]):
        await migrate(empty_store, revision)
        assert await current_revision(empty_store) == revision
        assert await schema(empty_store) == seen[revision], f"down to {revision}"
    async with empty_store.begin() as connection:
        await connection.run_sync(downgrade_to, "base")
    left = [
        row for row in await schema(empty_store) if not any("alembic" in str(part) for part in row)
    ]
    assert not left


async def test_an_unknown_revision_is_refused(empty_store: AsyncEngine) -> None:
    with pytest.raises(UnknownRevision, match="unknown revision '0099'"):
        await migrate(empty_store, "0099")
    assert await current_revision(empty_store) is None


async def test_a_store_a_newer_fleetlog_migrated_is_refused(empty_store: AsyncEngine) -> None:
    await migrate(empty_store)
    async with empty_store.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(UnknownRevision, match="a newer fleetlog migrated it"):
        await migrate(empty_store)


def every_log(connection: Connection) -> list[tuple[Any, ...]]:
    columns = "id, device_id, log_level, message, log_data, created_at, received_at, ingest_key"
    return [tuple(row) for row in connection.execute(text(f"SELECT {columns} FROM logs"))]


async def stored(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return sorted(await connection.run_sync(every_log), key=lambda row: (row[1], row[0]))


async def counted(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """The per-minute counts (rollups), which the upgrade rebuilds from the logs."""
    query = "SELECT device_id, bucket, log_level, count FROM log_counts ORDER BY 1, 2, 3"
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(query))]


async def test_a_round_trip_to_the_first_revision_and_back_keeps_every_log(
    store_under_test: StoreUnderTest,
) -> None:
    now = datetime.now(UTC)
    await store_under_test.add(
        [
            make_record(
                device_id=f"pump-{n % 7}",
                level=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[n % 5],
                message=f"valve {n} stuck, Überdruck ✓",
                log_data={"n": n, "site": "north", "nested": {"ok": n % 2 == 0}},
                ts=now - timedelta(minutes=n),
            )
            for n in range(300)
        ]
    )
    engine = store_under_test.store.engine
    before = await stored(engine)
    found_before = await store_under_test.messages("überdruck device:pump-3")
    counts_before = await counted(engine)
    assert len(before) == 300
    assert len(found_before) == 43
    await migrate(engine, REVISIONS[0])
    await migrate(engine)
    assert await stored(engine) == before
    assert await store_under_test.messages("überdruck device:pump-3") == found_before
    assert await counted(engine) == counts_before
